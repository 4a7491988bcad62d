"""GraphCalendarClient and the MSAL sign-in helpers against the Microsoft emulator.

Everything goes through real MSAL and requests over loopback TLS.
"""

import json
import warnings
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from impact_calendar_integration.tests.emulators.microsoft import DEFAULT_USER
from impact_calendar_integration.sync.providers.microsoft import oauth as oauth_microsoft
from impact_calendar_integration.sync.providers.microsoft.config import MicrosoftConfig
from impact_calendar_integration.sync.outcomes import AuthRevoked, Kind
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE, Operation
from impact_calendar_integration.sync.providers.microsoft import GraphCalendarClient, parse_retry_after
from impact_calendar_integration.tests.pushing import push_create, push_delete, push_update

REDIRECT = "https://odoo.test/impact_calendar/oauth/microsoft/callback"
TIMEOUT = 0.5


@pytest.fixture
def config(emu):
    return MicrosoftConfig(**emu.config_kwargs(), timeout=TIMEOUT)


def follow_authorize(flow):
    """The browser's part: open the authorize URL, come back with the redirect's query."""
    response = requests.get(flow["auth_uri"], allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connect(config, state="signed-state"):
    flow = oauth_microsoft.start_flow(config, REDIRECT, state)
    return oauth_microsoft.finish_flow(config, flow, follow_authorize(flow))


class Recorder:
    """on_tokens callback that keeps every TokenSet handed to it."""

    def __init__(self):
        self.calls = []

    def __call__(self, tokens):
        self.calls.append(tokens)


@pytest.fixture
def tokens(config):
    return connect(config)[0]


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def client(config, tokens, recorder):
    return GraphCalendarClient(config, tokens, on_tokens=recorder)


def body(subject="Yoga", **extra):
    data = {
        "subject": subject,
        "body": {"contentType": "text", "content": "3 students booked"},
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
        "isAllDay": False,
        "location": {"displayName": "Room 1"},
    }
    data.update(extra)
    return data


def refresh_tokens_in(msal_cache):
    return {entry["secret"] for entry in json.loads(msal_cache).get("RefreshToken", {}).values()}


def token_call(emu, refresh_token):
    return requests.post(f"{emu.authority_host}/common/oauth2/v2.0/token", data={
        "client_id": emu.client_id, "client_secret": emu.client_secret, "grant_type": "refresh_token",
        "refresh_token": refresh_token, "scope": "Calendars.ReadWrite User.Read offline_access openid profile",
    })


# -- sign-in -----------------------------------------------------------------------------
def test_connect_flow_returns_tokens_and_email(emu, config):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # even so, MSAL's form_post advice stays out of the log
        flow = oauth_microsoft.start_flow(config, REDIRECT, "signed-state")
    assert not [w for w in caught if "form_post" in str(w.message)]
    query = parse_qs(urlsplit(flow["auth_uri"]).query)
    assert flow["auth_uri"].startswith(f"{emu.authority_host}/common/oauth2/v2.0/authorize?")
    assert query["response_mode"] == ["query"] and query["code_challenge_method"] == ["S256"]
    assert query["state"] == ["signed-state"]
    assert set(query["scope"][0].split()) >= {"Calendars.ReadWrite", "User.Read", "offline_access"}

    tokens, email = oauth_microsoft.finish_flow(config, flow, follow_authorize(flow))
    user = emu.user(DEFAULT_USER)
    assert email == DEFAULT_USER
    assert tokens.account_id == f"{user.oid}.{user.tenant_id}"
    assert len(refresh_tokens_in(tokens.msal_cache)) == 1
    # Only the emulator was contacted: no instance discovery at Microsoft.
    assert {r.path for r in emu.log} == {"/common/v2.0/.well-known/openid-configuration",
                                         "/common/oauth2/v2.0/authorize", "/common/oauth2/v2.0/token"}


def test_declined_consent_raises(emu, config):
    emu.deny_next = True
    flow = oauth_microsoft.start_flow(config, REDIRECT, "s")
    with pytest.raises(oauth_microsoft.MicrosoftAuthError) as error:
        oauth_microsoft.finish_flow(config, flow, follow_authorize(flow))
    assert error.value.error == "access_denied"
    assert not emu.requests("/token")


def test_state_mismatch_raises_before_the_code_is_sent(emu, config):
    flow = oauth_microsoft.start_flow(config, REDIRECT, "s")
    answer = dict(follow_authorize(flow), state="forged")
    with pytest.raises(oauth_microsoft.MicrosoftAuthError):
        oauth_microsoft.finish_flow(config, flow, answer)
    assert not emu.requests("/token")


# -- one operation a push -----------------------------------------------------------
def test_create_update_delete(emu, client):
    created = push_create(client, body(attendees=[{"emailAddress": {"address": "student@example.com"}}]), "link-1-g0")
    assert created.kind is Kind.DONE and created.status == 201
    [event] = emu.events()
    assert event["id"] == created.external_id and event["subject"] == "Yoga"
    assert event["transactionId"] == "link-1-g0"
    assert event["attendees"] == [] and emu.invitations_sent == []  # never invite students

    updated = push_update(client, created.external_id, body("Pilates"))
    assert updated.kind is Kind.DONE and updated.external_id == created.external_id
    assert emu.event(created.external_id)["subject"] == "Pilates"

    deleted = push_delete(client, created.external_id)
    assert deleted.kind is Kind.DONE and emu.events() == []


def test_update_or_delete_of_a_vanished_event_is_gone(emu, client):
    created = push_create(client, body(), "link-2-g0")
    push_delete(client, created.external_id)
    updated = push_update(client, created.external_id, body("Pilates"))
    assert updated.kind is Kind.GONE and updated.status == 404
    assert "ErrorItemNotFound" in updated.message
    assert push_delete(client, created.external_id).kind is Kind.GONE


def test_invalid_payload_is_rejected_with_graphs_words(client):
    outcome = push_create(client, body(start={"dateTime": "2030-03-04T09:00:00", "timeZone": "Mars/Olympus"}), "x")
    assert outcome.kind is Kind.REJECTED and outcome.status == 400
    assert "ErrorTimeZoneNotSupportedException" in outcome.message


# -- tokens ------------------------------------------------------------------------------
def test_expired_access_token_is_refreshed_and_the_rotation_is_published(emu, config):
    emu.access_token_lifetime = 120  # MSAL refreshes tokens with less than 5 minutes left
    tokens, _ = connect(config)
    first_rt = refresh_tokens_in(tokens.msal_cache)
    recorder = Recorder()
    client = GraphCalendarClient(config, tokens, on_tokens=recorder)

    assert push_create(client, body(), "link-3-g0").kind is Kind.DONE
    assert len(recorder.calls) == 1
    second_rt = refresh_tokens_in(recorder.calls[0].msal_cache)
    assert second_rt and second_rt != first_rt
    assert recorder.calls[0].account_id == tokens.account_id
    [old] = first_rt
    assert not emu.is_refresh_token_valid(old)
    assert token_call(emu, old).json()["error"] == "invalid_grant"

    assert push_create(client, body(), "link-4-g0").kind is Kind.DONE  # rotates again: published again
    assert len(recorder.calls) == 2
    assert refresh_tokens_in(recorder.calls[1].msal_cache) not in (first_rt, second_rt)


def test_token_expired_at_the_server_is_refreshed_once(emu, client, recorder):
    emu.expire_access_tokens()
    outcome = push_create(client, body(), "link-5-g0")
    assert outcome.kind is Kind.DONE
    assert len(recorder.calls) == 1
    assert [r.status for r in emu.requests("/v1.0/me/calendar/events")] == [401, 201]


def test_no_refresh_and_no_callback_while_the_token_is_fresh(emu, client, recorder):
    push_create(client, body(), "link-6-g0")
    push_create(client, body(), "link-7-g0")
    assert recorder.calls == [] and len(emu.requests("/token")) == 1  # the code exchange only


def test_revoked_consent_is_auth_revoked(emu, client, tokens):
    emu.revoke_user(DEFAULT_USER)
    outcome = push_create(client, body(), "link-8-g0")
    assert outcome.kind is Kind.AUTH_REVOKED
    assert "invalid_grant" in outcome.message and "AADSTS70000" in outcome.message
    secrets_held = refresh_tokens_in(tokens.msal_cache)
    assert not any(secret in outcome.message for secret in secrets_held)
    assert push_create(client, body(), "link-9-g0").kind is Kind.AUTH_REVOKED, "and stays so"


def test_failed_refresh_is_auth_revoked_for_every_operation_of_a_push(emu, config):
    emu.access_token_lifetime = 120
    tokens, _ = connect(config)
    emu.revoke_next_refresh()
    client = GraphCalendarClient(config, tokens)
    ops = [Operation(key=i, action=CREATE, body=body(), client_id=f"c{i}") for i in range(30)]
    outcomes = client.push(ops)
    assert {o.kind for o in outcomes.values()} == {Kind.AUTH_REVOKED}
    assert len(emu.requests("/token")) == 2  # the code exchange and one refresh attempt
    assert not emu.requests("/v1.0/")


# -- failures of Graph ----------------------------------------------------------------------
@pytest.mark.parametrize("fault", [{"delay": 2 * TIMEOUT}, {"drop": True}])
def test_retried_create_after_a_lost_answer_makes_one_event(emu, client, fault):
    emu.inject(r"/me/calendar/events$", method="POST", after_handling=True, **fault)
    lost = push_create(client, body(), "link-9-g0")
    assert lost.kind is Kind.TRANSIENT
    retried = push_create(client, body(), "link-9-g0")
    assert retried.kind is Kind.DONE
    [event] = emu.events()
    assert event["id"] == retried.external_id


def test_throttled_call_carries_retry_after(emu, client):
    emu.inject(r"/me/calendar/events$", status=429, headers={"Retry-After": "7"},
               body={"error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}})
    outcome = push_create(client, body(), "link-10-g0")
    assert outcome.kind is Kind.RATE_LIMITED and outcome.retry_after == 7
    assert "ApplicationThrottled" in outcome.message


def test_mailbox_rate_limit_is_rate_limited(emu, client):
    emu.rate_limit = (1, 30)
    assert push_create(client, body(), "a").kind is Kind.DONE
    outcome = push_create(client, body(), "b")
    assert outcome.kind is Kind.RATE_LIMITED and 1 <= outcome.retry_after <= 30


@pytest.mark.parametrize("status, headers, kind", [
    (500, {}, Kind.TRANSIENT),
    (502, {}, Kind.TRANSIENT),
    (503, {}, Kind.TRANSIENT),
    (503, {"Retry-After": "12"}, Kind.RATE_LIMITED),
    (403, {}, Kind.REJECTED),
])
def test_server_errors(emu, client, status, headers, kind):
    emu.inject(r"/me/calendar/events$", status=status, headers=headers,
               body={"error": {"code": "Whatever", "message": "refused"}})
    outcome = push_create(client, body(), "c")
    assert outcome.kind is kind and outcome.status == status


def test_unreachable_graph_is_transient(emu, client, config):
    assert push_create(client, body(), "warm-up").ok  # MSAL app and token ready
    emu.stop()
    assert push_create(client, body(), "c").kind is Kind.TRANSIENT


def test_retry_after_formats():
    assert parse_retry_after("5") == 5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert parse_retry_after("soon") is None


# -- push / $batch ------------------------------------------------------------------------
def test_120_mixed_operations_take_6_batches_within_mailbox_concurrency(emu, client):
    seed = client.push([Operation(key=i, action=CREATE, body=body(f"old {i}"), client_id=f"old-{i}") for i in range(80)])
    ids = [seed[i].external_id for i in range(80)]
    assert all(o.kind is Kind.DONE for o in seed.values())
    batches_before = len(emu.requests(r"/\$batch$"))

    ops = []
    for i in range(40):
        ops.append(Operation(key=f"c{i}", action=CREATE, client_id=f"new-{i}",
                             body=body(f"new {i}", attendees=[{"emailAddress": {"address": "s@example.com"}}])))
        ops.append(Operation(key=f"u{i}", action=UPDATE, external_id=ids[i], body=body(f"changed {i}")))
        ops.append(Operation(key=f"d{i}", action=DELETE, external_id=ids[40 + i]))
    outcomes = client.push(ops)

    assert len(emu.requests(r"/\$batch$")) - batches_before == 6
    assert set(outcomes) == {op.key for op in ops}
    assert {o.kind for o in outcomes.values()} == {Kind.DONE}
    assert emu.max_concurrency() <= 4
    subjects = sorted(e["subject"] for e in emu.events())
    assert subjects == sorted([f"new {i}" for i in range(40)] + [f"changed {i}" for i in range(40)])
    assert emu.invitations_sent == []
    assert not emu.requests(r"/v1\.0/me/")  # nothing went outside $batch


def test_batch_items_get_their_own_outcomes(emu, client):
    gone = push_create(client, body(), "gone")
    push_delete(client, gone.external_id)
    kept = push_create(client, body(), "kept")
    emu.inject(r"/me/events/", method="DELETE", status=429, headers={"Retry-After": "9"},
               body={"error": {"code": "ApplicationThrottled", "message": "slow down"}})
    bad_zone = body(start={"dateTime": "2030-03-04T09:00:00", "timeZone": "Mars/Olympus"})
    ops = [
        Operation(key="gone", action=UPDATE, external_id=gone.external_id, body=body("x")),  # 404
        Operation(key="bad", action=CREATE, client_id="bad", body=bad_zone),  # 400
        Operation(key="slow", action=DELETE, external_id=kept.external_id),  # 429 Retry-After 9
        Operation(key="ok", action=CREATE, client_id="ok", body=body("fine")),  # 201
        Operation(key="after-gone", action=CREATE, client_id="a1", body=body("a1")),  # depends on "gone"
        Operation(key="after-bad", action=CREATE, client_id="a2", body=body("a2")),  # depends on "bad"
        Operation(key="after-slow", action=CREATE, client_id="a3", body=body("a3")),  # depends on "slow"
        Operation(key="after-ok", action=CREATE, client_id="a4", body=body("a4")),  # depends on "ok"
    ]
    outcomes = client.push(ops)
    assert len(emu.requests(r"/\$batch$")) == 1
    assert outcomes["gone"].kind is Kind.GONE
    assert outcomes["bad"].kind is Kind.REJECTED and "ErrorTimeZoneNotSupportedException" in outcomes["bad"].message
    assert outcomes["slow"].kind is Kind.RATE_LIMITED and outcomes["slow"].retry_after == 9
    assert outcomes["ok"].kind is Kind.DONE and outcomes["ok"].external_id
    for key in ("after-gone", "after-bad", "after-slow"):
        assert outcomes[key].kind is Kind.TRANSIENT and outcomes[key].status == 424
    assert outcomes["after-ok"].kind is Kind.DONE
    assert sorted(e["subject"] for e in emu.events()) == ["Yoga", "a4", "fine"]


def test_throttled_chunk_stops_the_following_chunks(emu, client):
    emu.inject(r"/\$batch$", status=429, headers={"Retry-After": "30"},
               body={"error": {"code": "ApplicationThrottled", "message": "slow down"}})
    ops = [Operation(key=i, action=CREATE, body=body(), client_id=f"t{i}") for i in range(45)]
    outcomes = client.push(ops)
    assert {(o.kind, o.retry_after) for o in outcomes.values()} == {(Kind.RATE_LIMITED, 30)}
    assert len(emu.requests(r"/\$batch$")) == 1


def test_failed_batch_request_is_transient_for_all_its_items_and_stops_the_push(emu, client):
    emu.inject(r"/\$batch$", status=503, body={"error": {"code": "ServiceUnavailable", "message": "down"}}, times=1)
    ops = [Operation(key=i, action=CREATE, body=body(), client_id=f"t{i}") for i in range(25)]
    outcomes = client.push(ops)
    assert [outcomes[i].kind for i in range(25)] == [Kind.TRANSIENT] * 25
    # One stop policy for every provider: a batch that failed as a whole is not followed by more.
    assert len(emu.requests(r"/\$batch$", "POST")) == 1 and not emu.events()


def test_expired_token_during_a_batch_is_refreshed(emu, client, recorder):
    emu.expire_access_tokens()
    ops = [Operation(key=i, action=CREATE, body=body(), client_id=f"e{i}") for i in range(5)]
    assert {o.kind for o in client.push(ops).values()} == {Kind.DONE}
    assert len(recorder.calls) == 1 and len(emu.events()) == 5


def test_token_endpoint_outage_is_transient_not_revoked(emu, config):
    emu.access_token_lifetime = 120  # every call needs a refresh
    tokens, _ = connect(config)
    emu.inject(r"/oauth2/v2\.0/token$", status=500, body={"error": "server_error"}, times=None)
    outcome = push_create(GraphCalendarClient(config, tokens), body(), "c")
    assert outcome.kind is Kind.TRANSIENT
    emu.clear_faults()
    assert push_create(GraphCalendarClient(config, tokens), body(), "c").kind is Kind.DONE


def test_authority_outage_is_transient(emu, config, tokens):
    emu.inject(r"openid-configuration$", status=503, times=None)
    outcome = push_create(GraphCalendarClient(config, tokens), body(), "c")
    assert outcome.kind is Kind.TRANSIENT


def test_sign_in_service_outage_is_reported_as_such(emu, config):
    flow = oauth_microsoft.start_flow(config, REDIRECT, "s")
    answer = follow_authorize(flow)
    emu.inject(r"/oauth2/v2\.0/token$", status=500, body={"error": "server_error"})
    with pytest.raises(oauth_microsoft.MicrosoftAuthError) as error:
        oauth_microsoft.finish_flow(config, flow, answer)
    assert error.value.error == "temporarily_unavailable"
    emu.inject(r"openid-configuration$", status=503)
    with pytest.raises(oauth_microsoft.MicrosoftAuthError) as error:
        oauth_microsoft.start_flow(config, REDIRECT, "s")
    assert error.value.error == "temporarily_unavailable"
