"""The Google emulator keeps Google's rules (checked directly over HTTP with requests)."""

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests


USER = "teacher@example.com"  # the user of the `google` fixture (conftest.py)
EVENT = {
    "summary": "Yoga",
    "start": {"dateTime": "2030-01-07T10:00:00Z", "timeZone": "UTC"},
    "end": {"dateTime": "2030-01-07T11:00:00Z", "timeZone": "UTC"},
}


@pytest.fixture
def api(google):
    token, _refresh = google.issue_tokens(USER)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base = f"{google.base_url}/calendar/v3/calendars/primary/events"

    class Api:
        def insert(self, body, **params):
            return session.post(base, json=body, params=params, timeout=5)

        def call(self, method, event_id, body=None):
            return session.request(method, f"{base}/{event_id}", json=body, timeout=5)

    return Api()


def _challenge(verifier):
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _authorize(google, verifier="v" * 50, **overrides):
    params = {
        "client_id": google.client_id,
        "redirect_uri": "http://odoo.test/cb",
        "response_type": "code",
        "scope": "https://www.googleapis.com/auth/calendar.events openid email",
        "access_type": "offline",
        "state": "s1",
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    return requests.get(f"{google.base_url}/o/oauth2/v2/auth", params=params, allow_redirects=False, timeout=5)


def _location_params(response):
    return {k: v[-1] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def _token(google, **form):
    data = {"client_id": google.client_id, "client_secret": google.client_secret, **form}
    return requests.post(f"{google.base_url}/token", data=data, timeout=5)


def _google_error(response):
    body = response.json()["error"]
    assert set(body) >= {"code", "message", "errors", "status"}
    assert body["code"] == response.status_code
    return body["errors"][0]


# -- OAuth -------------------------------------------------------------------------------------------
def test_consent_redirects_with_code_and_state(google):
    response = _authorize(google)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("http://odoo.test/cb?")
    params = _location_params(response)
    assert params["state"] == "s1" and params["code"]


def test_consent_denied_redirects_with_access_denied(google):
    google.deny_next = True
    params = _location_params(_authorize(google))
    assert params == {"error": "access_denied", "state": "s1"}
    assert "code" in _location_params(_authorize(google))  # the switch is one-shot


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_type": "token"},
        {"scope": "https://www.googleapis.com/auth/gmail.readonly"},
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
    ],
)
def test_consent_rejects_bad_requests(google, overrides):
    assert _location_params(_authorize(google, **overrides))["error"] == "invalid_request"


def test_consent_refuses_unknown_client_and_unregistered_redirect(google):
    assert _authorize(google, client_id="other").status_code == 401
    google.redirect_uris = ["https://odoo.test/cb"]
    response = _authorize(google, redirect_uri="https://evil.test/cb")
    assert response.status_code == 400 and response.json()["error"] == "redirect_uri_mismatch"


def test_code_exchange_checks_pkce_secret_and_single_use(google):
    verifier = secrets.token_urlsafe(48)
    code = _location_params(_authorize(google, verifier=verifier))["code"]
    common = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://odoo.test/cb"}
    assert _token(google, client_secret="wrong", code_verifier=verifier, **common).json()["error"] == "invalid_client"
    bad = _token(google, code_verifier="x" * 50, **common)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    # a failed verifier burns the code, as a used code would be
    code = _location_params(_authorize(google, verifier=verifier))["code"]
    common["code"] = code
    good = _token(google, code_verifier=verifier, **common)
    assert good.status_code == 200
    body = good.json()
    assert set(body) >= {"access_token", "expires_in", "refresh_token", "scope", "token_type", "id_token"}
    assert body["token_type"] == "Bearer"
    assert _token(google, code_verifier=verifier, **common).json()["error"] == "invalid_grant"


def test_id_token_is_a_well_formed_jwt(google):
    verifier = "w" * 60
    code = _location_params(_authorize(google, verifier=verifier))["code"]
    body = _token(
        google, grant_type="authorization_code", code=code, redirect_uri="http://odoo.test/cb", code_verifier=verifier
    ).json()
    header, claims, signature = body["id_token"].split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    assert decode(header)["alg"] == "RS256"
    claims = decode(claims)
    assert claims["iss"] == "https://accounts.google.com" and claims["aud"] == google.client_id
    assert claims["email"] == USER and claims["email_verified"] is True
    assert claims["exp"] > claims["iat"] and claims["sub"]
    assert signature


def test_refresh_and_revocation(google):
    _access, refresh = google.issue_tokens(USER)
    renewed = _token(google, grant_type="refresh_token", refresh_token=refresh)
    assert renewed.status_code == 200 and "refresh_token" not in renewed.json()
    google.revoke_next_refresh()
    revoked = _token(google, grant_type="refresh_token", refresh_token=refresh)
    assert revoked.status_code == 400
    assert revoked.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    assert _token(google, grant_type="refresh_token", refresh_token=refresh).status_code == 400  # stays revoked


def test_revoke_endpoint_kills_the_grant(google):
    access, refresh = google.issue_tokens(USER)
    assert requests.post(f"{google.base_url}/revoke", data={"token": refresh}, timeout=5).status_code == 200
    again = requests.post(f"{google.base_url}/revoke", data={"token": refresh}, timeout=5)
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"
    api = requests.get(
        f"{google.base_url}/calendar/v3/calendars/primary/events/abcdef",
        headers={"Authorization": f"Bearer {access}"},
        timeout=5,
    )
    assert api.status_code == 401


# -- Calendar API ----------------------------------------------------------------------------------------
def test_missing_and_expired_tokens_get_401(google, api):
    url = f"{google.base_url}/calendar/v3/calendars/primary/events/abcdef"
    missing = requests.get(url, timeout=5)
    assert missing.status_code == 401 and _google_error(missing)["reason"] == "required"
    google.expire_access_tokens(USER)
    expired = api.call("GET", "abcdef")
    assert expired.status_code == 401 and _google_error(expired)["reason"] == "authError"


def test_insert_with_client_id_and_generated_id(google, api):
    created = api.insert(dict(EVENT, id="abcdefghijklmnopqrstuv0123456789"), sendUpdates="none")
    assert created.status_code == 200
    body = created.json()
    assert body["id"] == "abcdefghijklmnopqrstuv0123456789" and body["status"] == "confirmed"
    assert body["etag"] and body["iCalUID"] and body["created"] and body["updated"]
    generated = api.insert(EVENT).json()["id"]
    assert 5 <= len(generated) <= 1024 and set(generated) <= set("abcdefghijklmnopqrstuv0123456789")
    assert set(google.live_events(USER)) == {"abcdefghijklmnopqrstuv0123456789", generated}


@pytest.mark.parametrize("bad_id", ["abcd", "ABCDEF", "abcdwxyz", "abc-def", "a" * 1025])
def test_insert_rejects_ids_outside_base32hex(api, bad_id):
    response = api.insert(dict(EVENT, id=bad_id))
    assert response.status_code == 400 and _google_error(response)["reason"] == "invalid"


def test_duplicate_id_is_409_even_after_delete(google, api):
    assert api.insert(dict(EVENT, id="dupe00")).status_code == 200
    again = api.insert(dict(EVENT, id="dupe00"))
    assert again.status_code == 409
    assert _google_error(again) == {"domain": "global", "reason": "duplicate", "message": "The requested identifier already exists."}
    assert api.call("DELETE", "dupe00").status_code == 204
    assert api.insert(dict(EVENT, id="dupe00")).status_code == 409
    assert google.events(USER)["dupe00"]["status"] == "cancelled"
    assert google.live_events(USER) == {}


def test_deleted_event_is_410_and_unknown_is_404(api):
    api.insert(dict(EVENT, id="gone00"))
    api.call("DELETE", "gone00")
    for method, body in (("GET", None), ("PATCH", {"summary": "x"}), ("PUT", EVENT), ("DELETE", None)):
        response = api.call(method, "gone00", body)
        assert response.status_code == 410 and _google_error(response)["reason"] == "deleted", method
        missing = api.call(method, "never0", body)
        assert missing.status_code == 404 and _google_error(missing)["reason"] == "notFound", method


def test_cancelled_on_get_mode(google, api):
    google.cancelled_on_get = True
    api.insert(dict(EVENT, id="gone00"))
    api.call("DELETE", "gone00")
    response = api.call("GET", "gone00")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_patch_merges_and_put_replaces(api):
    created = api.insert(dict(EVENT, id="edit00", location="Room 1", extendedProperties={"private": {"k": "v"}})).json()
    patched = api.call("PATCH", "edit00", {"summary": "Pilates", "extendedProperties": {"private": {"n": "2"}}}).json()
    assert patched["summary"] == "Pilates" and patched["location"] == "Room 1"
    assert patched["extendedProperties"]["private"] == {"k": "v", "n": "2"}
    assert patched["etag"] != created["etag"]
    cleared = api.call("PATCH", "edit00", {"location": None}).json()
    assert "location" not in cleared
    replaced = api.call("PUT", "edit00", dict(EVENT, summary="Dance")).json()
    assert replaced["summary"] == "Dance" and "extendedProperties" not in replaced and replaced["id"] == "edit00"


@pytest.mark.parametrize(
    "body",
    [
        dict(EVENT, colour="red"),
        dict(EVENT, start={"dateTime": "2030-01-07T10:00:00Z", "zone": "UTC"}),
        dict(EVENT, reminders={"useDefault": "yes"}),
        dict(EVENT, attendees=[{"email": "a@example.com", "bogus": 1}]),
    ],
)
def test_body_is_validated_against_the_discovery_schema(api, body):
    response = api.insert(dict(body, id="valid0"))
    assert response.status_code == 400 and _google_error(response)["reason"] == "invalid"


def test_missing_times_and_empty_range_are_rejected(api):
    no_end = {"summary": "x", "start": EVENT["start"]}
    assert _google_error(api.insert(no_end))["reason"] == "required"
    backwards = dict(EVENT, end={"dateTime": "2030-01-07T09:00:00Z"})
    assert _google_error(api.insert(backwards))["reason"] == "timeRangeEmpty"


def test_calendar_id_primary_or_own_email(google, api):
    token = google.access_token_of(USER)
    headers = {"Authorization": f"Bearer {token}"}
    own = requests.post(
        f"{google.base_url}/calendar/v3/calendars/{USER.replace('@', '%40')}/events", json=EVENT, headers=headers, timeout=5
    )
    assert own.status_code == 200
    other = requests.post(f"{google.base_url}/calendar/v3/calendars/someone%40else.com/events", json=EVENT, headers=headers, timeout=5)
    assert other.status_code == 404
    assert api.insert(EVENT, sendUpdates="sometimes").status_code == 400


@pytest.mark.parametrize("status, reason", [(403, "rateLimitExceeded"), (429, "userRateLimitExceeded")])
def test_per_user_quota(google, api, status, reason):
    google.requests_per_minute = 3
    google.rate_limit_status, google.rate_limit_reason = status, reason
    google.rate_limit_retry_after = 7
    assert [api.insert(EVENT).status_code for _ in range(3)] == [200, 200, 200]
    limited = api.insert(EVENT)
    assert limited.status_code == status and limited.headers["Retry-After"] == "7"
    assert _google_error(limited)["reason"] == reason and _google_error(limited)["domain"] == "usageLimits"
    google.reset_quota()
    assert api.insert(EVENT).status_code == 200


# -- batch -------------------------------------------------------------------------------------------------
def _batch(google, parts, token):
    boundary = "===============0123456789=="
    chunks = []
    for index, (method, path, body) in enumerate(parts):
        payload = json.dumps(body) if body is not None else ""
        inner = f"{method} {path} HTTP/1.1\nContent-Type: application/json\nauthorization: Bearer {token}\n\n{payload}"
        chunks.append(f"--{boundary}\nContent-Type: application/http\nContent-ID: <base + {index}>\n\n{inner}\n")
    body = "".join(chunks) + f"--{boundary}--\n"
    return requests.post(
        f"{google.base_url}/batch/calendar/v3",
        data=body.encode(),
        headers={"Content-Type": f'multipart/mixed; boundary="{boundary}"'},
        timeout=5,
    )


def _batch_parts(response):
    import email.parser

    message = email.parser.Parser().parsestr(f"Content-Type: {response.headers['Content-Type']}\r\n\r\n{response.text}")
    result = []
    for part in message.get_payload():
        status_line = part.get_payload().split("\n", 1)[0]
        result.append((part["Content-ID"], int(status_line.split(" ")[1])))
    return result


def test_batch_dispatches_each_part(google, api):
    token = google.access_token_of(USER)
    events = "/calendar/v3/calendars/primary/events"
    response = _batch(
        google,
        [
            ("POST", f"{events}?sendUpdates=none", dict(EVENT, id="batch0")),
            ("POST", events, dict(EVENT, id="BAD")),
            ("PATCH", f"{events}/nothere", {"summary": "x"}),
            ("DELETE", f"{events}/batch0", None),
        ],
        token,
    )
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("multipart/mixed")
    assert _batch_parts(response) == [
        ("<response-base + 0>", 200),
        ("<response-base + 1>", 400),
        ("<response-base + 2>", 404),
        ("<response-base + 3>", 204),
    ]
    assert len(google.requests("/batch/calendar/v3")) == 1
    assert [entry.status for entry in google.part_log] == [200, 400, 404, 204]


def test_batch_over_50_parts_is_refused(google, api):
    token = google.access_token_of(USER)
    parts = [("POST", "/calendar/v3/calendars/primary/events", EVENT)] * 51
    response = _batch(google, parts, token)
    assert response.status_code == 400 and _google_error(response)["reason"] == "batchSizeTooLarge"
    assert google.live_events(USER) == {}


def test_status_faults_reach_batch_parts(google, api):
    token = google.access_token_of(USER)
    google.inject(r"/events/target$", status=503, body={"error": {"code": 503, "message": "Backend Error"}})
    events = "/calendar/v3/calendars/primary/events"
    response = _batch(google, [("GET", f"{events}/target", None), ("GET", f"{events}/other0", None)], token)
    assert [status for _cid, status in _batch_parts(response)] == [503, 404]
