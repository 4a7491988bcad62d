"""Malformed provider answers and partial batch failures, at the client level, through the real
libraries (googleapiclient/httplib2/google-auth, requests/MSAL) against the loopback emulators.

Whatever garbage comes back (a proxy's HTML page, a non-JSON 200, a truncated or incomplete
multipart batch, a create answered without an id), every operation gets a typed ``Outcome`` and
``push`` never raises; retrying what was not DONE converges on exactly one event per class.
"""

import json
import time

import pytest

from impact_calendar_integration.tests.emulators import tls
from impact_calendar_integration.tests.emulators.common import Response
from impact_calendar_integration.tests.emulators.microsoft import DEFAULT_USER, MicrosoftEmulator
from impact_calendar_integration.sync.providers.microsoft import oauth as oauth_microsoft
from impact_calendar_integration.sync.providers.google.config import GoogleConfig
from impact_calendar_integration.sync.providers.microsoft.config import MicrosoftConfig
from impact_calendar_integration.sync import engine
from impact_calendar_integration.sync.providers.google.ids import deterministic_event_id
from impact_calendar_integration.sync.providers.microsoft.ids import transaction_id
from impact_calendar_integration.sync.outcomes import Kind, Outcome
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE, Operation
from impact_calendar_integration.sync.tokens import TokenSet
from impact_calendar_integration.sync.providers.google import GoogleCalendarClient
from impact_calendar_integration.sync.providers.microsoft import GraphCalendarClient
from impact_calendar_integration.tests.pushing import push_create, push_update

GUSER = "teacher@example.com"
TIMEOUT = 2
G_EVENTS = r"^/calendar/v3/calendars/primary/events$"
G_BATCH = r"^/batch/calendar/v3$"
M_EVENTS = r"/me/calendar/events$"
M_BATCH = r"/\$batch$"

PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


def raw(status, body, content_type="text/html; charset=utf-8", headers=None):
    def answer(_req, _real):
        return Response(status, raw=body, content_type=content_type, headers=headers)

    return answer


def assert_typed(outcomes, operations):
    assert set(outcomes) == {op.key for op in operations}
    for outcome in outcomes.values():
        assert isinstance(outcome, Outcome) and isinstance(outcome.kind, Kind)


# =================================================================================================
# Google
# =================================================================================================
@pytest.fixture
def google(google_server):
    google_server.reset()
    google_server.add_user(GUSER)
    yield google_server
    google_server.clear_faults()


@pytest.fixture
def gclient(google):
    access, refresh = google.issue_tokens(GUSER)
    tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3600)
    return GoogleCalendarClient(GoogleConfig(**google.config_kwargs(), timeout=TIMEOUT), tokens)


def gbody(n):
    return {
        "summary": f"Class {n}",
        "description": "1 student booked",
        "start": {"dateTime": "2030-01-07T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-07T11:00:00Z", "timeZone": "UTC"},
        "extendedProperties": {"private": {"impactCalendar": f"db:{n}"}},
    }


def gid(n):
    return deterministic_event_id("db-faults", n, 1, 0)


def gcreate(n):
    return Operation(key=n, action=CREATE, body=gbody(n), client_id=gid(n))


def settled(op, outcome):
    """The provider holds the event (a retried create's too): nothing left to resend."""
    return engine.settle(op, outcome, engine.LinkState()).kind in (engine.SYNCED, engine.UNVERIFIED)


def converge(client, operations, rounds=6):
    """Push, then push again whatever was not DONE, like the engine does on its next runs."""
    pending = list(operations)
    final = {}
    for _round in range(rounds):
        if not pending:
            break
        outcomes = client.push(pending)
        assert_typed(outcomes, pending)
        final.update(outcomes)
        pending = [op for op in pending if not settled(op, outcomes[op.key])]
    assert not pending, {op.key: final[op.key] for op in pending}
    return final


@pytest.mark.parametrize(
    "status, content_type, kind",
    [
        (200, "text/html; charset=utf-8", Kind.TRANSIENT),  # a captive portal / proxy page
        (502, "text/html; charset=utf-8", Kind.TRANSIENT),
        (503, "text/html", Kind.TRANSIENT),
        (504, "text/plain", Kind.TRANSIENT),
        (429, "text/html", Kind.RATE_LIMITED),
        (200, "application/json", Kind.TRANSIENT),  # JSON where multipart was expected
    ],
)
def test_google_batch_answered_by_a_proxy_page(google, gclient, status, content_type, kind):
    body = PROXY_PAGE if "html" in content_type else ('{"ok": true}' if "json" in content_type else "Gateway Timeout")
    google.inject(G_BATCH, answer=raw(status, body, content_type))
    ops = [gcreate(n) for n in range(3)]
    outcomes = gclient.push(ops)
    assert_typed(outcomes, ops)
    assert {o.kind for o in outcomes.values()} == {kind}
    assert all("<html" not in (o.message or "").lower() for o in outcomes.values())
    converge(gclient, ops)
    assert len(google.live_events(GUSER)) == 3


def test_google_truncated_multipart_batch_answer(google, gclient):
    def truncated(_req, real):
        response = real()  # the provider did the work; its answer is cut in the middle
        response.raw = response.raw[: len(response.raw) // 2]
        return response

    google.inject(G_BATCH, answer=truncated)
    ops = [gcreate(n) for n in range(4)]
    outcomes = gclient.push(ops)
    assert_typed(outcomes, ops)
    assert not any(o.kind is Kind.DONE for o in outcomes.values()), "a truncated answer confirms nothing"
    converge(gclient, ops)
    assert sorted(google.live_events(GUSER)) == sorted(gid(n) for n in range(4))


@pytest.mark.parametrize("cut", ["last_part", "first_part", "all_parts"])
def test_google_batch_answer_with_missing_parts(google, gclient, cut):
    def incomplete(_req, real):
        response = real()
        text = response.raw.decode()
        boundary = text.split("\r\n", 1)[0]
        pieces = text.split(boundary)  # ['', part1, part2, ..., '--\r\n']
        parts = pieces[1:-1]
        if cut == "last_part":
            parts = parts[:-1]
        elif cut == "first_part":
            parts = parts[1:]
        else:
            parts = []
        response.raw = (boundary + boundary.join(parts) + boundary + "--\r\n").encode() if parts else (boundary + "--\r\n").encode()
        return response

    google.inject(G_BATCH, answer=incomplete)
    ops = [gcreate(n) for n in range(3)]
    outcomes = gclient.push(ops)
    assert_typed(outcomes, ops)
    assert not all(o.kind is Kind.DONE for o in outcomes.values())
    converge(gclient, ops)
    assert sorted(google.live_events(GUSER)) == sorted(gid(n) for n in range(3))


def test_google_batch_part_with_garbage_content_id(google, gclient):
    def garbage(_req, real):
        response = real()
        response.raw = response.raw.replace(b"Content-ID: <response-", b"Content-ID: <zz", 1)
        return response

    google.inject(G_BATCH, answer=garbage)
    ops = [gcreate(n) for n in range(2)]
    assert_typed(gclient.push(ops), ops)
    converge(gclient, ops)
    assert len(google.live_events(GUSER)) == 2


@pytest.mark.parametrize("body", ["<html>oops</html>", '{"id": ', "", "null", '"created"', "[]"])
def test_google_batch_part_200_with_a_non_event_body(google, gclient, body):
    google.inject(G_EVENTS, answer=raw(200, body, "application/json; charset=UTF-8"), method="POST")
    ops = [gcreate(n) for n in range(3)]
    outcomes = gclient.push(ops)
    assert_typed(outcomes, ops)
    # the part answered with garbage is never taken for a created event
    assert (outcomes[0].kind, outcomes[0].external_id, outcomes[0].status) == (Kind.TRANSIENT, None, 200)
    converge(gclient, ops)
    assert sorted(google.live_events(GUSER)) == sorted(gid(n) for n in range(3))


@pytest.mark.parametrize("performed", [True, False], ids=["created-at-google", "not-created"])
def test_google_create_answered_200_without_an_id(google, gclient, performed):
    def without_id(_req, real):
        response = real() if performed else Response(200, {"kind": "calendar#event"})
        data = json.loads(response.raw)
        data.pop("id", None)
        return Response(200, data)

    google.inject(G_EVENTS, answer=without_id, method="POST")
    ops = [gcreate(0), gcreate(1)]
    outcomes = gclient.push(ops)
    assert_typed(outcomes, ops)
    first = outcomes[0]
    assert (first.kind, first.external_id) == (Kind.TRANSIENT, None), "DONE without an id would lose the event"
    assert outcomes[1].kind is Kind.DONE and outcomes[1].external_id == gid(1)
    final = converge(gclient, ops)
    assert final[0].external_id == gid(0)
    assert sorted(google.live_events(GUSER)) == sorted([gid(0), gid(1)])


def test_google_update_part_with_an_html_error_page(google, gclient):
    assert push_create(gclient, gbody(0), gid(0)).ok
    google.inject(r"/events/", answer=raw(502, PROXY_PAGE), method="PATCH")
    outcome = push_update(gclient, gid(0), gbody(0))
    assert outcome.kind is Kind.TRANSIENT and outcome.status == 502
    assert "<html" not in outcome.message.lower()


def test_google_partial_batch_every_part_typed_then_converges(google, gclient):
    assert push_create(gclient, gbody(90), gid(90)).ok  # to be updated / deleted
    assert push_create(gclient, gbody(91), gid(91)).ok
    err = {"error": {"code": 0, "message": "x", "errors": [{"reason": "backendError"}]}}
    # Status faults hit the parts of a batch in order: part 1 → 503, part 2 → 429, part 3 → 500.
    google.inject(G_EVENTS, method="POST", status=503, body=err)
    google.inject(G_EVENTS, method="POST", status=429, body={"error": {"code": 429, "message": "slow down", "errors": [{"reason": "rateLimitExceeded"}]}}, headers={"Retry-After": "3"})
    google.inject(G_EVENTS, method="POST", status=500, body=err)
    google.inject(r"/events/" + gid(90), method="PATCH", status=404, body={"error": {"code": 404, "message": "Not Found", "errors": [{"reason": "notFound"}]}})
    ops = [gcreate(n) for n in range(5)] + [
        Operation(key="u90", action=UPDATE, body=gbody(90), external_id=gid(90)),
        Operation(key="d91", action=DELETE, external_id=gid(91)),
    ]
    outcomes = gclient.push(ops)
    assert_typed(outcomes, ops)
    kinds = [outcomes[op.key].kind for op in ops]
    assert kinds == [Kind.TRANSIENT, Kind.RATE_LIMITED, Kind.TRANSIENT, Kind.DONE, Kind.DONE, Kind.GONE, Kind.DONE]
    assert outcomes[1].retry_after == 3
    converge(gclient, ops)
    assert sorted(google.live_events(GUSER)) == sorted([gid(n) for n in range(5)] + [gid(90)])


# =================================================================================================
# Microsoft
# =================================================================================================
@pytest.fixture(scope="module")
def mserver():
    with tls.trusted(), MicrosoftEmulator() as server:
        yield server


@pytest.fixture
def emu(mserver):
    mserver.clear_faults()
    with mserver.lock:
        for mailbox in mserver.mailboxes.values():
            mailbox.events.clear()
            mailbox.transactions.clear()
    with tls.trusted():
        yield mserver
    mserver.clear_faults()


@pytest.fixture
def mclient(emu):
    import requests  # pylint: disable=import-outside-toplevel
    from urllib.parse import parse_qs, urlsplit  # pylint: disable=import-outside-toplevel

    config = MicrosoftConfig(**emu.config_kwargs(), timeout=TIMEOUT)
    flow = oauth_microsoft.start_flow(config, "https://odoo.test/cb", "state")
    location = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10).headers["Location"]
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    tokens, _email = oauth_microsoft.finish_flow(config, flow, answer)
    return GraphCalendarClient(config, tokens)


def mbody(n):
    return {
        "subject": f"Class {n}",
        "body": {"contentType": "text", "content": "1 student booked"},
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
        "isAllDay": False,
    }


def mcreate(n):
    return Operation(key=n, action=CREATE, body=mbody(n), client_id=transaction_id("db-faults", n, 1, 0))


def subjects(emu):
    return sorted(event["subject"] for event in emu.events(DEFAULT_USER))


@pytest.mark.parametrize(
    "status, content_type, body, kind",
    [
        (200, "text/html", PROXY_PAGE, Kind.TRANSIENT),
        (502, "text/html", PROXY_PAGE, Kind.TRANSIENT),
        (504, "text/plain", "upstream timed out", Kind.TRANSIENT),
        (429, "text/html", PROXY_PAGE, Kind.RATE_LIMITED),
        (200, "application/json", '{"responses": [', Kind.TRANSIENT),  # truncated JSON
        (200, "application/json", '{"responses": "none"}', Kind.TRANSIENT),
        (200, "application/json", '{"responses": [1, null, "x"]}', Kind.TRANSIENT),
        (200, "application/json", "[]", Kind.TRANSIENT),
    ],
)
def test_graph_batch_answered_with_garbage(emu, mclient, status, content_type, body, kind):
    emu.inject(M_BATCH, answer=raw(status, body, content_type))
    ops = [mcreate(n) for n in range(3)]
    outcomes = mclient.push(ops)
    assert_typed(outcomes, ops)
    assert {o.kind for o in outcomes.values()} == {kind}
    converge(mclient, ops)
    assert subjects(emu) == ["Class 0", "Class 1", "Class 2"]


def test_graph_batch_items_with_malformed_fields(emu, mclient):
    def mangle(_req, real):
        response = real()
        data = json.loads(response.raw)
        by_id = {item["id"]: item for item in data["responses"]}
        by_id["1"]["status"] = "201"  # a string status
        by_id["2"].pop("status")
        by_id["3"]["body"] = "created"  # not an object
        data["responses"] = [by_id["1"], by_id["2"], by_id["3"], by_id["4"]]  # 5 is missing
        return Response(200, data)

    emu.inject(M_BATCH, answer=mangle)
    ops = [mcreate(n) for n in range(5)]
    outcomes = mclient.push(ops)
    assert_typed(outcomes, ops)
    assert outcomes[3].kind is Kind.DONE and outcomes[3].external_id
    # a string status, a missing status, a non-object body, a missing item: each retried, none DONE
    assert [(outcomes[n].kind, outcomes[n].external_id) for n in (0, 1, 2, 4)] == [(Kind.TRANSIENT, None)] * 4
    converge(mclient, ops)
    assert subjects(emu) == [f"Class {n}" for n in range(5)], "transactionId: no duplicate on retry"


def test_graph_truncated_batch_answer_after_the_work_was_done(emu, mclient):
    def truncated(_req, real):
        response = real()
        response.raw = response.raw[: len(response.raw) // 2]
        return response

    emu.inject(M_BATCH, answer=truncated)
    ops = [mcreate(n) for n in range(4)]
    outcomes = mclient.push(ops)
    assert_typed(outcomes, ops)
    assert not any(o.kind is Kind.DONE for o in outcomes.values())
    converge(mclient, ops)
    assert subjects(emu) == [f"Class {n}" for n in range(4)]


@pytest.mark.parametrize("performed", [True, False], ids=["created-in-outlook", "not-created"])
def test_graph_create_answered_201_without_an_id(emu, mclient, performed):
    def without_id(_req, real):
        response = real() if performed else Response(201, {"subject": "?"})
        data = json.loads(response.raw)
        data.pop("id", None)
        return Response(201, data)

    emu.inject(r"/v1\.0/me/calendar/events$", answer=without_id, method="POST")
    outcome = mclient.push([mcreate(0)])[0]
    assert (outcome.kind, outcome.external_id, outcome.status) == (Kind.TRANSIENT, None, 201), "DONE without an id would lose the event"
    final = converge(mclient, [mcreate(0)])
    assert final[0].external_id
    assert subjects(emu) == ["Class 0"]


@pytest.mark.parametrize("body, content_type", [(PROXY_PAGE, "text/html"), ("", "application/json"), ("[1]", "application/json")])
def test_graph_single_create_with_a_non_json_2xx(emu, mclient, body, content_type):
    emu.inject(r"/v1\.0/me/calendar/events$", answer=raw(201, body, content_type), method="POST")
    outcome = mclient.push([mcreate(0)])[0]
    assert outcome.kind is Kind.TRANSIENT
    converge(mclient, [mcreate(0)])
    assert subjects(emu) == ["Class 0"]


def test_graph_single_update_with_a_proxy_error_page(emu, mclient):
    created = mclient.push([mcreate(0)])[0]
    emu.inject(r"/v1\.0/me/events/", answer=raw(502, PROXY_PAGE), method="PATCH")
    outcome = push_update(mclient, created.external_id, mbody(0))
    assert outcome.kind is Kind.TRANSIENT and outcome.status == 502
    assert "<html" not in outcome.message.lower()


def test_graph_partial_batch_every_item_typed_then_converges(emu, mclient):
    seeded = mclient.push([mcreate(90), mcreate(91)])
    err = {"error": {"code": "ServiceUnavailable", "message": "try later"}}
    # Item faults hit the items in the order they run: item 1 → 503, item 2 → 429, item 3 → 400.
    emu.inject(r"/v1\.0/me/calendar/events$", method="POST", status=503, body=err)
    emu.inject(r"/v1\.0/me/calendar/events$", method="POST", status=429, body=err, headers={"Retry-After": "4"})
    emu.inject(r"/v1\.0/me/calendar/events$", method="POST", status=400, body={"error": {"code": "ErrorInvalidRequest", "message": "bad"}})
    ops = [mcreate(n) for n in range(6)] + [
        Operation(key="u90", action=UPDATE, body=mbody(90), external_id=seeded[90].external_id),
        Operation(key="d91", action=DELETE, external_id=seeded[91].external_id),
    ]
    outcomes = mclient.push(ops)
    assert_typed(outcomes, ops)
    assert outcomes[0].kind is Kind.TRANSIENT
    assert outcomes[1].kind is Kind.RATE_LIMITED and outcomes[1].retry_after == 4
    assert outcomes[2].kind is Kind.REJECTED
    # item n depends on item n-4: the failed first items take their chains down with 424
    assert outcomes[4].kind is Kind.TRANSIENT and outcomes[4].status == 424
    assert outcomes[3].kind is Kind.DONE
    converge(mclient, ops)
    assert subjects(emu) == sorted(["Class 90"] + [f"Class {n}" for n in range(6)])


# =================================================================================================
# Outbox: a create confirmed by a replay is followed by an update
# =================================================================================================
def test_outbox_create_confirmed_by_a_replay_stays_dirty_for_an_update():
    from pg import connect, insert_links, outbox_schema  # pylint: disable=import-outside-toplevel

    from impact_calendar_integration.sync import outbox  # pylint: disable=import-outside-toplevel

    with outbox_schema() as schema:
        insert_links(schema, 1)
        conn = connect(schema)
        with conn.cursor() as cr:
            [(link_id, seq)] = outbox.claim(cr, "W")
            assert outbox.finish_created_unverified(cr, link_id, "W", seq, "ext-1", 0)
            cr.execute("SELECT dirty, state, external_id, pushed_hash, claim_token FROM impact_calendar_link WHERE id = %s", (link_id,))
            assert cr.fetchone() == (True, "pending", "ext-1", None, None)
            # due again at once: the next round sends the current body as an update
            assert [i for i, _ in outbox.claim(cr, "W2")] == [link_id]
        conn.commit()
        conn.close()
