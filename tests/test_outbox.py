"""Claim/finish logic of the outbox against real PostgreSQL, with concurrent workers."""

import threading
import uuid
from collections import Counter

import psycopg2
import pytest
from pg import connect, insert_links, outbox_schema

from impact_calendar_integration.sync import outbox


@pytest.fixture
def schema():
    with outbox_schema() as name:
        yield name


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
        assert outbox.mark_users(cr, [1]) == 2
        assert outbox.claim(cr, "W3") == []
    conn.commit()
    assert _row(schema, claimed[0][0])[:2] == (True, "retrying")
    assert _row(schema, claimed[1][0])[:2] == (True, "paused")
    with conn.cursor() as cr:
        # A reconnect (retry) resumes the paused link and drops the backoff.
        assert outbox.mark_users(cr, [1], retry=True) == 2
        assert [i for i, _ in outbox.claim(cr, "W4")] == [claimed[0][0], claimed[1][0]]
    conn.commit()
    conn.close()


def test_change_log_is_taken_once_and_marks_links(schema):
    insert_links(schema, 3)
    user, worker_a, worker_b = connect(schema), connect(schema), connect(schema)
    with user.cursor() as cr:
        outbox.append_changes(cr, [(1, None, outbox.CHANGE_EVENT), (2, None, outbox.CHANGE_EVENT)])
    user.commit()
    # Once A took the changes, B (at READ COMMITTED, as workers run) finds none left.
    worker_b.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED)
    with worker_a.cursor() as cr:
        assert sorted(outbox.take_changes(cr)) == [(1, None, "event"), (2, None, "event")]
        assert outbox.mark_events(cr, [1, 2]) == 2
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
        outbox.append_changes(bcr, [(1, None, outbox.CHANGE_EVENT)])
    booking.commit()
    with worker.cursor() as cr:
        outbox.mark_events(cr, [ref for ref, _uid, _kind in outbox.take_changes(cr)])
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
