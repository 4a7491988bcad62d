"""Transactional outbox of sync links, on any DB-API cursor (psycopg2 in Odoo and in CI).

A link is one (Odoo event, instructor) pair. Booking writes only mark links dirty and bump
``change_seq``. Workers claim dirty links with ``FOR UPDATE SKIP LOCKED`` and a lease
(``claimed_until``) committed at once, so no row lock is held while talking to the provider and
a booking write never waits for the network. A result is applied only by the claim's holder, and
the link stays dirty when it changed again meanwhile (``change_seq`` moved on).
"""

CLAIM_SQL = """
    UPDATE impact_calendar_link AS link
       SET claimed_until = (now() AT TIME ZONE 'UTC') + make_interval(secs => %(lease)s),
           claim_token = %(token)s
     WHERE link.id IN (
            SELECT id FROM impact_calendar_link
             WHERE dirty
               AND state != 'paused'
               AND (next_try IS NULL OR next_try <= (now() AT TIME ZONE 'UTC'))
               AND (claimed_until IS NULL OR claimed_until < (now() AT TIME ZONE 'UTC'))
               {extra}
             ORDER BY next_try NULLS FIRST, id
             LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED)
    RETURNING link.id, link.change_seq
"""


def claim(cr, token, limit=50, lease=300, account_ids=None):
    """Claim up to ``limit`` due dirty links for ``lease`` seconds; returns [(id, change_seq)].

    The caller commits right after, so that other workers see the lease.
    """
    extra = ""
    params = {"token": token, "limit": limit, "lease": lease}
    if account_ids is not None:
        extra = "AND account_id = ANY(%(accounts)s)"
        params["accounts"] = list(account_ids)
    # ``extra`` is one of two constant strings, never user input.
    cr.execute(CLAIM_SQL.format(extra=extra), params)  # pylint: disable=sql-injection
    return sorted(cr.fetchall())


def _finish(cr, link_id, token, seq, assignments, params):
    """Apply a result if we still hold the claim; clean the link unless it changed meanwhile."""
    params = dict(params, id=link_id, token=token, seq=seq)
    # ``assignments`` is a constant of this module; every value goes through a parameter.
    cr.execute(  # pylint: disable=sql-injection
        f"""
        UPDATE impact_calendar_link
           SET {assignments},
               dirty = CASE WHEN change_seq = %(seq)s THEN %(clean_dirty)s ELSE true END,
               create_sent = false,
               claimed_until = NULL,
               claim_token = NULL
         WHERE id = %(id)s AND claim_token = %(token)s
        """,
        params,
    )
    return cr.rowcount == 1


def finish_done(cr, link_id, token, seq, external_id, pushed_hash, generation):
    """The provider holds exactly what we meant (created, updated, deleted or nothing to do)."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        "external_id = %(external_id)s, pushed_hash = %(hash)s, generation = %(generation)s,"
        " state = 'synced', attempts = 0, next_try = NULL, last_error = NULL,"
        " last_push_at = (now() AT TIME ZONE 'UTC')",
        {
            "external_id": external_id,
            "hash": pushed_hash,
            "generation": generation,
            "clean_dirty": False,
        },
    )


def finish_created_unverified(cr, link_id, token, seq, external_id, generation):
    """A create answered with an event an earlier try of it may have made (its answer was lost,
    then the class changed): keep the event's id, forget the hash and stay dirty, so that the next
    round sends the current body as an update."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        "external_id = %(external_id)s, pushed_hash = NULL, generation = %(generation)s,"
        " state = 'pending', attempts = 0, next_try = NULL, last_error = NULL",
        {"external_id": external_id, "generation": generation, "clean_dirty": True},
    )


def finish_recreate(cr, link_id, token, seq, generation, message):
    """The external event vanished (or its id is burned): forget it and create anew at once."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        "external_id = NULL, pushed_hash = NULL, generation = %(generation)s, state = 'pending',"
        " next_try = NULL, last_error = %(message)s",
        {"generation": generation, "message": message, "clean_dirty": True},
    )


def finish_retry(cr, link_id, token, seq, delay, message):
    """Try again in ``delay`` seconds; the link stays dirty."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        "state = 'retrying', attempts = attempts + 1,"
        " next_try = (now() AT TIME ZONE 'UTC') + make_interval(secs => %(delay)s),"
        " last_error = %(message)s",
        {"delay": delay, "message": message, "clean_dirty": True},
    )


def finish_rejected(cr, link_id, token, seq, message):
    """The provider refused this version: keep the error, wait for the class to change again."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        "state = 'rejected', attempts = attempts + 1, next_try = NULL, last_error = %(message)s",
        {"message": message, "clean_dirty": False},
    )


def finish_paused(cr, link_id, token, seq, message):
    """The account cannot push now (needs reconnect): keep the change, pause until resumed."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        "state = 'paused', last_error = %(message)s",
        {"message": message, "clean_dirty": True},
    )


def mark_create_sent(cr, link_ids):
    """Record, before the network call and committed with it, that these links' creates go out."""
    cr.execute("UPDATE impact_calendar_link SET create_sent = true WHERE id = ANY(%s)", (list(link_ids),))


def resume_account(cr, account_id):
    """After a reconnect: paused links become due again."""
    cr.execute(
        """UPDATE impact_calendar_link SET state = 'pending', next_try = NULL
             WHERE account_id = %s AND state = 'paused'""",
        (account_id,),
    )
    return cr.rowcount


def next_due(cr):
    """When the earliest waiting link becomes due (naive UTC), or None."""
    cr.execute(
        """SELECT min(greatest(next_try, claimed_until)) FROM impact_calendar_link
             WHERE dirty AND state != 'paused'"""
    )
    return cr.fetchone()[0]


def count_due(cr):
    cr.execute(
        """SELECT count(*) FROM impact_calendar_link
             WHERE dirty AND state != 'paused'
               AND (next_try IS NULL OR next_try <= (now() AT TIME ZONE 'UTC'))
               AND (claimed_until IS NULL OR claimed_until < (now() AT TIME ZONE 'UTC'))"""
    )
    return cr.fetchone()[0]
