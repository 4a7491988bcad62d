"""GoogleCalendarClient and the Google OAuth helpers, through the real Google libraries,
against the loopback emulator."""

import logging
import re
import socket
import time
import uuid
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from impact_calendar_integration.sync.providers.google import oauth as oauth_google
from impact_calendar_integration.sync.providers.google.config import GOOGLE_SCOPES, GoogleConfig
from impact_calendar_integration.sync.providers.google.ids import deterministic_event_id
from impact_calendar_integration.sync.providers.microsoft.ids import transaction_id
from impact_calendar_integration.sync.outcomes import AuthRevoked, Kind, ProviderError
from impact_calendar_integration.sync.payload import ClassSnapshot
from impact_calendar_integration.sync.providers.google.body import build_body as google_body
from impact_calendar_integration.sync.policy import retry_delay
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE, Operation
from impact_calendar_integration.sync.tokens import TokenSet
from impact_calendar_integration.sync.providers.google import GoogleCalendarClient, batch_uri
from impact_calendar_integration.tests.pushing import push_create, push_delete, push_update

USER = "teacher@example.com"  # the user of the `google` fixture (conftest.py)
REDIRECT_URI = "http://odoo.test/impact_calendar/oauth/google/callback"
TIMEOUT = 2.0  # per read: long enough for a loaded CI machine; the slow-answer test waits 6x
EVENTS = r"/calendar/v3/calendars/primary/events"
BATCH = r"^/batch/calendar/v3$"


def event_body(summary="Yoga", hour=10):
    return {
        "summary": summary,
        "description": "3 students booked",
        "location": "Room 1",
        "start": {"dateTime": f"2030-01-07T{hour:02d}:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": f"2030-01-07T{hour + 1:02d}:00:00Z", "timeZone": "UTC"},
        "extendedProperties": {"private": {"impactCalendar": "db1-42"}},
        "transparency": "opaque",
        "guestsCanInviteOthers": False,
    }


def eid(n, generation=0):
    return deterministic_event_id("db1", n, 7, generation)


@pytest.fixture
def config(google):
    return GoogleConfig(**google.config_kwargs(), timeout=TIMEOUT)


@pytest.fixture
def stored_tokens(google):
    access, refresh = google.issue_tokens(USER)
    return TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3600)


@pytest.fixture
def refreshed():
    return []


@pytest.fixture
def client(config, stored_tokens, refreshed):
    return GoogleCalendarClient(config, stored_tokens, on_tokens=refreshed.append)


def api_calls(google, method=None):
    return google.requests(EVENTS, method=method)


# -- OAuth ----------------------------------------------------------------------------------------------
def test_connect_flow_end_to_end(google, config):
    verifier = oauth_google.new_code_verifier()
    url = oauth_google.authorization_url(config, REDIRECT_URI, "signed-state", verifier)
    params = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(config.auth_endpoint + "?")
    assert params["access_type"] == "offline" and params["prompt"] == "consent"
    assert params["include_granted_scopes"] == "true" and params["code_challenge_method"] == "S256"
    assert params["scope"].split() == list(GOOGLE_SCOPES)
    assert verifier not in url

    consent = requests.get(url, allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    callback = {k: v[-1] for k, v in parse_qs(urlsplit(consent.headers["Location"]).query).items()}
    assert consent.headers["Location"].startswith(REDIRECT_URI) and callback["state"] == "signed-state"

    tokens, email = oauth_google.exchange_code(config, callback["code"], REDIRECT_URI, verifier)
    assert email == USER
    assert tokens.access_token == google.access_token_of(USER) and tokens.refresh_token
    assert tokens.expires_at > time.time() + 3000
    assert push_create(GoogleCalendarClient(config, tokens), event_body(), eid(1)).kind is Kind.DONE


def _code(config, verifier):
    url = oauth_google.authorization_url(config, REDIRECT_URI, "st", verifier)
    location = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    return parse_qs(urlsplit(location).query)["code"][0]


def test_exchange_code_with_wrong_verifier_is_invalid_grant(config):
    code = _code(config, oauth_google.new_code_verifier())
    with pytest.raises(AuthRevoked):
        oauth_google.exchange_code(config, code, REDIRECT_URI, oauth_google.new_code_verifier())


def test_exchange_code_errors_are_typed_and_leak_no_secret(google, config):
    verifier = oauth_google.new_code_verifier()
    code = _code(config, verifier)
    wrong_secret = GoogleConfig(**dict(google.config_kwargs(), client_secret="not-the-secret"), timeout=TIMEOUT)
    with pytest.raises(ProviderError) as rejected:
        oauth_google.exchange_code(wrong_secret, code, REDIRECT_URI, verifier)
    assert rejected.value.outcome.kind is Kind.REJECTED and rejected.value.outcome.status == 401
    assert "not-the-secret" not in str(rejected.value) and code not in str(rejected.value)

    google.inject(r"^/token$", status=503, body={"error": "temporarily_unavailable"})
    with pytest.raises(ProviderError) as unavailable:
        oauth_google.exchange_code(config, code, REDIRECT_URI, verifier)
    assert unavailable.value.outcome.kind is Kind.TRANSIENT


def test_exchange_code_when_token_endpoint_is_unreachable(config):
    dead = GoogleConfig(**dict(vars(config), token_endpoint=f"http://127.0.0.1:{_closed_port()}/token"))
    with pytest.raises(ProviderError) as unreachable:
        oauth_google.exchange_code(dead, "4/code", REDIRECT_URI, "v" * 43)
    assert unreachable.value.outcome.kind is Kind.TRANSIENT
    assert unreachable.value.__cause__ is None  # the request body (code, secret) stays out of tracebacks


def test_consent_denied_gives_no_code(google, config):
    google.deny_next = True
    url = oauth_google.authorization_url(config, REDIRECT_URI, "st", oauth_google.new_code_verifier())
    location = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    assert parse_qs(urlsplit(location).query) == {"error": ["access_denied"], "state": ["st"]}


def test_revoke_is_best_effort_and_logs_no_token(google, config, stored_tokens, caplog):
    caplog.set_level(logging.DEBUG)
    assert oauth_google.revoke(config, stored_tokens.refresh_token) is True
    assert oauth_google.revoke(config, stored_tokens.refresh_token) is False  # already revoked
    dead = GoogleConfig(**dict(vars(config), revoke_endpoint=f"http://127.0.0.1:{_closed_port()}/revoke"))
    assert oauth_google.revoke(dead, stored_tokens.refresh_token) is False
    assert stored_tokens.refresh_token not in caplog.text
    assert google.access_token_of(USER) is None  # the whole grant went away


# -- one operation a push -----------------------------------------------------------------------------------
def test_create_update_delete(google, client):
    body = dict(event_body(), attendees=[{"email": "student@example.com"}])
    created = push_create(client, body, eid(1))
    assert created.kind is Kind.DONE and created.external_id == eid(1)
    stored = google.live_events(USER)[eid(1)]
    assert stored["summary"] == "Yoga" and "attendees" not in stored

    assert push_update(client, eid(1), dict(event_body("Pilates"), attendees=[{"email": "s@example.com"}])).ok
    assert google.live_events(USER)[eid(1)]["summary"] == "Pilates"
    assert "attendees" not in google.live_events(USER)[eid(1)]

    deleted = push_delete(client, eid(1))
    assert deleted.kind is Kind.DONE and google.live_events(USER) == {}
    assert {r.query.get("sendUpdates") for r in google.part_log} == {"none"}
    assert not any(b"student@example.com" in r.body for r in google.log)


def test_bodies_from_the_payload_mapper_are_accepted(google, client):
    timed = ClassSnapshot(
        event_ref=42, name="Yoga", start=datetime(2030, 1, 7, 10), stop=datetime(2030, 1, 7, 11),
        roster_count=3, record_url="https://odoo.test/odoo/calendar/42", marker="db1-42",
    )
    all_day = ClassSnapshot(event_ref=43, name="Retreat", allday=True, start_date=date(2030, 1, 7), roster_count=1)
    assert push_create(client, google_body(timed), eid(42)).ok
    assert push_create(client, google_body(all_day), eid(43)).ok
    assert push_update(client, eid(42), google_body(all_day)).ok
    assert google.live_events(USER)[eid(42)]["end"] == {"date": "2030-01-08"}


def test_update_switches_between_timed_and_all_day(google, client):
    assert push_create(client, event_body(), eid(1)).ok
    all_day = dict(event_body(), start={"date": "2030-01-07"}, end={"date": "2030-01-08"})
    assert push_update(client, eid(1), all_day).ok
    assert google.live_events(USER)[eid(1)]["start"] == {"date": "2030-01-07"}
    assert push_update(client, eid(1), event_body()).ok
    assert google.live_events(USER)[eid(1)]["start"] == event_body()["start"]


def test_update_of_deleted_or_unknown_event_is_gone(client):
    push_create(client, event_body(), eid(1))
    push_delete(client, eid(1))
    assert push_update(client, eid(1), event_body()).kind is Kind.GONE
    assert push_update(client, eid(2), event_body()).kind is Kind.GONE
    assert push_delete(client, eid(1)).kind is Kind.GONE


def test_unknown_field_is_rejected_with_googles_message(client):
    outcome = push_create(client, dict(event_body(), colour="red"), eid(1))
    assert outcome.kind is Kind.REJECTED and outcome.status == 400
    assert 'Unknown name "colour"' in outcome.message
    assert retry_delay(outcome, attempts=1) is None


def test_expired_access_token_is_refreshed_and_published(google, client, stored_tokens, refreshed):
    google.expire_access_tokens(USER)  # Google-side: the client learns it from a 401
    assert push_create(client, event_body(), eid(1)).ok
    assert len(refreshed) == 1
    new = refreshed[0]
    assert new.access_token != stored_tokens.access_token and new.access_token == google.access_token_of(USER)
    assert new.refresh_token == stored_tokens.refresh_token and new.expires_at > time.time()
    assert len(google.requests("^/token$")) == 1
    assert push_update(client, eid(1), event_body("Pilates")).ok
    assert len(refreshed) == 1  # no refresh while the new token is good


def test_locally_expired_token_is_refreshed_before_the_call(google, config, stored_tokens, refreshed):
    stale = TokenSet(access_token=stored_tokens.access_token, refresh_token=stored_tokens.refresh_token, expires_at=time.time() - 10)
    client = GoogleCalendarClient(config, stale, on_tokens=refreshed.append)
    assert push_create(client, event_body(), eid(1)).ok
    assert len(refreshed) == 1
    assert [r.status for r in google.requests(BATCH)] == [200]  # no 401 round trip


def test_create_whose_answer_is_dropped_makes_one_event(google, client):
    # httplib2 silently re-sends a request whose connection died: even a batch POST.
    google.inject(BATCH, method="POST", after_handling=True, drop=True)
    outcome = push_create(client, event_body(), eid(1))
    assert (outcome.kind, outcome.status, outcome.external_id) == (Kind.DONE, 409, eid(1))
    # dropped, re-sent (its part: 409), then the batch of GETs that recovers our event
    assert [r.status for r in google.requests(BATCH)] == [0, 200, 200]
    assert [(r.method, r.status) for r in google.part_log] == [("POST", 200), ("POST", 409), ("GET", 200)]
    assert list(google.live_events(USER)) == [eid(1)]


def test_conflict_on_a_burned_id_is_gone(google, client):
    push_create(client, event_body(), eid(1))
    push_delete(client, eid(1))
    outcome = push_create(client, event_body(), eid(1))
    assert outcome.kind is Kind.GONE and "new id" in outcome.message
    google.cancelled_on_get = True  # real Google may show the deleted event as cancelled
    assert push_create(client, event_body(), eid(1)).kind is Kind.GONE
    assert push_create(client, event_body(), eid(1, generation=1)).ok


@pytest.mark.parametrize(
    "status, headers, kind, retry_after",
    [
        (429, {"Retry-After": "7"}, Kind.RATE_LIMITED, 7.0),
        (429, {}, Kind.RATE_LIMITED, None),
        (503, {"Retry-After": "30"}, Kind.TRANSIENT, 30.0),
        (500, {}, Kind.TRANSIENT, None),
        (502, {}, Kind.TRANSIENT, None),
    ],
)
def test_throttling_and_server_errors(google, client, status, headers, kind, retry_after):
    google.inject(EVENTS, status=status, headers=headers, body={"error": {"code": status, "message": "Backend Error"}})
    outcome = push_create(client, event_body(), eid(1))
    assert (outcome.kind, outcome.retry_after, outcome.status) == (kind, retry_after, status)
    delay = retry_delay(outcome, attempts=1)
    assert delay is not None
    if kind is Kind.RATE_LIMITED and retry_after is not None:
        assert delay == retry_after


def test_retry_after_as_http_date(google, client):
    google.inject(EVENTS, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    outcome = push_create(client, event_body(), eid(1))
    assert outcome.kind is Kind.RATE_LIMITED and outcome.retry_after == 0.0  # a date in the past


@pytest.mark.parametrize("status, reason", [(403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (429, "rateLimitExceeded")])
def test_quota_exceeded_is_rate_limited(google, client, status, reason):
    google.requests_per_minute = 1
    google.rate_limit_status, google.rate_limit_reason = status, reason
    assert push_create(client, event_body(), eid(1)).ok
    outcome = push_create(client, event_body(), eid(2))
    assert outcome.kind is Kind.RATE_LIMITED and outcome.status == status and outcome.retry_after is None


def test_other_403_is_rejected(google, client):
    google.inject(EVENTS, status=403, body={"error": {"code": 403, "message": "Forbidden", "errors": [{"domain": "calendar", "reason": "forbiddenForNonOrganizer", "message": "Forbidden"}]}})
    outcome = push_create(client, event_body(), eid(1))
    assert outcome.kind is Kind.REJECTED and outcome.message == "Google: Forbidden"


def test_network_errors_are_transient(config, stored_tokens):
    dead = GoogleConfig(**dict(vars(config), api_endpoint=f"http://127.0.0.1:{_closed_port()}/calendar/v3/"))
    client = GoogleCalendarClient(dead, stored_tokens)
    assert push_create(client, event_body(), eid(1)).kind is Kind.TRANSIENT
    assert set(o.kind for o in client.push([_create(1), _create(2)]).values()) == {Kind.TRANSIENT}


def test_revoked_consent_is_auth_revoked(google, client, stored_tokens):
    google.revoke_user(USER)  # the user removed the app in their Google account
    outcome = push_create(client, event_body(), eid(1))
    assert outcome.kind is Kind.AUTH_REVOKED
    assert stored_tokens.refresh_token not in outcome.message and stored_tokens.access_token not in outcome.message
    assert google.live_events(USER) == {}


def test_invalid_grant_on_refresh_is_auth_revoked(google, client):
    google.expire_access_tokens(USER)
    google.revoke_next_refresh()
    assert push_update(client, eid(1), event_body()).kind is Kind.AUTH_REVOKED


def test_401_after_refresh_is_auth_revoked(google, client, refreshed):
    google.inject(EVENTS, status=401, times=None, body={"error": {"code": 401, "message": "Invalid Credentials"}})
    outcome = push_create(client, event_body(), eid(1))
    assert outcome.kind is Kind.AUTH_REVOKED and outcome.status == 401
    assert refreshed  # google-auth did refresh before giving up


def test_consent_without_the_calendar_scope_is_auth_revoked(google, config):
    # Google's granular consent screen lets the user untick the calendar permission.
    access, refresh = google.issue_tokens(USER, scopes=("openid", "email"))
    client = GoogleCalendarClient(config, TokenSet(access_token=access, refresh_token=refresh))
    outcome = push_create(client, event_body(), eid(1))
    assert (outcome.kind, outcome.status) == (Kind.AUTH_REVOKED, 403)


def test_expired_token_without_refresh_token_is_auth_revoked(google, config, stored_tokens):
    stale = TokenSet(access_token=stored_tokens.access_token, expires_at=time.time() - 10)
    assert push_create(GoogleCalendarClient(config, stale), event_body(), eid(1)).kind is Kind.AUTH_REVOKED
    assert google.requests(BATCH) == [] and api_calls(google) == []


def test_token_endpoint_refusing_the_client_is_transient(google, client):
    google.expire_access_tokens(USER)
    google.inject(r"^/token$", status=400, times=None, body={"error": "invalid_client", "error_description": "Unauthorized"})
    assert push_create(client, event_body(), eid(1)).kind is Kind.TRANSIENT


# -- batches ----------------------------------------------------------------------------------------------
def _create(n, body=None, generation=0):
    return Operation(key=f"c{n}", action=CREATE, body=body or event_body(f"Class {n}"), client_id=eid(n, generation))


def _update(n, body=None):
    return Operation(key=f"u{n}", action=UPDATE, body=body or event_body(f"Class {n} (moved)", hour=14), external_id=eid(n))


def _delete(n):
    return Operation(key=f"d{n}", action=DELETE, external_id=eid(n))


def test_batch_uri_follows_the_api_endpoint():
    assert batch_uri("https://www.googleapis.com/calendar/v3/") == "https://www.googleapis.com/batch/calendar/v3"
    assert batch_uri("http://127.0.0.1:8/calendar/v3") == "http://127.0.0.1:8/batch/calendar/v3"


def test_120_mixed_operations_take_three_batch_requests(google, client):
    assert all(o.ok for o in client.push([_create(n) for n in range(60)]).values())
    google.log.clear()
    operations = [_create(n) for n in range(60, 120)] + [_update(n) for n in range(40)] + [_delete(n) for n in range(40, 60)]
    outcomes = client.push(operations)
    assert google.request_counts() == {("POST", "/batch/calendar/v3"): 3}  # nothing outside the batches
    assert len(outcomes) == 120 and all(o.kind is Kind.DONE for o in outcomes.values())
    assert outcomes["c99"].external_id == eid(99) and outcomes["u3"].external_id == eid(3)
    live = google.live_events(USER)
    assert len(live) == 100 and live[eid(3)]["summary"] == "Class 3 (moved)"
    assert {r.query.get("sendUpdates") for r in google.part_log} == {"none"}


def test_batch_gives_each_part_its_own_outcome(google, client):
    client.push([_create(n) for n in (1, 2, 3)])
    push_delete(client, eid(3))
    google.inject(rf"/events/{eid(2)}$", status=503, body={"error": {"code": 503, "message": "Backend Error"}})
    google.inject(rf"/events/{eid(1)}$", status=429, headers={"Retry-After": "12"}, body={"error": {"code": 429, "message": "Too many"}})
    outcomes = client.push(
        [
            _create(10),  # fine
            _create(11, body=dict(event_body(), colour="red")),  # invalid body
            _create(1),  # our earlier create landed: recovered
            _create(3),  # id burned by a delete
            _update(99),  # never existed
            _update(2),  # backend error
            _update(1),  # throttled
            _delete(3),  # already deleted
            Operation(key="bad", action=UPDATE, body=event_body()),  # no external id: not sent
        ]
    )
    kinds = {key: outcome.kind for key, outcome in outcomes.items()}
    assert kinds == {
        "c10": Kind.DONE,
        "c11": Kind.REJECTED,
        "c1": Kind.DONE,
        "c3": Kind.GONE,
        "u99": Kind.GONE,
        "u2": Kind.TRANSIENT,
        "u1": Kind.RATE_LIMITED,
        "d3": Kind.GONE,
        "bad": Kind.REJECTED,
    }
    assert outcomes["u1"].retry_after == 12.0 and outcomes["c1"].external_id == eid(1)
    assert 'Unknown name "colour"' in outcomes["c11"].message
    # the two setup batches, 8 parts (the bad op was never sent), then one batch of GETs for the two 409s
    assert [len(google.part_log), len(google.requests(BATCH))] == [3 + 1 + 8 + 2, 4]
    assert [r.method for r in google.part_log[-2:]] == ["GET", "GET"]


def test_batch_with_expired_token_refreshes_once(google, client, refreshed):
    google.expire_access_tokens(USER)
    outcomes = client.push([_create(n) for n in range(5)])
    assert all(o.ok for o in outcomes.values())
    assert len(refreshed) == 1 and len(google.requests("^/token$")) == 1
    assert len(google.requests(BATCH)) == 2  # every part 401, then the library re-sends them
    assert len(google.live_events(USER)) == 5


def test_revoked_consent_makes_the_whole_push_auth_revoked(google, client):
    google.revoke_user(USER)
    outcomes = client.push([_create(n) for n in range(120)])
    assert len(outcomes) == 120 and {o.kind for o in outcomes.values()} == {Kind.AUTH_REVOKED}
    assert len(google.requests(BATCH)) == 1  # the next chunks are not even tried
    assert google.live_events(USER) == {}


def test_invalid_grant_on_a_stale_token_sends_nothing(google, config, stored_tokens):
    google.revoke_next_refresh()
    stale = TokenSet(access_token=None, refresh_token=stored_tokens.refresh_token)
    outcomes = GoogleCalendarClient(config, stale).push([_create(n) for n in range(60)])
    assert {o.kind for o in outcomes.values()} == {Kind.AUTH_REVOKED}
    assert google.requests(BATCH) == []


def test_whole_batch_throttled_stops_the_push(google, client):
    google.inject(BATCH, status=429, headers={"Retry-After": "20"}, body={"error": {"code": 429, "message": "Too many"}})
    outcomes = client.push([_create(n) for n in range(75)])
    assert {(o.kind, o.retry_after) for o in outcomes.values()} == {(Kind.RATE_LIMITED, 20.0)}
    assert len(google.requests(BATCH)) == 1


def test_batch_timeout_then_retry_makes_no_duplicates(google, client):
    google.inject(BATCH, after_handling=True, delay=TIMEOUT * 6)
    operations = [_create(n) for n in range(10)]
    assert {o.kind for o in client.push(operations).values()} == {Kind.TRANSIENT}
    retried = client.push(operations)
    assert all(o.ok and o.external_id == eid(n) for n, o in enumerate(retried.values()))
    assert len(google.live_events(USER)) == 10
    # the lost batch, its retry (ten 409s), one batch of GETs to confirm them; nothing else
    assert len(google.requests(BATCH)) == 3 and api_calls(google) == []


# -- ids --------------------------------------------------------------------------------------------------
def test_deterministic_event_ids():
    first = deterministic_event_id("db-uuid", 42, 7, 0)
    assert first == deterministic_event_id("db-uuid", 42, 7, 0)
    assert re.fullmatch(r"[a-v0-9]{5,1024}", first)
    others = {
        deterministic_event_id("db-uuid", 42, 7, 1),
        deterministic_event_id("db-uuid", 42, 8, 0),
        deterministic_event_id("db-uuid", 43, 7, 0),
        deterministic_event_id("other-db", 42, 7, 0),
    }
    assert first not in others and len(others) == 4


def test_transaction_ids_are_stable_guids():
    guid = transaction_id("db-uuid", 42, 7, 0)
    assert str(uuid.UUID(guid)) == guid
    assert guid == transaction_id("db-uuid", 42, 7, 0) != transaction_id("db-uuid", 42, 7, 1)


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the batch parts, written without email.generator ------------------------------------------------


def test_batch_parts_are_the_librarys_text(config, stored_tokens):
    """PlainBatchHttpRequest writes each part exactly as googleapiclient's own batch does, for
    creates, patches, deletes and gets, with the authorisation header, non-ASCII text, long
    values, and a body line that email.generator would mangle if it were a header."""
    from googleapiclient.http import BatchHttpRequest  # pylint: disable=import-outside-toplevel

    from impact_calendar_integration.sync.providers.google.batch import PlainBatchHttpRequest  # pylint: disable=import-outside-toplevel

    client = GoogleCalendarClient(config, stored_tokens)
    body = dict(event_body("Céramique 🏺 <b>débutants</b> " + "x" * 300), description="From the studio\n3 students booked")
    client.calendar_id = "c_" + "a" * 60 + "@group.calendar.google.com"
    requests_ = [
        client._insert(body, eid(1)),
        client._patch(eid(2), dict(body, summary="Yoga")),
        client._delete(eid(3)),
        client._get(eid(4)),
    ]
    for request in requests_:
        request.http = client.http
        ours = PlainBatchHttpRequest(batch_uri=client.batch_uri)._serialize_request(request)
        library = BatchHttpRequest(batch_uri=client.batch_uri)._serialize_request(request)
        assert "authorization: Bearer " in ours
        assert ours == library
