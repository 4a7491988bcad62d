"""The Microsoft emulator follows the rules our client relies on (exercised with plain requests)."""

import base64
import hashlib
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from impact_calendar_integration.tests.emulators.microsoft import DEFAULT_USER, to_utc

REDIRECT = "https://odoo.test/impact_calendar/oauth/microsoft/callback"
SCOPE = "Calendars.ReadWrite User.Read offline_access openid profile"


http = requests.Session()  # keep-alive: fewer TLS handshakes, faster tests


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def authorize(emu, **extra):
    verifier = secrets.token_urlsafe(32)
    params = {
        "client_id": emu.client_id, "response_type": "code", "redirect_uri": REDIRECT, "scope": SCOPE,
        "state": "s1", "nonce": "n-hash", "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256", "response_mode": "query",
    }
    params.update(extra)
    response = http.get(f"{emu.authority_host}/common/oauth2/v2.0/authorize", params=params, allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}, verifier


def token_request(emu, **form):
    data = {"client_id": emu.client_id, "client_secret": emu.client_secret, "client_info": "1", "scope": SCOPE}
    data.update(form)
    return http.post(f"{emu.authority_host}/common/oauth2/v2.0/token", data=data)


def sign_in(emu):
    answer, verifier = authorize(emu)
    response = token_request(emu, grant_type="authorization_code", code=answer["code"],
                             redirect_uri=REDIRECT, code_verifier=verifier)
    assert response.status_code == 200, response.text
    return response.json()


def graph(emu, method, path, token, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request(method, emu.graph_endpoint + path, headers=headers, **kwargs)


def event_body(**overrides):
    body = {
        "subject": "Yoga",
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
    }
    body.update(overrides)
    return body


# -- identity ----------------------------------------------------------------------------
def test_discovery_document_points_at_the_emulator(emu):
    config = requests.get(f"{emu.authority_host}/common/v2.0/.well-known/openid-configuration").json()
    assert config["authorization_endpoint"] == f"{emu.authority_host}/common/oauth2/v2.0/authorize"
    assert config["token_endpoint"] == f"{emu.authority_host}/common/oauth2/v2.0/token"
    assert config["issuer"] == f"{emu.authority_host}/{{tenantid}}/v2.0"
    tenant = requests.get(f"{emu.authority_host}/{emu.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert tenant["issuer"] == f"{emu.authority_host}/{emu.tenant_id}/v2.0"


def test_authorize_redirects_with_code_state_and_session_state(emu):
    answer, _ = authorize(emu)
    assert answer["state"] == "s1" and answer["code"] and answer["session_state"]


def test_authorize_denied_consent(emu):
    emu.deny_next = True
    answer, _ = authorize(emu)
    assert answer["error"] == "access_denied"
    assert answer["error_description"].startswith("AADSTS65004")
    assert answer["state"] == "s1" and "code" not in answer
    assert "code" in authorize(emu)[0]  # only the next one


def test_authorize_form_post_mode_returns_an_auto_submitted_form(emu):
    params = {"client_id": emu.client_id, "response_type": "code", "redirect_uri": REDIRECT, "scope": SCOPE,
              "state": "s2", "response_mode": "form_post"}
    page = requests.get(f"{emu.authority_host}/common/oauth2/v2.0/authorize", params=params).text
    assert f'action="{REDIRECT}"' in page and 'name="code"' in page and 'value="s2"' in page


def test_token_response_is_what_msal_expects(emu):
    tokens = sign_in(emu)
    assert {"access_token", "refresh_token", "id_token", "client_info", "expires_in", "scope"} <= set(tokens)
    user = emu.user(DEFAULT_USER)
    id_claims = claims(tokens["id_token"])
    assert id_claims["aud"] == emu.client_id
    assert id_claims["nonce"] == "n-hash"
    assert id_claims["preferred_username"] == DEFAULT_USER
    assert id_claims["iss"] == f"{emu.authority_host}/{user.tenant_id}/v2.0"
    assert (id_claims["tid"], id_claims["oid"]) == (user.tenant_id, user.oid)
    assert id_claims["nbf"] <= id_claims["iat"] < id_claims["exp"]
    info = json.loads(base64.urlsafe_b64decode(tokens["client_info"] + "=="))
    assert info == {"uid": user.oid, "utid": user.tenant_id}
    assert "offline_access" not in tokens["scope"].split()


def test_code_exchange_checks_pkce_secret_and_single_use(emu):
    answer, verifier = authorize(emu)
    wrong = token_request(emu, grant_type="authorization_code", code=answer["code"], redirect_uri=REDIRECT,
                          code_verifier="not-the-verifier")
    assert wrong.status_code == 400 and "AADSTS501481" in wrong.json()["error_description"]

    answer, verifier = authorize(emu)
    bad_secret = token_request(emu, grant_type="authorization_code", code=answer["code"], redirect_uri=REDIRECT,
                               code_verifier=verifier, client_secret="nope")
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"

    answer, verifier = authorize(emu)
    form = dict(grant_type="authorization_code", code=answer["code"], redirect_uri=REDIRECT, code_verifier=verifier)
    assert token_request(emu, **form).status_code == 200
    again = token_request(emu, **form)
    assert again.status_code == 400 and again.json()["error_codes"] == [54005]


def test_refresh_rotates_and_the_old_refresh_token_dies(emu):
    first = sign_in(emu)["refresh_token"]
    refreshed = token_request(emu, grant_type="refresh_token", refresh_token=first)
    assert refreshed.status_code == 200
    second = refreshed.json()["refresh_token"]
    assert second != first
    replay = token_request(emu, grant_type="refresh_token", refresh_token=first)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant" and replay.json()["error_codes"] == [70000]
    assert replay.json()["error_description"].startswith("AADSTS70000")
    assert emu.is_refresh_token_valid(second)


def test_revoke_next_refresh_and_revoke_user(emu):
    tokens = sign_in(emu)
    emu.revoke_next_refresh()
    assert token_request(emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 400

    tokens = sign_in(emu)
    assert graph(emu, "GET", "/me", tokens["access_token"]).status_code == 200
    emu.revoke_user(DEFAULT_USER)
    assert graph(emu, "GET", "/me", tokens["access_token"]).status_code == 401
    assert token_request(emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 400


# -- Graph ---------------------------------------------------------------------------------
def test_bearer_is_required_and_tokens_expire(emu):
    missing = graph(emu, "GET", "/me", None)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    token = sign_in(emu)["access_token"]
    me = graph(emu, "GET", "/me", token).json()
    assert me["mail"] == me["userPrincipalName"] == DEFAULT_USER and me["id"] == emu.user(DEFAULT_USER).oid
    emu.expire_access_tokens()
    expired = graph(emu, "GET", "/me", token)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


def test_transaction_id_makes_a_retried_create_return_the_same_event(emu):
    token = sign_in(emu)["access_token"]
    first = graph(emu, "POST", "/me/calendar/events", token, json=event_body(transactionId="tx-1"))
    again = graph(emu, "POST", "/me/calendar/events", token, json=event_body(transactionId="tx-1"))
    other = graph(emu, "POST", "/me/calendar/events", token, json=event_body(transactionId="tx-2"))
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert len(emu.events()) == 2


def test_event_lifecycle_and_unknown_ids(emu):
    token = sign_in(emu)["access_token"]
    created = graph(emu, "POST", "/me/calendar/events", token, json=event_body()).json()
    path = "/me/events/" + requests.utils.quote(created["id"], safe="")
    assert graph(emu, "PATCH", path, token, json={"subject": "Pilates"}).json()["subject"] == "Pilates"
    assert graph(emu, "GET", path, token).json()["subject"] == "Pilates"
    assert graph(emu, "DELETE", path, token).status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        gone = graph(emu, method, path, token, json={"subject": "x"} if method == "PATCH" else None)
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "ErrorItemNotFound"
        assert gone.json()["error"]["message"] == "The specified object was not found in the store."


@pytest.mark.parametrize("body, status, code", [
    (event_body(color="blue"), 400, "RequestBodyRead"),
    (event_body(subject=42), 400, "RequestBodyRead"),
    (event_body(start={"dateTime": "2030-03-04T09:00:00", "timeZone": "Mars/Olympus"}), 400,
     "ErrorTimeZoneNotSupportedException"),
    (event_body(start={"dateTime": "tomorrow", "timeZone": "UTC"}), 400, "RequestBodyRead"),
    (event_body(isAllDay=True), 400, "ErrorPropertyValidationFailure"),
    (event_body(isAllDay=True, start={"dateTime": "2030-03-04T00:00:00", "timeZone": "UTC"},
                end={"dateTime": "2030-03-05T00:00:00.0000000", "timeZone": "UTC"}), 201, None),
    (event_body(start={"dateTime": "2030-03-04T09:00:00", "timeZone": "Europe/Brussels"}), 201, None),
    (event_body(start={"dateTime": "2030-03-04T09:00:00", "timeZone": "Romance Standard Time"}), 201, None),
])
def test_event_validation(emu, body, status, code):
    token = sign_in(emu)["access_token"]
    response = graph(emu, "POST", "/me/calendar/events", token, json=body)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"]["code"] == code


def test_patch_to_all_day_is_validated_against_the_stored_times(emu):
    token = sign_in(emu)["access_token"]
    created = graph(emu, "POST", "/me/calendar/events", token, json=event_body()).json()
    path = "/me/events/" + requests.utils.quote(created["id"], safe="")
    assert graph(emu, "PATCH", path, token, json={"isAllDay": True}).status_code == 400


def test_times_convert_to_utc_instants():
    assert to_utc({"dateTime": "2030-07-01T09:00:00", "timeZone": "Europe/Brussels"}).hour == 7
    assert to_utc({"dateTime": "2030-07-01T09:00:00.0000000", "timeZone": "UTC"}).hour == 9


def test_attendees_would_be_invited(emu):
    token = sign_in(emu)["access_token"]
    body = event_body(attendees=[{"emailAddress": {"address": "student@example.com"}, "type": "required"}])
    graph(emu, "POST", "/me/calendar/events", token, json=body)
    assert emu.invitations_sent == [(DEFAULT_USER, "student@example.com")]


# -- $batch ----------------------------------------------------------------------------
def batch(emu, token, items):
    return graph(emu, "POST", "/$batch", token, json={"requests": items})


def create_item(i, **extra):
    item = {"id": str(i), "method": "POST", "url": "/me/calendar/events", "body": event_body(subject=f"c{i}"),
            "headers": {"Content-Type": "application/json"}}
    item.update(extra)
    return item


def test_batch_limits_and_format(emu):
    token = sign_in(emu)["access_token"]
    too_many = batch(emu, token, [create_item(i) for i in range(1, 22)])
    assert too_many.status_code == 400
    no_type = create_item(1)
    del no_type["headers"]
    assert batch(emu, token, [no_type]).status_code == 400
    assert batch(emu, token, [create_item(1, dependsOn=["9"])]).status_code == 400
    assert not emu.events()


def test_batch_dependencies_and_failed_dependency(emu):
    token = sign_in(emu)["access_token"]
    items = [
        {"id": "1", "method": "DELETE", "url": "/me/events/unknown"},
        create_item(2, dependsOn=["1"]),
        create_item(3),
        {"id": "4", "method": "GET", "url": "me", "dependsOn": ["3"]},
    ]
    response = batch(emu, token, items)
    assert response.status_code == 200
    answers = {a["id"]: a for a in response.json()["responses"]}
    assert answers["1"]["status"] == 404
    assert answers["2"]["status"] == 424
    assert answers["3"]["status"] == 201 and answers["3"]["body"]["subject"] == "c3"
    assert answers["4"]["status"] == 200 and answers["4"]["body"]["mail"] == DEFAULT_USER
    assert [e["subject"] for e in emu.events()] == ["c3"]


def test_batch_with_more_than_four_independent_items_is_throttled(emu):
    token = sign_in(emu)["access_token"]
    response = batch(emu, token, [create_item(i) for i in range(1, 7)])
    statuses = sorted(a["status"] for a in response.json()["responses"])
    assert statuses == [201, 201, 201, 201, 429, 429]
    throttled = [a for a in response.json()["responses"] if a["status"] == 429][0]
    assert throttled["body"]["error"]["code"] == "ApplicationThrottled"
    assert "MailboxConcurrency" in throttled["body"]["error"]["message"]
    assert throttled["headers"]["Retry-After"]
    assert emu.max_concurrency() == 4


def test_four_chains_stay_within_the_mailbox_concurrency(emu):
    token = sign_in(emu)["access_token"]
    items = [create_item(i, **({"dependsOn": [str(i - 4)]} if i > 4 else {})) for i in range(1, 21)]
    response = batch(emu, token, items)
    assert all(a["status"] == 201 for a in response.json()["responses"])
    assert emu.max_concurrency() == 4 and len(emu.events()) == 20


def test_resource_faults_also_hit_batch_items(emu):
    token = sign_in(emu)["access_token"]
    emu.inject(r"/me/calendar/events$", method="POST", status=503, headers={"Retry-After": "3"},
               body={"error": {"code": "ServiceUnavailable", "message": "busy"}})
    answers = {a["id"]: a for a in batch(emu, token, [create_item(1)]).json()["responses"]}
    assert answers["1"]["status"] == 503 and answers["1"]["headers"]["Retry-After"] == "3"


# -- throttling ---------------------------------------------------------------------------
def test_request_rate_per_mailbox(emu):
    emu.rate_limit = (3, 60)
    token = sign_in(emu)["access_token"]
    statuses = [graph(emu, "GET", "/me", token).status_code for _ in range(3)]
    throttled = graph(emu, "GET", "/me", token)
    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60


def test_concurrent_http_requests_beyond_four_are_throttled(emu):
    token = sign_in(emu)["access_token"]
    emu.gate = threading.Event()  # hold every admitted request until we have seen the excess refused
    with ThreadPoolExecutor(6) as pool:
        headers = {"Authorization": f"Bearer {token}"}  # one connection per thread: no shared Session
        futures = [pool.submit(requests.get, emu.graph_endpoint + "/me", headers=headers) for _ in range(6)]
        refused = []
        deadline = time.monotonic() + 10
        while len(refused) < 2 and time.monotonic() < deadline:
            refused = [f for f in futures if f.done()]
            time.sleep(0.01)
        assert emu.in_flight() == 4
        emu.gate.set()
        statuses = sorted(f.result().status_code for f in futures)
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert [f.result().json()["error"]["code"] for f in refused] == ["ApplicationThrottled"] * 2
    assert emu.max_concurrency() == 4
