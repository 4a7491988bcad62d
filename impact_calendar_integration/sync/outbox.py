"""Transactional outbox of sync links, on any DB-API cursor (psycopg2 in Odoo and in CI).

A link is one (Odoo event, instructor) pair and what was pushed for it. The booking side never
writes a link: it appends rows to the change log (``impact_calendar_change``), and only workers
fold them into the links (``fold_*``), claim dirty links with ``FOR UPDATE SKIP LOCKED`` and a
lease (``claimed_until``) committed at once, and record results. So a booking and a push being
recorded never touch the same row: neither can make the other fail to serialize.

No row lock is held while talking to the provider. A result is applied only by the claim's
holder, and the link stays dirty when it changed again meanwhile (``change_seq`` moved on).
Every statement that locks several links locks them in id order, so workers cannot deadlock.

A claim also names the database connection of its worker (``claim_pid``, the PostgreSQL backend
process). A worker that dies (SIGKILL, a killed prefork worker) loses its connection, and
PostgreSQL forgets the backend at once: its claims are taken over after ``CLAIM_GRACE`` seconds
instead of the lease, which stays the last resort (a hung worker, a pooler that keeps backends).

A link waiting to be retried says why (``wait_reason``): a transient failure's backoff ends as
soon as the account answers again (``resume_account``); a throttled account's wait
(``hold_account``: the provider's ``Retry-After``) is honoured.

A link's ``state`` (and its ``attempts`` and ``first_failed_at``) is written by
``link_states.apply`` only: each statement here that moves a link names its event.
"""

from . import link_states, policy

# The link states, as the outbox's readers name them (one vocabulary: ``link_states``).
PENDING, SYNCED, RETRYING = link_states.PENDING, link_states.SYNCED, link_states.RETRYING
REJECTED, PAUSED = link_states.REJECTED, link_states.PAUSED

# Change log kinds (impact.calendar.change.kind): what happened, folded by ``fold_*``.
CHANGE_EVENT = "event"  # a class changed: its links, and a link for its instructor(s)
CHANGE_USER = "user"  # an instructor's standing changed (group, active, disconnect)
CHANGE_BACKFILL = "backfill"  # connected: also make links for every future booked class
CHANGE_RETRY = "retry"  # an admin or a reconnect: drop backoff and pause, push again
CHANGE_RESYNC = "resync"  # forget what was pushed: every class is sent again

# Why a retrying link waits (impact.calendar.link.wait_reason).
WAIT_BACKOFF = "backoff"  # a transient failure (5xx, timeout, lost answer): over when the account answers
WAIT_THROTTLE = "throttle"  # the provider throttles the account: its Retry-After is honoured

# Seconds a claim whose worker's connection is gone waits before it is taken over. Its liveness
# is read from pg_stat_activity, a snapshot per transaction: a claim younger than this may come
# from a connection made after that snapshot.
CLAIM_GRACE = 3

CLAIM_SQL = """
    UPDATE impact_calendar_link AS link
       SET claimed_until = (now() AT TIME ZONE 'UTC') + make_interval(secs => %(lease)s),
           claim_token = %(token)s,
           claim_pid = pg_backend_pid()
     WHERE link.id IN (
            SELECT id FROM impact_calendar_link
             WHERE dirty
               AND state != %(paused)s
               AND (next_try IS NULL OR next_try <= (now() AT TIME ZONE 'UTC'))
               AND (claimed_until IS NULL OR claimed_until < (now() AT TIME ZONE 'UTC')
                    OR ({orphaned}))
               {extra}
             ORDER BY next_try NULLS FIRST, id
             LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED)
    RETURNING link.id, link.change_seq
"""

# A claim whose worker's connection is gone, made more than CLAIM_GRACE seconds ago (with the
# lease every claim is made with). A claim without a pid (made before this column) has only
# its lease.
ORPHANED = """claim_pid IS NOT NULL
               AND claimed_until < (now() AT TIME ZONE 'UTC') + make_interval(secs => %(lease)s - %(grace)s)
               AND claim_pid <> ALL (ARRAY(SELECT pid FROM pg_stat_activity))"""


def claim(cr, token, limit=50, lease=300, account_ids=None):
    """Claim up to ``limit`` due dirty links for ``lease`` seconds; returns [(id, change_seq)].
    Claims of a worker whose connection is gone are taken over too.

    The caller commits right after, so that other workers see the lease.
    """
    extra = ""
    params = {"token": token, "limit": limit, "lease": lease, "paused": PAUSED, "grace": CLAIM_GRACE}
    if account_ids is not None:
        extra = "AND account_id = ANY(%(accounts)s)"
        params["accounts"] = list(account_ids)
    # Liveness is read from now on, not from a snapshot this transaction took earlier.
    cr.execute("SELECT pg_stat_clear_snapshot()")
    # ``extra`` and ``orphaned`` are constant strings, never user input.
    cr.execute(CLAIM_SQL.format(extra=extra, orphaned=ORPHANED), params)  # pylint: disable=sql-injection
    return sorted(cr.fetchall())


def release(cr, token):
    """Give up a claim whose results could not be recorded: its links are due again at once."""
    cr.execute(
        "UPDATE impact_calendar_link SET claimed_until = NULL, claim_token = NULL, claim_pid = NULL"
        " WHERE claim_token = %s",
        (token,),
    )
    return cr.rowcount


# -- the change log --------------------------------------------------------------------------
# The booking side only appends to it (impact.calendar.link's APPEND_AND_WAKE, one statement per
# commit); the worker takes it whole.
def take_changes(cr):
    """Remove and return every committed change: [(event_ref, user_id, kind)].

    Under READ COMMITTED a change another worker took at the same time is skipped, not doubled.
    """
    cr.execute("DELETE FROM impact_calendar_change RETURNING event_ref, user_id, kind")
    return cr.fetchall()


# The rows a fold moves, locked in id order; ``{where}`` narrows them.
FOLD_WHERE = "id IN (SELECT id FROM impact_calendar_link WHERE {where} ORDER BY id FOR UPDATE)"
FOLD_SET = """dirty = true, change_seq = change_seq + 1,
           next_try = CASE WHEN state = %(rejected)s OR %(retry)s THEN NULL ELSE next_try END,
           pushed_hash = CASE WHEN %(forget)s THEN NULL ELSE pushed_hash END"""


def _fold(cr, where, params, retry=False, forget=False):
    params = dict(params, retry=retry, forget=forget, rejected=REJECTED)
    event = link_states.RETRY_NOW if retry else link_states.CHANGED
    return link_states.apply(cr, event, FOLD_WHERE.format(where=where), params, FOLD_SET)


def fold_events(cr, event_refs):
    """These classes changed: their links (any instructor, old or new) are pushed again.
    A rejected link gets another chance with the new version."""
    return _fold(cr, "event_ref = ANY(%(refs)s)", {"refs": list(event_refs)}) if event_refs else 0


def fold_users(cr, user_ids, retry=False, forget=False):
    """Every link of these instructors is looked at again; ``retry`` also drops backoff and
    resumes paused links (a reconnect, a resync); ``forget`` re-sends what the provider has."""
    if not user_ids:
        return 0
    return _fold(cr, "user_id = ANY(%(users)s)", {"users": list(user_ids)}, retry=retry, forget=forget)


def fold_retries(cr, pairs):
    """An admin's *Retry now* on (event_ref, user_id) links: drop the backoff, push again."""
    if not pairs:
        return 0
    refs, users = zip(*pairs)
    return _fold(
        cr,
        "(event_ref, user_id) IN (SELECT * FROM unnest(%(refs)s::integer[], %(users)s::integer[]))",
        {"refs": list(refs), "users": list(users)},
        retry=True,
    )


def hold_account(cr, account_id, delay):
    """A throttled account waits as a whole; other accounts go on. The links it holds wait for
    the throttle (``WAIT_THROTTLE``), not for a backoff that a success would end."""
    delay = policy.clamp_delay(delay, policy.MAX_DELAY)
    cr.execute(
        """UPDATE impact_calendar_link
              SET next_try = greatest(coalesce(next_try, now() AT TIME ZONE 'UTC'), held.until),
                  wait_reason = CASE WHEN next_try IS NULL OR next_try <= held.until
                                     THEN %s ELSE wait_reason END
             FROM (SELECT (now() AT TIME ZONE 'UTC') + make_interval(secs => %s) AS until) AS held
            WHERE id IN (SELECT id FROM impact_calendar_link
                          WHERE account_id = %s AND dirty AND claim_token IS NULL
                          ORDER BY id FOR UPDATE)""",
        (WAIT_THROTTLE, delay, account_id),
    )


def resume_account(cr, account_id):
    """The account answered again: its links waiting on a transient failure's backoff are due
    at once (the outage is over), those waiting on a throttle are not. Returns how many."""
    cr.execute(
        """UPDATE impact_calendar_link SET next_try = NULL
            WHERE id IN (SELECT id FROM impact_calendar_link
                          WHERE account_id = %s AND dirty AND claim_token IS NULL
                            AND wait_reason = %s AND next_try > (now() AT TIME ZONE 'UTC')
                          ORDER BY id FOR UPDATE)""",
        (account_id, WAIT_BACKOFF),
    )
    return cr.rowcount


def keep_probe(cr, account_id, delay):
    """The account failed transiently: whatever its links' backoff, one of them is tried within
    ``delay`` seconds, so that the end of the outage is seen then (``resume_account``) and not
    after the longest backoff. Returns whether a link was brought forward."""
    cr.execute(
        """UPDATE impact_calendar_link
              SET next_try = (now() AT TIME ZONE 'UTC') + make_interval(secs => %(delay)s)
            WHERE id = (SELECT id FROM impact_calendar_link
                         WHERE account_id = %(account)s AND dirty AND claim_token IS NULL
                           AND wait_reason = %(backoff)s AND state = %(retrying)s
                         ORDER BY next_try, id LIMIT 1 FOR UPDATE)
              AND next_try > (now() AT TIME ZONE 'UTC') + make_interval(secs => %(delay)s)""",
        {"delay": delay, "account": account_id, "backoff": WAIT_BACKOFF, "retrying": RETRYING},
    )
    return cr.rowcount == 1


# -- results -----------------------------------------------------------------------------------
def record(cr, link_id, token, seq, transition):
    """Record an ``engine.Transition`` for a link we hold; False when we no longer hold it.

    The one entry point for results: the engine decides, this writes.
    """
    kind = transition.kind
    if kind == link_states.SYNCED:
        return finish_done(
            cr, link_id, token, seq, transition.external_id, transition.pushed_hash, transition.generation,
            transition.calendar,
        )
    if kind == link_states.UNVERIFIED:
        return finish_created_unverified(
            cr, link_id, token, seq, transition.external_id, transition.generation, transition.calendar
        )
    if kind == link_states.RECREATE:
        return finish_recreate(cr, link_id, token, seq, transition.generation, transition.message)
    if kind == link_states.RETRYING:
        reason = WAIT_THROTTLE if transition.hold else WAIT_BACKOFF
        return finish_retry(cr, link_id, token, seq, transition.delay, transition.message, reason)
    if kind == link_states.REJECTED:
        return finish_rejected(cr, link_id, token, seq, transition.message)
    if kind == link_states.PAUSED:
        return finish_paused(cr, link_id, token, seq, transition.message)
    raise link_states.InvalidTransition(f"unknown transition {kind!r}")


FINISH_SET = """dirty = CASE WHEN change_seq = %(seq)s THEN %(clean_dirty)s ELSE true END,
               create_sent = false,
               wait_reason = %(wait)s,
               claimed_until = NULL,
               claim_token = NULL,
               claim_pid = NULL"""


def _finish(cr, link_id, token, seq, event, assignments, params):
    """Apply a result if we still hold the claim; clean the link unless it changed meanwhile."""
    params = dict({"wait": None}, **params, id=link_id, token=token, seq=seq)
    assignments = f"{assignments}, {FINISH_SET}" if assignments else FINISH_SET
    return link_states.apply(cr, event, "id = %(id)s AND claim_token = %(token)s", params, assignments) == 1


def finish_done(cr, link_id, token, seq, external_id, pushed_hash, generation, calendar=None):
    """The provider holds exactly what we meant (created, updated, deleted or nothing to do)."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        link_states.SYNCED,
        "external_id = %(external_id)s, external_calendar = %(calendar)s,"
        " pushed_hash = %(hash)s, generation = %(generation)s,"
        " next_try = NULL, last_error = NULL, last_push_at = (now() AT TIME ZONE 'UTC')",
        {
            "external_id": external_id,
            "calendar": calendar if external_id else None,
            "hash": pushed_hash,
            "generation": generation,
            "clean_dirty": False,
        },
    )


def finish_created_unverified(cr, link_id, token, seq, external_id, generation, calendar=None):
    """A create answered with an event an earlier try of it may have made (its answer was lost,
    then the class changed): keep the event's id, forget the hash and stay dirty, so that the next
    round sends the current body as an update."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        link_states.UNVERIFIED,
        "external_id = %(external_id)s, external_calendar = %(calendar)s, pushed_hash = NULL,"
        " generation = %(generation)s, next_try = NULL, last_error = NULL",
        {"external_id": external_id, "calendar": calendar, "generation": generation, "clean_dirty": True},
    )


def finish_recreate(cr, link_id, token, seq, generation, message):
    """The external event vanished (or its id is burned): forget it and create anew at once."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        link_states.RECREATE,
        "external_id = NULL, external_calendar = NULL, pushed_hash = NULL, generation = %(generation)s,"
        " next_try = NULL, last_error = %(message)s",
        {"generation": generation, "message": message, "clean_dirty": True},
    )


def finish_retry(cr, link_id, token, seq, delay, message, reason=WAIT_BACKOFF):
    """Try again in ``delay`` seconds, waiting for ``reason``; the link stays dirty. The delay is
    clamped here too, so that no value (a huge or non-finite one) can make the interval overflow
    and the SQL fail."""
    delay = policy.clamp_delay(delay, policy.BASE_DELAY)
    return _finish(
        cr,
        link_id,
        token,
        seq,
        link_states.RETRYING,
        "next_try = (now() AT TIME ZONE 'UTC') + make_interval(secs => %(delay)s), last_error = %(message)s",
        {"delay": delay, "message": message, "clean_dirty": True, "wait": reason},
    )


def finish_rejected(cr, link_id, token, seq, message):
    """The provider refused this version: keep the error, wait for the class to change again."""
    return _finish(
        cr,
        link_id,
        token,
        seq,
        link_states.REJECTED,
        "next_try = NULL, last_error = %(message)s",
        {"message": message, "clean_dirty": False},
    )


def finish_paused(cr, link_id, token, seq, message):
    """The account cannot push now (needs reconnect): keep the change, pause until resumed."""
    return _finish(
        cr, link_id, token, seq, link_states.PAUSED, "last_error = %(message)s", {"message": message, "clean_dirty": True}
    )


def forget_calendar(cr, account_id, calendar_id):
    """The calendar ``calendar_id`` is gone (the user deleted it, or we did on disconnect): the
    account's events there went with it. Links not held by a worker forget them and are pushed
    again (new generation); held links are settled by their holder."""
    return link_states.apply(
        cr,
        link_states.CALENDAR_LOST,
        """id IN (SELECT id FROM impact_calendar_link
                   WHERE account_id = %(account)s AND external_calendar = %(calendar)s
                     AND claim_token IS NULL ORDER BY id FOR UPDATE)""",
        {"account": account_id, "calendar": calendar_id},
        """external_id = NULL, external_calendar = NULL, pushed_hash = NULL,
           generation = generation + 1, dirty = true, change_seq = change_seq + 1, next_try = NULL""",
    )


def mark_create_sent(cr, link_ids):
    """Record, before the network call and committed with it, that these links' creates go out."""
    cr.execute("UPDATE impact_calendar_link SET create_sent = true WHERE id = ANY(%s)", (list(link_ids),))


# -- reading -----------------------------------------------------------------------------------
def next_due(cr, lease=300):
    """When the earliest waiting link becomes due (naive UTC), or None. A claim whose worker's
    connection is gone ends ``CLAIM_GRACE`` seconds after it was made (``lease``: as in ``claim``)."""
    cr.execute("SELECT pg_stat_clear_snapshot()")
    cr.execute(
        """SELECT min(greatest(next_try, CASE
                    WHEN claim_pid IS NOT NULL AND claim_pid <> ALL (ARRAY(SELECT pid FROM pg_stat_activity))
                    THEN claimed_until - make_interval(secs => %s - %s)
                    ELSE claimed_until END))
             FROM impact_calendar_link
            WHERE dirty AND state != %s""",
        (lease, CLAIM_GRACE, PAUSED),
    )
    return cr.fetchone()[0]


def count_due(cr):
    cr.execute(
        """SELECT count(*) FROM impact_calendar_link
             WHERE dirty AND state != %s
               AND (next_try IS NULL OR next_try <= (now() AT TIME ZONE 'UTC'))
               AND (claimed_until IS NULL OR claimed_until < (now() AT TIME ZONE 'UTC'))""",
        (PAUSED,),
    )
    return cr.fetchone()[0]


def has_changes(cr):
    """Whether the change log holds anything to fold (a worker's cue to keep going)."""
    cr.execute("SELECT EXISTS (SELECT 1 FROM impact_calendar_change)")
    return cr.fetchone()[0]
