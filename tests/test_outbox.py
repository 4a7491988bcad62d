"""Claim/finish logic of the outbox against real PostgreSQL, with concurrent workers."""

import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta

import psycopg2
import pytest
from pg import connect, insert_links, outbox_schema

from impact_calendar_integration.sync import engine, outbox


@pytest.fixture
def schema():
    with outbox_schema() as name:
        yield name


def append_changes(cr, changes):
    """What the booking side appends (impact.calendar.link's APPEND_AND_WAKE, without the wake)."""
    refs, users, kinds = zip(*changes)
    cr.execute(
        """INSERT INTO impact_calendar_change (event_ref, user_id, kind)
           SELECT * FROM unnest(%s::integer[], %s::integer[], %s::varchar[])""",
        (list(refs), list(users), list(kinds)),
    )


def _row(schema, link_id):
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute(
            "SELECT dirty, state, external_id, change_seq, next_try IS NOT NULL, claim_token FROM impact_calendar_link WHERE id = %s",
            (link_id,),
        )
        row = cr.fetchone()
    conn.close()
    return row


def _drain(schema, pushes, lock, errors, batch=50):
    conn = connect(schema)
    token = uuid.uuid4().hex
    try:
        while True:
            try:
                with conn.cursor() as cr:
                    claimed = outbox.claim(cr, token, limit=batch)
                conn.commit()
            except psycopg2.errors.SerializationFailure:
                conn.rollback()  # another worker changed a row we looked at: look again
                continue
            if not claimed:
                return
            with lock:
                pushes.update(link_id for link_id, _seq in claimed)
            with conn.cursor() as cr:
                for link_id, seq in claimed:
                    assert outbox.finish_done(cr, link_id, token, seq, f"ext-{link_id}", "h", 0)
            conn.commit()
    except Exception as exc:  # surfaced to the test thread below
        errors.append(exc)
        raise
    finally:
        conn.close()


@pytest.mark.parametrize("workers", [1, 4])
def test_concurrent_workers_push_each_link_exactly_once(schema, workers):
    insert_links(schema, 2000, accounts=7)
    pushes, lock, errors = Counter(), threading.Lock(), []
    threads = [threading.Thread(target=_drain, args=(schema, pushes, lock, errors)) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(pushes) == 2000
    assert max(pushes.values()) == 1, "a link was pushed twice"
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute("SELECT count(*) FROM impact_calendar_link WHERE dirty OR external_id IS NULL")
        assert cr.fetchone()[0] == 0
    conn.close()


def test_claimed_link_is_invisible_to_other_workers_until_lease_expires(schema):
    insert_links(schema, 3)
    a, b = connect(schema), connect(schema)
    with a.cursor() as cr:
        assert [i for i, _ in outbox.claim(cr, "A", limit=2)] == [1, 2]
    a.commit()
    with b.cursor() as cr:
        assert [i for i, _ in outbox.claim(cr, "B", limit=10)] == [3]
    b.commit()
    # A worker died holding 1 and 2: once the lease is over they are taken over.
    with a.cursor() as cr:
        cr.execute("UPDATE impact_calendar_link SET claimed_until = claimed_until - interval '1 hour' WHERE claim_token = 'A'")
    a.commit()
    with b.cursor() as cr:
        assert [i for i, _ in outbox.claim(cr, "B2", limit=10)] == [1, 2]
        # The dead worker's late result is ignored: it no longer holds the claim.
        assert not outbox.finish_done(cr, 1, "A", 1, "ext", "h", 0)
    b.commit()
    a.close()
    b.close()


def test_change_during_push_keeps_link_dirty(schema):
    insert_links(schema, 1)
    worker, user = connect(schema), connect(schema)
    with worker.cursor() as cr:
        [(link_id, seq)] = outbox.claim(cr, "W")
    worker.commit()
    # A booking write lands while the worker talks to the provider: it never waits for a lock.
    with user.cursor() as cr:
        cr.execute("UPDATE impact_calendar_link SET dirty = true, change_seq = change_seq + 1 WHERE id = %s", (link_id,))
    user.commit()
    with worker.cursor() as cr:
        assert outbox.finish_done(cr, link_id, "W", seq, "ext-1", "h", 0)
    worker.commit()
    dirty, state, external_id, *_ = _row(schema, link_id)
    assert (dirty, state, external_id) == (True, "synced", "ext-1")


def test_retry_waits_and_paused_is_not_claimed(schema):
    insert_links(schema, 2)
    conn = connect(schema)
    with conn.cursor() as cr:
        claimed = outbox.claim(cr, "W")
        outbox.finish_retry(cr, claimed[0][0], "W", claimed[0][1], 60, "503 Service Unavailable")
        outbox.finish_paused(cr, claimed[1][0], "W", claimed[1][1], "invalid_grant")
    conn.commit()
    with conn.cursor() as cr:
        assert outbox.claim(cr, "W2") == []
        assert outbox.count_due(cr) == 0
        assert outbox.next_due(cr) is not None
        # A plain change keeps the backoff and the pause.
        assert outbox.fold_users(cr, [1]) == 2
        assert outbox.claim(cr, "W3") == []
    conn.commit()
    assert _row(schema, claimed[0][0])[:2] == (True, "retrying")
    assert _row(schema, claimed[1][0])[:2] == (True, "paused")
    with conn.cursor() as cr:
        # A reconnect (retry) resumes the paused link and drops the backoff.
        assert outbox.fold_users(cr, [1], retry=True) == 2
        assert [i for i, _ in outbox.claim(cr, "W4")] == [claimed[0][0], claimed[1][0]]
    conn.commit()
    conn.close()


def test_change_log_is_taken_once_and_marks_links(schema):
    insert_links(schema, 3)
    user, worker_a, worker_b = connect(schema), connect(schema), connect(schema)
    with user.cursor() as cr:
        append_changes(cr, [(1, None, outbox.CHANGE_EVENT), (2, None, outbox.CHANGE_EVENT)])
    user.commit()
    # Once A took the changes, B (at READ COMMITTED, as workers run) finds none left.
    worker_b.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED)
    with worker_a.cursor() as cr:
        assert sorted(outbox.take_changes(cr)) == [(1, None, "event"), (2, None, "event")]
        assert outbox.fold_events(cr, [1, 2]) == 2
    worker_a.commit()
    with worker_b.cursor() as cr:
        assert outbox.take_changes(cr) == []
    worker_b.commit()
    for conn in (user, worker_a, worker_b):
        conn.close()


def test_booking_append_never_conflicts_with_recording(schema):
    """The booking side only inserts into the change log: a worker recording a result on the
    same class's link at the same moment makes neither fail (REPEATABLE READ on both sides)."""
    insert_links(schema, 1)
    worker, booking = connect(schema), connect(schema)
    with worker.cursor() as cr:
        [(link_id, seq)] = outbox.claim(cr, "W")
    worker.commit()
    with booking.cursor() as bcr, worker.cursor() as wcr:
        bcr.execute("SELECT 1")  # the booking's snapshot is taken before the worker records
        assert outbox.finish_done(wcr, link_id, "W", seq, "ext-1", "h", 0)
        worker.commit()
        append_changes(bcr, [(1, None, outbox.CHANGE_EVENT)])
    booking.commit()
    with worker.cursor() as cr:
        outbox.fold_events(cr, [ref for ref, _uid, _kind in outbox.take_changes(cr)])
    worker.commit()
    dirty, state, external_id, change_seq, *_ = _row(schema, link_id)
    assert (dirty, state, external_id, change_seq) == (True, "synced", "ext-1", 2)
    worker.close()
    booking.close()


def test_rejected_is_kept_but_not_retried(schema):
    insert_links(schema, 1)
    conn = connect(schema)
    with conn.cursor() as cr:
        [(link_id, seq)] = outbox.claim(cr, "W")
        outbox.finish_rejected(cr, link_id, "W", seq, "Invalid value for: summary")
    conn.commit()
    with conn.cursor() as cr:
        assert outbox.claim(cr, "W2") == []
    conn.close()
    dirty, state, *_ = _row(schema, link_id)
    assert (dirty, state) == (False, "rejected")


def _failed_since(schema, link_id):
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute("SELECT first_failed_at FROM impact_calendar_link WHERE id = %s", (link_id,))
        value = cr.fetchone()[0]
    conn.close()
    return value


def _record(schema, token, finish, *args):
    """Claim the (one) link as ``token`` and record ``finish`` for it, committed."""
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute("UPDATE impact_calendar_link SET next_try = NULL")
        [(link_id, seq)] = outbox.claim(cr, token)
        finish(cr, link_id, token, seq, *args)
    conn.commit()
    conn.close()
    return link_id


def test_first_failure_is_kept_across_retries_and_cleared_by_a_success(schema):
    """``first_failed_at``: set by the first failure after a success, kept by the retries and
    the pauses that follow, cleared by the success."""
    insert_links(schema, 1)
    link_id = _record(schema, "W1", outbox.finish_retry, 30, "503 Service Unavailable")
    first = _failed_since(schema, link_id)
    assert first is not None, "a failure records when the link started failing"
    _record(schema, "W2", outbox.finish_retry, 60, "503 again")
    _record(schema, "W3", outbox.finish_paused, "invalid_grant")
    conn = connect(schema)
    with conn.cursor() as cr:
        outbox.fold_users(cr, [1], retry=True)  # the reconnect resumes it
    conn.commit()
    conn.close()
    assert _failed_since(schema, link_id) == first, "retries and pauses keep the first failure's time"
    _record(schema, "W4", outbox.finish_done, "ext-1", "hash", 0)
    assert _failed_since(schema, link_id) is None, "a success clears it"
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute("UPDATE impact_calendar_link SET dirty = true")
    conn.commit()
    conn.close()
    _record(schema, "W6", outbox.finish_retry, 30, "timeout")
    assert _failed_since(schema, link_id) > first, "the next failure after a success starts a new count"


def test_the_test_tables_mirror_the_models():
    """tests/pg.py copies the ORM's tables by hand: every stored field of the models is there."""
    import ast  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel
    import re  # pylint: disable=import-outside-toplevel

    from pg import LINK_TABLE_DDL  # pylint: disable=import-outside-toplevel

    models = os.path.join(os.path.dirname(outbox.__file__), "..", "models")
    for table, module in (("impact_calendar_link", "impact_calendar_link.py"), ("impact_calendar_change", "impact_calendar_change.py")):
        ddl = LINK_TABLE_DDL.split(f"CREATE TABLE {table} (", 1)[1].split(");", 1)[0]
        columns = {line.split()[0] for line in ddl.strip().splitlines() if re.match(r"\s+[a-z_]+ ", line)}
        with open(os.path.join(models, module), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        stored = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "attr", "") in {"Integer", "Many2one", "Char", "Boolean", "Selection", "Datetime"}
            and not any(k.arg in ("related", "compute") for k in node.value.keywords)
            for target in node.targets
        }
        assert stored <= columns, (table, stored - columns)


# -- recovery (issue 22) -----------------------------------------------------------------------
def _due_ids(schema):
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute(
            """SELECT id FROM impact_calendar_link
                WHERE dirty AND (next_try IS NULL OR next_try <= (now() AT TIME ZONE 'UTC')) ORDER BY id"""
        )
        ids = [row[0] for row in cr.fetchall()]
    conn.close()
    return ids


def test_an_account_answering_again_ends_the_backoff_but_not_the_throttle(schema):
    """Links 1, 2 (account 1) failed transiently, 3 (account 1) was throttled, 4 (account 2)
    failed transiently: account 1 answers again, so 1 and 2 are due at once; 3 keeps the
    provider's Retry-After and account 2 its backoff."""
    insert_links(schema, 4)
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute("UPDATE impact_calendar_link SET account_id = CASE WHEN id = 4 THEN 2 ELSE 1 END")
        claimed = dict(outbox.claim(cr, "W"))
        outbox.record(cr, 1, "W", claimed[1], engine.Transition(engine.RETRYING, delay=600, message="503"))
        outbox.record(cr, 2, "W", claimed[2], engine.Transition(engine.RETRYING, delay=1800, message="lost answer"))
        outbox.record(cr, 3, "W", claimed[3], engine.Transition(engine.RETRYING, delay=600, hold=600, message="429"))
        outbox.record(cr, 4, "W", claimed[4], engine.Transition(engine.RETRYING, delay=600, message="503"))
    conn.commit()
    assert _due_ids(schema) == []
    with conn.cursor() as cr:
        assert outbox.resume_account(cr, 1) == 2
    conn.commit()
    assert _due_ids(schema) == [1, 2]
    with conn.cursor() as cr:
        assert [i for i, _ in outbox.claim(cr, "W2")] == [1, 2]
    conn.close()


def test_a_hold_makes_backoff_links_wait_for_the_throttle(schema):
    """A 429 holds the whole account: a link that waited on a backoff now waits on the
    throttle, and an answer that follows does not end that wait."""
    insert_links(schema, 2)
    conn = connect(schema)
    with conn.cursor() as cr:
        claimed = dict(outbox.claim(cr, "W", limit=1))
        outbox.finish_retry(cr, 1, "W", claimed[1], 5, "503")
        outbox.hold_account(cr, 1, 900)
        assert outbox.resume_account(cr, 1) == 0
        cr.execute("SELECT id, wait_reason FROM impact_calendar_link ORDER BY id")
        assert cr.fetchall() == [(1, outbox.WAIT_THROTTLE), (2, outbox.WAIT_THROTTLE)]
    conn.commit()
    assert _due_ids(schema) == []
    conn.close()


def test_a_transient_failure_keeps_one_link_due_within_the_probe_delay(schema):
    """Long backoffs (attempt 7: up to an hour) would hide the end of an outage: one link of the
    account is brought forward, the others keep theirs."""
    insert_links(schema, 3)
    conn = connect(schema)
    with conn.cursor() as cr:
        claimed = dict(outbox.claim(cr, "W"))
        for link_id, seq in claimed.items():
            outbox.finish_retry(cr, link_id, "W", seq, 3000 + link_id, "503")
        assert outbox.keep_probe(cr, 1, 20)
        assert not outbox.keep_probe(cr, 1, 20), "one probe is enough"
        cr.execute(
            """SELECT id FROM impact_calendar_link
                WHERE next_try <= (now() AT TIME ZONE 'UTC') + interval '20 seconds' ORDER BY id"""
        )
        assert cr.fetchall() == [(1,)]
    conn.commit()
    conn.close()


def _age_claims(schema, token, seconds):
    """Make ``token``'s claims look ``seconds`` old (instead of sleeping)."""
    conn = connect(schema)
    with conn.cursor() as cr:
        cr.execute(
            "UPDATE impact_calendar_link SET claimed_until = claimed_until - make_interval(secs => %s) WHERE claim_token = %s",
            (seconds, token),
        )
    conn.commit()
    conn.close()


def test_claims_of_a_dead_worker_are_taken_over_long_before_the_lease(schema):
    """A worker's connection dies with it (SIGKILL): its claims, a few seconds old, are taken
    over, not left for the 300 s lease. A live worker's claims of the same age are not."""
    insert_links(schema, 4)
    dead, alive, other = connect(schema), connect(schema), connect(schema)
    with dead.cursor() as cr:
        assert [i for i, _ in outbox.claim(cr, "DEAD", limit=2, lease=300)] == [1, 2]
    dead.commit()
    with alive.cursor() as cr:
        assert [i for i, _ in outbox.claim(cr, "ALIVE", limit=2, lease=300)] == [3, 4]
    alive.commit()
    with other.cursor() as cr:
        assert outbox.claim(cr, "EARLY", lease=300) == [], "fresh claims are left alone"
        assert outbox.next_due(cr, lease=300) > datetime.utcnow() + timedelta(seconds=200)
    other.commit()
    dead_pid = dead.get_backend_pid()
    dead.close()  # the worker's process is killed: PostgreSQL ends its backend
    _wait_backend_gone(other, dead_pid)
    _age_claims(schema, "DEAD", outbox.CLAIM_GRACE + 1)
    _age_claims(schema, "ALIVE", outbox.CLAIM_GRACE + 1)
    with other.cursor() as cr:
        assert outbox.next_due(cr, lease=300) < datetime.utcnow() + timedelta(seconds=5)
        assert [i for i, _ in outbox.claim(cr, "TAKER", lease=300)] == [1, 2]
    other.commit()
    with alive.cursor() as cr:
        assert outbox.finish_done(cr, 3, "ALIVE", 1, "ext-3", "h", 0), "the live worker still holds its claim"
    alive.commit()
    alive.close()
    other.close()


def _wait_backend_gone(conn, pid):
    """A closed connection's backend leaves pg_stat_activity when it has read the close: wait
    for that (a condition, not a duration)."""
    for _attempt in range(500):
        with conn.cursor() as cr:
            cr.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            count = cr.fetchone()[0]
        conn.commit()
        if not count:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the closed connection's backend did not end")
