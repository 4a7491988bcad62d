"""The state machine of a sync link (impact.calendar.link.state), queue_job style.

A link's ``state`` says where its last push left it. It moves only through ``TRANSITIONS``, a
table of (from state, event) -> to state, and only ``apply`` writes it: the outbox's statements
hand it their row selection and their other columns, and it adds the state and the failure
bookkeeping (``attempts``, ``first_failed_at``) the event means.

Events are what happened to a link. A worker recording a push result applies the engine's
``Transition.kind``; four of them are named by the state they lead to (SYNCED, RETRYING,
REJECTED, PAUSED), two lead back to PENDING and are named by why (RECREATE, UNVERIFIED). Folding
the change log applies CHANGED, RETRY_NOW or CALENDAR_LOST. ``data/neutralize.sql`` (plain SQL,
run by ``odoo-bin neutralize`` without Python) pauses a copied database's links with NEUTRALIZED:
its statement is ``statement(NEUTRALIZED, "dirty")``, word for word (a test holds it to that).

The change log speaks three verbs, nothing else:

- *mark*: the booking side notes, in its transaction, which classes or instructors changed
  (``impact.calendar.link._mark_*``); no SQL;
- *append*: at commit, the marks become rows of the change log (``_append_changes``, one
  statement with the push action's wake-up), the only write a booking makes;
- *fold*: a worker takes the log and folds it into links (``_fold_changes``, ``outbox.fold_*``),
  applying the events below.
"""

import re

# -- states -----------------------------------------------------------------------------------
PENDING = "pending"  # to be pushed (new, changed, or to be created anew)
SYNCED = "synced"  # the provider holds what the link says
RETRYING = "retrying"  # the last push failed; tried again after ``next_try``
REJECTED = "rejected"  # the provider refused this version; waits for the class to change
PAUSED = "paused"  # the account cannot push (needs reconnect); resumed by RETRY_NOW

STATES = (PENDING, SYNCED, RETRYING, REJECTED, PAUSED)
INITIAL = PENDING  # the state a new link is inserted with

# The labels of impact.calendar.link.state (Odoo translates field selections).
LABELS = [
    (PENDING, "Waiting"),
    (SYNCED, "In calendar"),
    (RETRYING, "Retrying"),
    (REJECTED, "Rejected"),
    (PAUSED, "Paused (reconnect)"),
]

# -- events -----------------------------------------------------------------------------------
# Results of a push, recorded by the claim's holder (``outbox.record``); the engine's kinds.
RECREATE = "recreate"  # the external event vanished (or its id is burned): create anew
UNVERIFIED = "unverified"  # a retried create's event: keep its id, send the current body again
# SYNCED, RETRYING, REJECTED and PAUSED (above) are results too: they lead to that state.
RESULTS = (SYNCED, UNVERIFIED, RECREATE, RETRYING, REJECTED, PAUSED)

# Changes, folded from the change log (``outbox.fold_*``, ``outbox.forget_calendar``).
CHANGED = "changed"  # the class or instructor changed: push again; a rejected link gets a new chance
RETRY_NOW = "retry_now"  # an admin or a reconnect: drop backoff and pause, push again
CALENDAR_LOST = "calendar_lost"  # the calendar holding the event is gone: create anew
NEUTRALIZED = "neutralized"  # a copy of the database: nothing pushes until it is reconnected

# A worker claims only links that are not paused (``outbox.claim``): no result starts from PAUSED.
_HELD = (PENDING, SYNCED, RETRYING, REJECTED)

TRANSITIONS = {
    **{(state, SYNCED): SYNCED for state in _HELD},
    **{(state, UNVERIFIED): PENDING for state in _HELD},
    **{(state, RECREATE): PENDING for state in _HELD},
    **{(state, RETRYING): RETRYING for state in _HELD},
    **{(state, REJECTED): REJECTED for state in _HELD},
    **{(state, PAUSED): PAUSED for state in _HELD},
    **{(state, CHANGED): PENDING if state == REJECTED else state for state in STATES},
    **{(state, RETRY_NOW): PENDING for state in STATES},
    **{(state, CALENDAR_LOST): PENDING for state in STATES},
    **{(state, NEUTRALIZED): PAUSED for state in STATES},
}
EVENTS = tuple(dict.fromkeys(event for _state, event in TRANSITIONS))

# What an event does to the failure bookkeeping. ``attempts`` counts failures since the last
# success or retry; ``first_failed_at`` keeps the time of the first failure since the last
# success (how long a link has been failing: the attention state), and a success clears it.
RESET, COUNT, SINCE, CLEAR = "0", "attempts + 1", "coalesce(first_failed_at, now() AT TIME ZONE 'UTC')", "NULL"
BOOKKEEPING = {
    SYNCED: {"attempts": RESET, "first_failed_at": CLEAR},
    UNVERIFIED: {"attempts": RESET, "first_failed_at": CLEAR},
    RECREATE: {},
    RETRYING: {"attempts": COUNT, "first_failed_at": SINCE},
    REJECTED: {"attempts": COUNT, "first_failed_at": SINCE},
    PAUSED: {"first_failed_at": SINCE},
    CHANGED: {},
    RETRY_NOW: {"attempts": RESET},
    CALENDAR_LOST: {"attempts": RESET},
    NEUTRALIZED: {},
}


class InvalidTransition(ValueError):
    """A link was asked to move in a way ``TRANSITIONS`` does not allow."""


def target(state, event):
    """The state a link in ``state`` reaches on ``event``; InvalidTransition when not allowed."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise InvalidTransition(f"a {state!r} link cannot take {event!r}") from None


def _literal(value):
    if not re.fullmatch(r"[a-z_]+", value):  # states are constants of this module
        raise ValueError(value)
    return f"'{value}'"


def state_sql(event):
    """The SET and WHERE fragments of ``event``: the new state (one value, or a CASE on the old
    one), the failure bookkeeping, and the states it may start from (None: any)."""
    if event not in BOOKKEEPING:
        raise InvalidTransition(f"unknown link event {event!r}")
    moves = {state: to for (state, name), to in TRANSITIONS.items() if name == event}
    if len(set(moves.values())) == 1:
        new_state = _literal(next(iter(moves.values())))
    else:
        whens = " ".join(f"WHEN {_literal(state)} THEN {_literal(to)}" for state, to in moves.items())
        new_state = f"CASE state {whens} END"
    sets = [f"state = {new_state}"] + [f"{column} = {value}" for column, value in BOOKKEEPING[event].items()]
    sources = None if set(moves) == set(STATES) else "state IN (" + ", ".join(map(_literal, moves)) + ")"
    return ", ".join(sets), sources


def statement(event, where, assignments=""):
    """The UPDATE that applies ``event`` to the links ``where`` selects (see ``apply``)."""
    sets, sources = state_sql(event)
    if assignments:
        sets = f"{sets}, {assignments}"
    condition = f"({where}) AND {sources}" if sources else where
    return f"UPDATE impact_calendar_link SET {sets} WHERE {condition}"


def apply(cr, event, where, params, assignments=""):
    """Apply ``event`` to the links ``where`` selects, in one UPDATE; returns how many moved.

    The one writer of ``state``, ``attempts`` and ``first_failed_at``. ``where`` and
    ``assignments`` (the statement's other columns) are SQL constants of the caller, every value
    a parameter of ``params``; the caller's ``where`` locks rows in id order. Links in a state
    the table has no move from for ``event`` are left as they are and not counted. Every SQL
    expression sees the row as it was before the update (``state`` is the old state).
    """
    # Every fragment is a constant of this module or of the caller; values go through params.
    cr.execute(statement(event, where, assignments), params)  # pylint: disable=sql-injection
    return cr.rowcount
