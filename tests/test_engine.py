"""The pure per-link decisions (sync/engine.py): every plan and every outcome kind."""

import random

import pytest

from impact_calendar_integration.sync import engine, outbox, payload, policy, providers
from impact_calendar_integration.sync.outcomes import Kind, Outcome
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE, Operation

BODY = {"summary": "Pottery"}
HASH = payload.body_hash(BODY)


def client_id(generation):
    return f"id-g{generation}"


# -- plan ---------------------------------------------------------------------------------------
def test_new_class_is_created_with_the_generations_id():
    op = engine.plan(7, engine.LinkState(generation=2), BODY, client_id)
    assert (op.key, op.action, op.body, op.client_id) == (7, CREATE, BODY, "id-g2")
    assert op.meta == {"hash": HASH, "resent": False, "calendar": None}


def test_new_class_goes_to_the_target_calendar():
    op = engine.plan(7, engine.LinkState(), BODY, client_id, calendar="cal-1")
    assert op.action == CREATE and op.meta["calendar"] == "cal-1"


def test_event_in_another_calendar_is_moved_delete_first():
    """A switch of destination: delete where it is (recorded), then create in the new one."""
    link = engine.LinkState(external_id="e1", pushed_hash=HASH, generation=2, calendar=None)
    op = engine.plan(7, link, BODY, client_id, calendar="cal-1")
    assert (op.action, op.external_id, op.meta) == (DELETE, "e1", {"calendar": None, "move": True})
    for kind in (Kind.DONE, Kind.GONE):
        step = engine.settle(op, Outcome(kind), link)
        assert (step.kind, step.generation, step.external_id) == (engine.RECREATE, 3, None)
    back = engine.plan(7, engine.LinkState(external_id="e1", calendar="cal-1"), BODY, client_id, calendar=None)
    assert back.action == DELETE and back.meta == {"calendar": "cal-1", "move": True}


def test_done_records_the_calendar_of_the_event():
    link = engine.LinkState()
    op = engine.plan(7, link, BODY, client_id, calendar="cal-1")
    step = engine.settle(op, Outcome(Kind.DONE, external_id="e9"), link)
    assert (step.kind, step.external_id, step.calendar) == (engine.SYNCED, "e9", "cal-1")


def test_a_404_in_our_calendar_makes_the_calendar_suspect():
    create = engine.plan(7, engine.LinkState(), BODY, client_id, calendar="cal-1")
    assert engine.calendar_suspect(create, Outcome(Kind.REJECTED, status=404))
    main = engine.plan(7, engine.LinkState(), BODY, client_id)
    assert not engine.calendar_suspect(main, Outcome(Kind.GONE, status=404))


def test_calendar_create_failures():
    assert engine.calendar_failed(Outcome(Kind.AUTH_REVOKED, message="x")).reconnect == "x"
    assert engine.calendar_failed(Outcome(Kind.RATE_LIMITED, retry_after=7)).hold == 7
    rejected = engine.calendar_failed(Outcome(Kind.REJECTED, message="no"))
    assert (rejected.kind, rejected.account_error) == (engine.RETRYING, "no")


def test_create_after_a_dead_worker_is_marked_resent():
    op = engine.plan(7, engine.LinkState(create_sent=True), BODY, client_id)
    assert op.action == CREATE and op.meta["resent"]


def test_create_after_a_failed_try_is_marked_resent():
    """A failed try may have been applied (its answer lost): the provider must know."""
    op = engine.plan(7, engine.LinkState(attempts=1), BODY, client_id)
    assert op.action == CREATE and op.meta["resent"] is True


def test_update_after_a_failed_try_is_marked_resent():
    """A failed update may have been applied too (CalDAV's ETag changed): the provider must know."""
    first = engine.plan(7, engine.LinkState(external_id="e1", pushed_hash="old"), BODY, client_id)
    retry = engine.plan(7, engine.LinkState(external_id="e1", pushed_hash="old", attempts=1), BODY, client_id)
    assert (first.action, first.meta["resent"], retry.action, retry.meta["resent"]) == (UPDATE, False, UPDATE, True)


def test_changed_class_is_updated():
    op = engine.plan(7, engine.LinkState(external_id="e1", pushed_hash="old"), BODY, client_id)
    assert (op.action, op.external_id, op.meta["hash"]) == (UPDATE, "e1", HASH)


def test_unchanged_class_needs_no_call():
    step = engine.plan(7, engine.LinkState(external_id="e1", pushed_hash=HASH, generation=3), BODY, client_id)
    assert step == engine.Transition(engine.SYNCED, external_id="e1", pushed_hash=HASH, generation=3)


def test_gone_class_is_deleted_or_nothing():
    op = engine.plan(7, engine.LinkState(external_id="e1", pushed_hash=HASH), None, client_id)
    assert (op.action, op.external_id) == (DELETE, "e1")
    assert engine.plan(7, engine.LinkState(), None, client_id) == engine.Transition(engine.SYNCED)


def test_forget_leaves_a_past_event_in_place():
    step = engine.plan(7, engine.LinkState(external_id="e1", generation=1), None, client_id, forget=True)
    assert step == engine.Transition(engine.SYNCED, generation=1)


# -- settle -------------------------------------------------------------------------------------
def create():
    return Operation(key=7, action=CREATE, body=BODY, client_id="id-g0", meta={"hash": HASH, "resent": False})


def update():
    return Operation(key=7, action=UPDATE, body=BODY, external_id="e1", meta={"hash": HASH})


def delete():
    return Operation(key=7, action=DELETE, external_id="e1")


FRESH = engine.LinkState()


def test_done_create_records_id_and_hash():
    t = engine.settle(create(), Outcome(Kind.DONE, external_id="e9"), FRESH)
    assert (t.kind, t.external_id, t.pushed_hash, t.pushed) == (engine.SYNCED, "e9", HASH, True)


@pytest.mark.parametrize(
    "op, outcome, link",
    [
        (create(), Outcome(Kind.DONE, external_id="id-g0", status=409), FRESH),  # Google 409 then GET
        (create(), Outcome(Kind.DONE, external_id="e9"), engine.LinkState(attempts=1)),  # a retry
        (Operation(key=7, action=CREATE, body=BODY, meta={"hash": HASH, "resent": True}),
         Outcome(Kind.DONE, external_id="e9"), FRESH),  # resent after a dead worker
    ],
)
def test_retried_create_keeps_the_id_and_sends_the_body_again(op, outcome, link):
    t = engine.settle(op, outcome, link)
    assert (t.kind, t.external_id, t.pushed_hash) == (engine.UNVERIFIED, outcome.external_id, None)
    assert engine.settle(op, outcome, link, create_sends_current_body=False) == t


@pytest.mark.parametrize(
    "op, link",
    [
        (create(), engine.LinkState(attempts=1)),  # a retry after a lost answer
        (Operation(key=7, action=CREATE, body=BODY, meta={"hash": HASH, "resent": True, "calendar": "cal-1"}), FRESH),
    ],
)
def test_retried_create_of_a_provider_sending_the_current_body_is_done(op, link):
    """CalDAV's retried create overwrites with the body it sends: no verifying update follows."""
    outcome = Outcome(Kind.DONE, external_id="e9", status=204)
    t = engine.settle(op, outcome, link, create_sends_current_body=True)
    assert (t.kind, t.external_id, t.pushed_hash, t.pushed) == (engine.SYNCED, "e9", HASH, True)
    assert t.calendar == op.meta.get("calendar")
    # failures are settled the same way whatever the flag
    for kind in (Kind.TRANSIENT, Kind.GONE, Kind.REJECTED, Kind.AUTH_REVOKED):
        failed = Outcome(kind, status=503)
        assert engine.settle(op, failed, link, create_sends_current_body=True).kind == engine.settle(
            op, failed, link, rng=random.Random(1)).kind


def test_only_caldav_declares_that_its_create_sends_the_current_body():
    flags = {name: providers.get(name).create_sends_current_body for name in ("google", "microsoft", "caldav")}
    assert flags == {"google": False, "microsoft": False, "caldav": True}


def test_done_update_and_delete():
    assert engine.settle(update(), Outcome(Kind.DONE), FRESH).external_id == "e1"
    t = engine.settle(delete(), Outcome(Kind.DONE), FRESH)
    assert (t.kind, t.external_id, t.pushed_hash) == (engine.SYNCED, None, None)


def test_gone_on_delete_is_done():
    t = engine.settle(delete(), Outcome(Kind.GONE, status=410), FRESH)
    assert (t.kind, t.external_id, t.pushed) == (engine.SYNCED, None, True)


@pytest.mark.parametrize("op", [update(), create()])
def test_gone_on_update_or_create_recreates_with_a_new_generation(op):
    t = engine.settle(op, Outcome(Kind.GONE, status=404, message="Not Found"), engine.LinkState(generation=4))
    assert (t.kind, t.generation, t.message) == (engine.RECREATE, 5, "Not Found")


def test_rate_limited_waits_and_holds_the_account():
    t = engine.settle(update(), Outcome(Kind.RATE_LIMITED, retry_after=30, message="slow down"), FRESH)
    assert (t.kind, t.delay, t.hold, t.message) == (engine.RETRYING, 30, 30, "slow down")


def test_transient_backs_off_without_holding_the_account():
    t = engine.settle(update(), Outcome(Kind.TRANSIENT), engine.LinkState(attempts=3), rng=random.Random(1))
    assert t.kind == engine.RETRYING and t.hold is None and t.message == "transient"
    assert policy.BASE_DELAY / 2 <= t.delay <= policy.BASE_DELAY * 8


def test_revoked_pauses_and_asks_to_reconnect():
    t = engine.settle(update(), Outcome(Kind.AUTH_REVOKED, message="invalid_grant"), FRESH)
    assert (t.kind, t.reconnect, t.pushed) == (engine.PAUSED, "invalid_grant", False)
    assert engine.settle(update(), Outcome(Kind.AUTH_REVOKED), FRESH).reconnect == "access revoked"


def test_rejected_keeps_the_error_for_the_user():
    t = engine.settle(update(), Outcome(Kind.REJECTED, status=400, message="Invalid value"), FRESH)
    assert (t.kind, t.message, t.account_error) == (engine.REJECTED, "Invalid value", "Invalid value")


def test_every_outcome_kind_and_action_gives_a_transition_the_outbox_records():
    recordable = {engine.SYNCED, engine.UNVERIFIED, engine.RECREATE, engine.RETRYING, engine.REJECTED, engine.PAUSED}
    for op in (create(), update(), delete()):
        for kind in Kind:
            for link in (FRESH, engine.LinkState(attempts=2, create_sent=True)):
                assert engine.settle(op, Outcome(kind, external_id="x"), link).kind in recordable
    assert {name for name in dir(engine) if name.isupper()} >= {k.upper() for k in recordable}
    assert callable(outbox.record)


def test_registry_gives_each_provider_its_parts():
    assert {name for name, _label in providers.choices()} >= {"google", "microsoft"}
    for name, _label in providers.choices():
        provider = providers.get(name)
        assert provider.client_id("db", 1, 2, 0) == provider.client_id("db", 1, 2, 0) != provider.client_id("db", 1, 2, 1)
        if provider.connect == providers.FORM:  # no OAuth (CalDAV): a credential check instead, no app id
            assert callable(provider.check) and not provider.start
            continue
        assert provider.connect == providers.OAUTH and callable(provider.start) and callable(provider.finish)
        assert [setting.name for setting in provider.settings[:2]] == ["client_id", "client_secret"]
        config = provider.config(lambda key: {f"impact_calendar.{name}_client_id": "cid"}.get(key, ""))
        assert config.client_id == "cid" and config.client_secret == "", "unset: empty, not a default"


def test_an_account_answering_again_is_told_apart_from_one_still_failing():
    done, gone = Outcome(Kind.DONE, external_id="e"), Outcome(Kind.GONE, status=404)
    transient, throttled = Outcome(Kind.TRANSIENT, status=503), Outcome(Kind.RATE_LIMITED, retry_after=30)
    refused = Outcome(Kind.REJECTED, status=400)
    assert engine.answered_again([done, gone, refused])
    assert not engine.answered_again([])
    assert not engine.answered_again([done, transient])
    assert not engine.answered_again([done, throttled]), "a throttled account keeps its Retry-After"
    assert engine.failed_transiently([done, transient])
    assert not engine.failed_transiently([throttled, done])


def test_an_unbooked_class_whose_create_answer_was_lost_is_found_then_deleted():
    """Its create may have been applied (answer lost): no id is known, so the same idempotent
    create is sent again with a placeholder body, its event kept, then deleted next round."""
    lost = engine.LinkState(attempts=1)
    op = engine.plan(7, lost, None, client_id, cleanup_body=BODY, calendar="cal-1")
    assert (op.action, op.client_id, op.body, op.meta["cleanup"], op.meta["calendar"]) == (CREATE, "id-g0", BODY, True, "cal-1")
    found = engine.settle(op, Outcome(Kind.DONE, external_id="ev-1", status=200), lost, create_sends_current_body=True)
    assert (found.kind, found.external_id, found.calendar) == (engine.UNVERIFIED, "ev-1", "cal-1")
    then = engine.plan(7, engine.LinkState(external_id="ev-1", calendar="cal-1"), None, client_id, calendar="cal-1")
    assert (then.action, then.external_id) == (DELETE, "ev-1")
    # Never sent, or nothing to clean: nothing to do.
    assert engine.plan(7, engine.LinkState(), None, client_id, cleanup_body=BODY).kind == engine.SYNCED
    assert engine.plan(7, lost, None, client_id).kind == engine.SYNCED


def test_a_throttle_without_retry_after_never_holds_the_account_for_long():
    """The link's attempts (outages, waits for the calendar) must not turn a 429 without
    Retry-After into an hour-long hold of the whole account; a Retry-After is honoured."""
    tried = engine.LinkState(attempts=16)
    op = engine.plan(7, tried, BODY, client_id)
    bare = engine.settle(op, Outcome(Kind.RATE_LIMITED, status=429), tried, rng=random.Random(3))
    assert bare.hold == bare.delay <= engine.PROBE_DELAY
    told = engine.settle(op, Outcome(Kind.RATE_LIMITED, status=429, retry_after=900), tried)
    assert told.hold == told.delay == 900
