"""The link state machine (sync/link_states.py): its table, and its one writer against real
PostgreSQL, directly and through the outbox."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pg import connect, insert_links, outbox_schema

from impact_calendar_integration.sync import engine, link_states, outbox
from impact_calendar_integration.sync.link_states import (
    CALENDAR_LOST,
    CHANGED,
    NEUTRALIZED,
    PAUSED,
    PENDING,
    RECREATE,
    REJECTED,
    RETRY_NOW,
    RETRYING,
    STATES,
    SYNCED,
    UNVERIFIED,
)

# Every allowed move, written out by hand: the table must say exactly this.
HELD = (PENDING, SYNCED, RETRYING, REJECTED)  # the states a claimed link can be in
EXPECTED = {
    **{(state, SYNCED): SYNCED for state in HELD},
    **{(state, UNVERIFIED): PENDING for state in HELD},
    **{(state, RECREATE): PENDING for state in HELD},
    **{(state, RETRYING): RETRYING for state in HELD},
    **{(state, REJECTED): REJECTED for state in HELD},
    **{(state, PAUSED): PAUSED for state in HELD},
    (PENDING, CHANGED): PENDING,
    (SYNCED, CHANGED): SYNCED,
    (RETRYING, CHANGED): RETRYING,
    (REJECTED, CHANGED): PENDING,
    (PAUSED, CHANGED): PAUSED,
    **{(state, RETRY_NOW): PENDING for state in STATES},
    **{(state, CALENDAR_LOST): PENDING for state in STATES},
    **{(state, NEUTRALIZED): PAUSED for state in STATES},
}

# What each event does to (attempts, first_failed_at) of a link that failed twice since
# ``EARLIER``: "reset"/"count"/"keep" attempts; "clear"/"keep" the time (a failure keeps the
# first one).
BOOKKEEPING = {
    SYNCED: ("reset", "clear"),
    UNVERIFIED: ("reset", "clear"),
    RECREATE: ("keep", "keep"),
    RETRYING: ("count", "keep"),
    REJECTED: ("count", "keep"),
    PAUSED: ("keep", "keep"),
    CHANGED: ("keep", "keep"),
    RETRY_NOW: ("reset", "keep"),
    CALENDAR_LOST: ("reset", "keep"),
    NEUTRALIZED: ("keep", "keep"),
}
FAILURES = {RETRYING, REJECTED, PAUSED}  # the events that start a failure's clock
EARLIER = datetime(2020, 1, 1, 12, 0)


@pytest.fixture(scope="module")
def schema():
    with outbox_schema() as name:
        yield name


@pytest.fixture
def cr(schema):
    conn = connect(schema)
    cursor = conn.cursor()
    yield cursor
    conn.rollback()  # every test leaves the table as it found it
    conn.close()


def _link(cr, state, attempts=2, first_failed_at=EARLIER):
    cr.execute(
        """INSERT INTO impact_calendar_link (event_ref, user_id, state, attempts, first_failed_at)
           VALUES ((SELECT coalesce(max(event_ref), 0) + 1 FROM impact_calendar_link), 1, %s, %s, %s)
           RETURNING id""",
        (state, attempts, first_failed_at),
    )
    return cr.fetchone()[0]


def _read(cr, link_id):
    cr.execute("SELECT state, attempts, first_failed_at FROM impact_calendar_link WHERE id = %s", (link_id,))
    return cr.fetchone()


def _now(cr):
    cr.execute("SELECT now() AT TIME ZONE 'UTC'")
    return cr.fetchone()[0]


# -- the table ---------------------------------------------------------------------------------
def test_the_table_holds_exactly_the_allowed_moves():
    assert link_states.TRANSITIONS == EXPECTED
    assert set(link_states.EVENTS) == set(BOOKKEEPING)
    assert [value for value, _label in link_states.LABELS] == list(STATES)
    assert link_states.INITIAL == PENDING


def test_the_engine_speaks_the_table():
    """Every Transition kind the engine makes is a result event of the table."""
    assert set(engine.KINDS) == set(link_states.RESULTS)
    assert {engine.SYNCED, engine.RETRYING, engine.REJECTED, engine.PAUSED} <= set(STATES)


@pytest.mark.parametrize(("state", "event"), [(PAUSED, SYNCED), (PAUSED, RETRYING), (PAUSED, UNVERIFIED)])
def test_a_move_not_in_the_table_is_refused(state, event):
    with pytest.raises(link_states.InvalidTransition, match=f"{state!r} link cannot take {event!r}"):
        link_states.target(state, event)


def test_an_unknown_event_is_refused_before_any_sql(cr):
    cr.execute("SELECT 1")  # the cursor works; the refusal comes before any statement
    with pytest.raises(link_states.InvalidTransition, match="unknown link event 'done'"):
        link_states.apply(cr, "done", "true", {})
    with pytest.raises(link_states.InvalidTransition, match="unknown transition 'done'"):
        outbox.record(cr, 1, "token", 1, engine.Transition("done"))


def test_neutralize_sql_pauses_links_with_the_tables_statement():
    """``odoo-bin neutralize`` runs plain SQL: its link statement is the table's, word for word."""
    path = Path(link_states.__file__).parent.parent / "data" / "neutralize.sql"
    link_lines = [line for line in path.read_text().splitlines() if "impact_calendar_link" in line]
    assert link_lines == [link_states.statement(NEUTRALIZED, "dirty") + ";"]


# -- the one writer ----------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "event"), sorted(EXPECTED))
def test_every_allowed_move_and_its_bookkeeping(cr, state, event):
    link_id = _link(cr, state)
    assert link_states.apply(cr, event, "id = %(id)s", {"id": link_id}) == 1
    new_state, attempts, first_failed_at = _read(cr, link_id)
    assert new_state == EXPECTED[state, event]
    attempts_rule, since_rule = BOOKKEEPING[event]
    assert attempts == {"reset": 0, "count": 3, "keep": 2}[attempts_rule]
    assert first_failed_at == {"clear": None, "keep": EARLIER}[since_rule]


@pytest.mark.parametrize("event", sorted(BOOKKEEPING))
def test_the_first_failure_starts_the_clock(cr, event):
    """A link that has not failed since its last success: a failure sets ``first_failed_at`` to
    now, nothing else does."""
    state = PENDING
    link_id = _link(cr, state, attempts=0, first_failed_at=None)
    before = _now(cr)
    link_states.apply(cr, event, "id = %(id)s", {"id": link_id})
    first_failed_at = _read(cr, link_id)[2]
    if event in FAILURES:
        assert before - timedelta(seconds=1) <= first_failed_at <= before + timedelta(seconds=1)
    else:
        assert first_failed_at is None


def test_rows_in_a_state_without_that_move_are_left_alone(cr):
    paused = _link(cr, PAUSED)
    pending = _link(cr, PENDING)
    moved = link_states.apply(cr, SYNCED, "id = ANY(%(ids)s)", {"ids": [paused, pending]})
    assert moved == 1
    assert _read(cr, paused) == (PAUSED, 2, EARLIER)
    assert _read(cr, pending) == (SYNCED, 0, None)


def test_one_event_moves_a_set_of_links_by_their_own_state(cr):
    ids = {state: _link(cr, state) for state in STATES}
    assert link_states.apply(cr, CHANGED, "id = ANY(%(ids)s)", {"ids": list(ids.values())}) == len(STATES)
    assert {state: _read(cr, link_id)[0] for state, link_id in ids.items()} == {
        PENDING: PENDING, SYNCED: SYNCED, RETRYING: RETRYING, REJECTED: PENDING, PAUSED: PAUSED,
    }


# -- through the outbox ------------------------------------------------------------------------
class CountingCursor:
    """A cursor that counts the statements it runs."""

    def __init__(self, cr):
        self.cr, self.statements = cr, 0

    def execute(self, query, params=None):
        self.statements += 1
        return self.cr.execute(query, params)

    def __getattr__(self, name):
        return getattr(self.cr, name)


RESULTS = [
    (engine.Transition(engine.SYNCED, external_id="ext", pushed_hash="h"), SYNCED),
    (engine.Transition(engine.UNVERIFIED, external_id="ext"), PENDING),
    (engine.Transition(engine.RECREATE, generation=1, message="gone"), PENDING),
    (engine.Transition(engine.RETRYING, delay=30, message="503"), RETRYING),
    (engine.Transition(engine.REJECTED, message="400"), REJECTED),
    (engine.Transition(engine.PAUSED, message="revoked"), PAUSED),
]


@pytest.mark.parametrize(("transition", "state"), RESULTS, ids=[kind.kind for kind, _state in RESULTS])
def test_each_result_is_one_statement_leading_to_its_state(schema, transition, state):
    insert_links(schema, 1)
    conn = connect(schema)
    try:
        with conn.cursor() as cr:
            cr.execute("UPDATE impact_calendar_link SET state = %s, attempts = 1, first_failed_at = %s", (RETRYING, EARLIER))
            [(link_id, seq)] = outbox.claim(cr, "W")
            counting = CountingCursor(cr)
            assert outbox.record(counting, link_id, "W", seq, transition)
            assert counting.statements == 1
            assert _read(cr, link_id)[0] == state
            cr.execute("DELETE FROM impact_calendar_link")
        conn.commit()
    finally:
        conn.close()


def test_a_result_for_a_paused_link_is_refused_and_counts_as_lost(cr):
    """A worker never holds a paused link (``claim`` skips them): a result for one is not
    recorded, as when the claim was lost."""
    link_id = _link(cr, PAUSED)
    cr.execute("UPDATE impact_calendar_link SET claim_token = 'W' WHERE id = %s", (link_id,))
    assert not outbox.record(cr, link_id, "W", 1, engine.Transition(engine.SYNCED, external_id="ext"))
    assert _read(cr, link_id) == (PAUSED, 2, EARLIER)


@pytest.mark.parametrize(
    ("fold", "args"),
    [
        (outbox.fold_events, ([1, 2],)),
        (outbox.fold_users, ([1],)),
        (outbox.fold_retries, ([(1, 1)],)),
        (outbox.forget_calendar, (1, "cal")),
    ],
    ids=["fold_events", "fold_users", "fold_retries", "forget_calendar"],
)
def test_each_fold_is_one_statement(cr, fold, args):
    counting = CountingCursor(cr)
    fold(counting, *args)
    assert counting.statements == 1


def test_a_retry_now_resumes_a_paused_link_and_resets_its_attempts(cr):
    link_id = _link(cr, PAUSED)
    cr.execute("UPDATE impact_calendar_link SET user_id = 7, dirty = false WHERE id = %s", (link_id,))
    assert outbox.fold_users(cr, [7], retry=True) == 1
    assert _read(cr, link_id) == (PENDING, 0, EARLIER)
    assert outbox.fold_users(cr, [7]) == 1  # a plain change keeps the state
    assert _read(cr, link_id) == (PENDING, 0, EARLIER)
