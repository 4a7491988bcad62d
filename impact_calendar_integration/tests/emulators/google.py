"""Loopback emulator of Google's OAuth 2.0 endpoints and the Calendar v3 events API.

It follows the rules of the real service that our client depends on (client-supplied ids,
409 on a burned id, 410 on deleted events, Bearer tokens that expire, the batch endpoint's
multipart/mixed wire format, per-user quotas, request-body validation against the discovery
document shipped in googleapiclient) so the sync core can be tested without the internet.

Secondary calendars: ``calendars.insert/get/delete`` and events under ``calendars/{id}/events``;
deleting a calendar deletes its events. Scope rules per calendar: ``calendar`` and
``calendar.events`` reach every calendar of the user, ``calendar.events.owned`` the ones the user
owns (primary and secondary), ``calendar.app.created`` only the calendars this client created
(``primary`` included in the refusal: 403); ``calendars.insert/get/delete`` need ``calendar``,
``calendar.calendars`` or ``calendar.app.created``. ``include_granted_scopes=true`` at consent
adds what the user granted this client before, as Google does.

Test controls: ``add_user``, ``add_calendar``, ``login_as``, ``deny_next``, ``expire_access_tokens``,
``revoke_next_refresh``, ``revoke_user``, ``requests_per_minute``; inspection: ``events``,
``live_events``, ``calendars``, ``calendar_events``, ``access_token_of``, ``requests`` (base class log), ``part_log`` (batch parts).
"""

import base64
import collections
import copy
import email.parser
import hashlib
import http
import itertools
import json
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import googleapiclient

from . import calendar_page
from .common import LoggedRequest, LoopbackServer, Response

DEFAULT_CLIENT_ID = "emulator-client.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "emulator-secret"
SCOPE = "https://www.googleapis.com/auth/"
FULL_SCOPE, EVENTS_SCOPE, OWNED_SCOPE = SCOPE + "calendar", SCOPE + "calendar.events", SCOPE + "calendar.events.owned"
APP_CREATED_SCOPE, CALENDARS_SCOPE = SCOPE + "calendar.app.created", SCOPE + "calendar.calendars"
CALENDAR_SCOPES = (FULL_SCOPE, EVENTS_SCOPE, OWNED_SCOPE, APP_CREATED_SCOPE, CALENDARS_SCOPE)
KNOWN_SCOPES = CALENDAR_SCOPES + ("openid", "email", "profile")
#: scopes reaching the events of any calendar the user owns (the primary one included)
OWNED_EVENTS_SCOPES = (FULL_SCOPE, EVENTS_SCOPE, OWNED_SCOPE)
#: scopes allowed to create, read and delete calendars (calendars.insert/get/delete)
CALENDAR_ADMIN_SCOPES = (FULL_SCOPE, CALENDARS_SCOPE, APP_CREATED_SCOPE)
ISSUER = "https://accounts.google.com"
MAX_BATCH_PARTS = 50
EVENT_ID_RE = re.compile(r"[a-v0-9]{5,1024}")
CALENDARS_PATH = r"/calendar/v3/calendars"
CALENDAR_PATH = CALENDARS_PATH + r"/(?P<calendar_id>[^/]+)"
EVENTS_PATH = r"/calendar/v3/calendars/(?P<calendar_id>[^/]+)/events"
EVENT_PATH = EVENTS_PATH + r"/(?P<event_id>[^/]+)"
SEND_UPDATES = ("all", "externalOnly", "none")
# Fields the server owns: accepted in a request body (clients echo them back) but never taken.
SERVER_FIELDS = ("kind", "etag", "htmlLink", "created", "updated", "creator", "organizer", "iCalUID", "sequence")

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _load_event_schemas():
    path = os.path.join(
        os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "calendar.v3.json"
    )
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["schemas"]


SCHEMAS = _load_event_schemas()


# -- small helpers ------------------------------------------------------------------------------
def google_error(code, message, reason, domain="global", headers=None, **error_extra):
    """A response shaped like Google's JSON error body."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "errors": [dict({"domain": domain, "reason": reason, "message": message}, **error_extra)],
            "status": STATUS_NAMES.get(code, "UNKNOWN"),
        }
    }
    return Response(code, body, headers=headers)


def oauth_error(code, error, description):
    return Response(code, {"error": error, "error_description": description})


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rfc3339(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _deep_merge(target, patch):
    """Patch semantics: nested objects merge, arrays and scalars replace, null removes."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class SchemaViolation(ValueError):
    pass


def validate(value, schema, where):
    """Check ``value`` against a discovery-document schema; unknown fields are errors."""
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"]]
    kind = schema.get("type")
    if value is None:
        return  # JSON null clears a field (patch semantics)
    if kind == "object":
        if not isinstance(value, dict):
            raise SchemaViolation(f"Invalid value at '{where}': expected an object.")
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties and key in properties:
                validate(item, properties[key], f"{where}.{key}")
            elif extra is not None:
                validate(item, extra, f"{where}.{key}")
            else:
                raise SchemaViolation(
                    f'Invalid JSON payload received. Unknown name "{key}" at \'{where}\': Cannot find field.'
                )
    elif kind == "array":
        if not isinstance(value, list):
            raise SchemaViolation(f"Invalid value at '{where}': expected a list.")
        for index, item in enumerate(value):
            validate(item, schema.get("items", {}), f"{where}[{index}]")
    elif kind == "string" and not isinstance(value, str):
        raise SchemaViolation(f"Invalid value at '{where}': expected a string.")
    elif kind == "boolean" and not isinstance(value, bool):
        raise SchemaViolation(f"Invalid value at '{where}': expected a boolean.")
    elif kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        raise SchemaViolation(f"Invalid value at '{where}': expected an integer.")


def _instant(when):
    """An EventDateTime as a comparable value: a date for all-day, an aware datetime otherwise."""
    if when.get("dateTime"):
        moment = datetime.fromisoformat(when["dateTime"].replace("Z", "+00:00"))
        if moment.tzinfo is None:
            if not when.get("timeZone"):
                raise ValueError("Missing time zone definition for start time.")
            moment = moment.replace(tzinfo=timezone.utc)  # good enough to compare within one zone
        return moment
    if when.get("date"):
        return date.fromisoformat(when["date"])
    raise ValueError("Invalid start time.")


# -- state ------------------------------------------------------------------------------------------
@dataclass
class User:
    email: str
    sub: str
    events: dict = field(default_factory=dict)  # id -> StoredEvent (primary calendar)
    calendars: dict = field(default_factory=dict)  # id -> Calendar (secondary calendars)
    hits: list = field(default_factory=list)  # monotonic times of recent API calls (quota)


@dataclass
class Calendar:
    resource: dict
    client_id: str = None  # the OAuth client that created it (None: the user, in Google's UI)
    events: dict = field(default_factory=dict)  # id -> StoredEvent
    deleted: bool = False


@dataclass
class StoredEvent:
    resource: dict
    deleted: bool = False


@dataclass
class Grant:
    """What one consent gave: refresh token, scopes; access tokens point to it."""

    email: str
    scopes: tuple
    refresh_token: str = None
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float


class _PartRequest:
    """One request inside a batch, with the interface route handlers use."""

    def __init__(self, method, target, headers, body):
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body or b"{}")


class GoogleEmulator(LoopbackServer):
    def __init__(
        self,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        redirect_uris=None,
        access_token_lifetime=3600,
        require_pkce=True,
        tls_context=None,
    ):
        super().__init__(tls_context=tls_context)
        self.client_id = client_id
        self.client_secret = client_secret
        self._defaults = dict(redirect_uris=redirect_uris, access_token_lifetime=access_token_lifetime, require_pkce=require_pkce)
        self._etags = itertools.count(int(time.time() * 1000))
        self._state_lock = threading.RLock()
        self.reset()

    def reset(self):
        """Forget all state, faults and logs: lets a test session share one running server
        (stopping a LoopbackServer costs half a second of serve_forever polling)."""
        self.clear_faults()
        with self.lock:
            self.log.clear()
        self.latency = 0.0
        self.redirect_uris = self._defaults["redirect_uris"]  # None: any http(s) URI is registered
        self.access_token_lifetime = self._defaults["access_token_lifetime"]
        self.require_pkce = self._defaults["require_pkce"]
        self.clock = time.time  # token expiry; tests may replace it
        self.users = {}
        self.codes = {}
        self.grants = []
        self.access_tokens = {}
        self.part_log = []  # LoggedRequest of every request inside a batch
        # controls
        self.deny_next = False
        self.next_login = None
        self.revoke_next = False
        self.requests_per_minute = None  # per-user quota; None: unlimited
        self.rate_limit_status = 403  # or 429
        self.rate_limit_reason = "rateLimitExceeded"  # or userRateLimitExceeded
        self.rate_limit_retry_after = None  # seconds to send as Retry-After, if any
        self.cancelled_on_get = False  # True: GET of a deleted event answers 200 status=cancelled

    # -- test controls ----------------------------------------------------------------------
    def add_user(self, email):
        with self._state_lock:
            if email not in self.users:
                sub = str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16))
                self.users[email] = User(email=email, sub=sub)
            return self.users[email]

    def add_calendar(self, email, summary, by_client=False):
        """A secondary calendar the user made themselves (or this client, ``by_client``): its id."""
        user = self.add_user(email)
        calendar_id = secrets.token_hex(16) + "@group.calendar.google.com"
        with self._state_lock:
            user.calendars[calendar_id] = Calendar(
                {"kind": "calendar#calendar", "id": calendar_id, "summary": summary, "etag": '"1"'},
                client_id=self.client_id if by_client else None,
            )
        return calendar_id

    def calendars(self, email):
        """{id: resource} of a user's live secondary calendars."""
        with self._state_lock:
            user = self.users.get(email)
            return {cid: copy.deepcopy(c.resource) for cid, c in (user.calendars if user else {}).items() if not c.deleted}

    def calendar_events(self, email, calendar_id):
        """{id: resource} of the live events of a secondary calendar ({} when it is gone)."""
        with self._state_lock:
            calendar = self.users[email].calendars.get(calendar_id)
            if calendar is None or calendar.deleted:
                return {}
            return {eid: copy.deepcopy(e.resource) for eid, e in calendar.events.items() if not e.deleted}

    def login_as(self, email):
        """The account that consents at the next authorization request."""
        self.add_user(email)
        self.next_login = email

    def issue_tokens(self, email, scopes=None):
        """Tokens as after a consent, without the browser dance: (access_token, refresh_token)."""
        self.add_user(email)
        grant = self._new_grant(email, tuple(scopes or (CALENDAR_SCOPES[1], "openid", "email")))
        return self._new_access_token(grant), grant.refresh_token

    def access_token_of(self, email):
        """The newest access token issued to ``email`` that is still accepted, or None."""
        with self._state_lock:
            live = [
                token
                for token, entry in self.access_tokens.items()
                if entry.grant.email == email and not entry.grant.revoked and entry.expires_at > self.clock()
            ]
            return live[-1] if live else None

    def expire_access_tokens(self, email=None):
        """Server-side expiry: the client only learns it from a 401."""
        with self._state_lock:
            for entry in self.access_tokens.values():
                if email is None or entry.grant.email == email:
                    entry.expires_at = 0

    def revoke_next_refresh(self):
        """The next refresh_token grant fails with invalid_grant (and revokes that grant)."""
        self.revoke_next = True

    def revoke_user(self, email):
        """The user removed our app from their Google account: every token of theirs dies."""
        with self._state_lock:
            for grant in self.grants:
                if grant.email == email:
                    grant.revoked = True

    def issued_secrets(self):
        """Every access and refresh token this emulator issued (to check none leaks)."""
        with self._state_lock:
            return set(self.access_tokens) | {grant.refresh_token for grant in self.grants}

    def events(self, email):
        """{id: resource} of a user's events, deleted ones included with status 'cancelled'."""
        with self._state_lock:
            user = self.users.get(email)
            return {eid: copy.deepcopy(stored.resource) for eid, stored in (user.events if user else {}).items()}

    def live_events(self, email):
        return {eid: ev for eid, ev in self.events(email).items() if ev["status"] != "cancelled"}

    def request_counts(self):
        """Counter of (method, path) over the HTTP requests received (batch parts not included)."""
        with self.lock:
            return collections.Counter((entry.method, entry.path) for entry in self.log)

    def reset_quota(self):
        with self._state_lock:
            for user in self.users.values():
                user.hits.clear()

    # -- OAuth -------------------------------------------------------------------------------
    def _new_grant(self, email, scopes):
        grant = Grant(email=email, scopes=scopes, refresh_token="1//" + secrets.token_urlsafe(32))
        with self._state_lock:
            self.grants.append(grant)
        return grant

    def _new_access_token(self, grant):
        token = "ya29." + secrets.token_urlsafe(32)
        with self._state_lock:
            self.access_tokens[token] = AccessToken(grant, self.clock() + self.access_token_lifetime)
        return token

    def _id_token(self, grant):
        now = int(self.clock())
        user = self.users[grant.email]
        claims = {"iss": ISSUER, "azp": self.client_id, "aud": self.client_id, "sub": user.sub, "iat": now, "exp": now + 3600}
        if "email" in grant.scopes:
            claims.update(email=user.email, email_verified=True)
        header = {"alg": "RS256", "kid": "emulator", "typ": "JWT"}
        signature = secrets.token_bytes(64)  # not verifiable: our client does not verify it either
        return ".".join(_b64url(json.dumps(part).encode()) for part in (header, claims)) + "." + _b64url(signature)

    def _token_response(self, grant, with_refresh):
        body = {
            "access_token": self._new_access_token(grant),
            "expires_in": self.access_token_lifetime,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }
        if with_refresh and grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        if "openid" in grant.scopes:
            body["id_token"] = self._id_token(grant)
        return Response(200, body, headers={"Cache-Control": "no-store"})

    def authorize(self, req):
        q = req.query
        if q.get("client_id") != self.client_id:
            return oauth_error(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = q.get("redirect_uri", "")
        registered = self.redirect_uris is None and redirect_uri.startswith(("http://", "https://"))
        if not (registered or (self.redirect_uris and redirect_uri in self.redirect_uris)):
            return oauth_error(400, "redirect_uri_mismatch", "redirect_uri does not match a registered URI.")
        problem = self._authorize_problem(q)
        if problem:
            return self._redirect(redirect_uri, error="invalid_request", error_description=problem, state=q.get("state"))
        if self.deny_next:
            self.deny_next = False
            return self._redirect(redirect_uri, error="access_denied", state=q.get("state"))
        email = self.next_login or q.get("login_hint") or next(iter(self.users), None) or "user@example.com"
        self.add_user(email)
        code = "4/" + secrets.token_urlsafe(24)
        with self._state_lock:
            self.codes[code] = {
                "email": email,
                "redirect_uri": redirect_uri,
                "scopes": tuple(q["scope"].split()),
                "include_granted": q.get("include_granted_scopes") == "true",
                "challenge": q.get("code_challenge"),
                "offline": q.get("access_type") == "offline",
            }
        return self._redirect(redirect_uri, code=code, state=q.get("state"), scope=q["scope"])

    def _authorize_problem(self, q):
        if q.get("response_type") != "code":
            return "Invalid response_type: only 'code' is supported."
        scopes = q.get("scope", "").split()
        if not scopes or any(scope not in KNOWN_SCOPES for scope in scopes):
            return "Some requested scopes were invalid."
        if q.get("code_challenge") or self.require_pkce:
            if q.get("code_challenge_method") != "S256":
                return "Invalid code_challenge_method: S256 is required."
            if not re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")):
                return "Invalid code_challenge."
        return None

    @staticmethod
    def _redirect(redirect_uri, **params):
        params = {k: v for k, v in params.items() if v is not None}
        separator = "&" if "?" in redirect_uri else "?"
        return Response(302, headers={"Location": redirect_uri + separator + urlencode(params)})

    def token(self, req):
        form = req.form()
        client_id, client_secret = self._client_credentials(req, form)
        if client_id != self.client_id or client_secret != self.client_secret:
            return oauth_error(401, "invalid_client", "Unauthorized")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh(form)
        return oauth_error(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant_type))

    @staticmethod
    def _client_credentials(req, form):
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return unquote(user), unquote(password)
        return form.get("client_id"), form.get("client_secret")

    def _exchange_code(self, form):
        with self._state_lock:
            pending = self.codes.pop(form.get("code", ""), None)  # single use
        if pending is None:
            return oauth_error(400, "invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != pending["redirect_uri"]:
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if pending["challenge"]:
            verifier = form.get("code_verifier", "")
            if _b64url(hashlib.sha256(verifier.encode()).digest()) != pending["challenge"]:
                return oauth_error(400, "invalid_grant", "Invalid code verifier.")
        scopes = pending["scopes"]
        if pending.get("include_granted"):
            with self._state_lock:
                earlier = [g.scopes for g in self.grants if g.email == pending["email"] and not g.revoked]
            scopes = scopes + tuple(sorted({s for granted in earlier for s in granted} - set(scopes)))
        grant = self._new_grant(pending["email"], scopes)
        if not pending["offline"]:
            grant.refresh_token = None
        return self._token_response(grant, with_refresh=True)

    def _refresh(self, form):
        refresh_token = form.get("refresh_token")
        with self._state_lock:
            grant = next((g for g in self.grants if g.refresh_token and g.refresh_token == refresh_token), None)
            if grant is not None and self.revoke_next:
                self.revoke_next = False
                grant.revoked = True
        if grant is None or grant.revoked:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        return self._token_response(grant, with_refresh=False)

    def revoke(self, req):
        token = req.form().get("token") or req.query.get("token")
        with self._state_lock:
            grant = next((g for g in self.grants if token and g.refresh_token == token), None)
            if grant is None and token in self.access_tokens:
                grant = self.access_tokens[token].grant
            if grant is None or grant.revoked:
                return oauth_error(400, "invalid_token", "Token expired or revoked")
            grant.revoked = True  # Google revokes the whole grant, whichever token is given
        return Response(200, {})

    # -- Calendar API: auth and quota -----------------------------------------------------------------
    def _caller(self, req):
        """(User, None) for a valid Bearer token, else (None, error Response)."""
        auth = req.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None, google_error(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                "required",
                location="Authorization",
                locationType="header",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        with self._state_lock:
            entry = self.access_tokens.get(auth[7:].strip())
            valid = entry is not None and not entry.grant.revoked and entry.expires_at > self.clock()
        if not valid:
            return None, google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                "authError",
                location="Authorization",
                locationType="header",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
            )
        if not set(entry.grant.scopes) & set(CALENDAR_SCOPES):
            return None, google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        req.granted_scopes = set(entry.grant.scopes)
        return self.users[entry.grant.email], None

    def _over_quota(self, user):
        if not self.requests_per_minute:
            return None
        now = time.monotonic()
        with self._state_lock:
            user.hits[:] = [hit for hit in user.hits if hit > now - 60]
            if len(user.hits) >= self.requests_per_minute:
                headers = {}
                if self.rate_limit_retry_after is not None:
                    headers["Retry-After"] = str(self.rate_limit_retry_after)
                message = "Rate Limit Exceeded" if self.rate_limit_reason == "rateLimitExceeded" else "User Rate Limit Exceeded"
                return google_error(self.rate_limit_status, message, self.rate_limit_reason, domain="usageLimits", headers=headers)
            user.hits.append(now)
        return None

    @staticmethod
    def _insufficient_scope():
        return google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")

    def _may_use(self, req, calendar):
        """Whether the caller's scopes reach the events of ``calendar`` (None: primary)."""
        scopes = getattr(req, "granted_scopes", set())
        if scopes & set(OWNED_EVENTS_SCOPES):
            return True
        return calendar is not None and APP_CREATED_SCOPE in scopes and calendar.client_id == self.client_id

    def _caller_within_quota(self, req):
        """(User, None) for an authorised caller under its quota, else (None, error Response)."""
        user, error = self._caller(req)
        if error is None:
            error = self._over_quota(user)
        return (None, error) if error is not None else (user, None)

    def _calendar_of(self, req, calendar_id):
        """(User, events dict) when the caller may use ``calendar_id``, else (None, error Response)."""
        user, error = self._caller_within_quota(req)
        if error:
            return None, error
        calendar_id = unquote(calendar_id)
        if calendar_id in ("primary", user.email):
            calendar = None
        else:
            calendar = user.calendars.get(calendar_id)
            if calendar is None or calendar.deleted:
                return None, google_error(404, "Not Found", "notFound")
        if not self._may_use(req, calendar):
            return None, self._insufficient_scope()
        send_updates = req.query.get("sendUpdates")
        if send_updates is not None and send_updates not in SEND_UPDATES:
            return None, google_error(400, f"Invalid value for: {send_updates} is not a valid value", "invalidParameter")
        req.calendar_events = user.events if calendar is None else calendar.events
        return user, None

    # -- Calendar API: calendars ---------------------------------------------------------------------
    def _calendar_admin(self, req):
        user, error = self._caller_within_quota(req)
        if error:
            return None, error
        if not getattr(req, "granted_scopes", set()) & set(CALENDAR_ADMIN_SCOPES):
            return None, self._insufficient_scope()
        return user, None

    def _own_calendar(self, req, user, calendar_id):
        """(Calendar, None) for a secondary calendar the caller may manage, else (None, error)."""
        calendar_id = unquote(calendar_id)
        if calendar_id in ("primary", user.email):
            if not getattr(req, "granted_scopes", set()) & {FULL_SCOPE, CALENDARS_SCOPE}:
                return None, self._insufficient_scope()
            return None, google_error(400, "Cannot delete or read the primary calendar this way.", "cannotDeletePrimaryCalendar")
        calendar = user.calendars.get(calendar_id)
        if calendar is None or calendar.deleted:
            return None, google_error(404, "Not Found", "notFound")
        scopes = req.granted_scopes
        if not scopes & {FULL_SCOPE, CALENDARS_SCOPE} and calendar.client_id != self.client_id:
            return None, self._insufficient_scope()
        return calendar, None

    def insert_calendar(self, req):
        user, error = self._calendar_admin(req)
        if error:
            return error
        try:
            body = req.json()
        except ValueError:
            return google_error(400, "Parse Error", "parseError")
        try:
            validate(body, {"$ref": "Calendar"}, "resource")
        except SchemaViolation as violation:
            return google_error(400, str(violation), "invalid")
        if not body.get("summary"):
            return google_error(400, "Missing title.", "required")
        calendar_id = secrets.token_hex(16) + "@group.calendar.google.com"
        resource = dict(
            {k: v for k, v in body.items() if k not in ("id", "etag", "kind")},
            kind="calendar#calendar", id=calendar_id, etag='"%d"' % next(self._etags),
        )
        with self._state_lock:
            user.calendars[calendar_id] = Calendar(resource, client_id=self.client_id)
        return Response(200, resource)

    def get_calendar(self, req, calendar_id):
        user, error = self._calendar_admin(req)
        if error:
            return error
        with self._state_lock:
            calendar, error = self._own_calendar(req, user, calendar_id)
            return error or Response(200, copy.deepcopy(calendar.resource))

    def delete_calendar(self, req, calendar_id):
        user, error = self._calendar_admin(req)
        if error:
            return error
        with self._state_lock:
            calendar, error = self._own_calendar(req, user, calendar_id)
            if error:
                return error
            calendar.deleted = True  # its events go with it
        return Response(204)

    # -- Calendar API: events ------------------------------------------------------------------------
    def _parse_body(self, req, require_times):
        """(body, None) or (None, error Response) after Google's validation of an Event body."""
        try:
            body = req.json()
        except ValueError:
            return None, google_error(400, "Parse Error", "parseError")
        try:
            validate(body, {"$ref": "Event"}, "resource")
        except SchemaViolation as violation:
            return None, google_error(400, str(violation), "invalid")
        if require_times:
            for name in ("start", "end"):
                if not body.get(name):
                    return None, google_error(400, f"Missing {name} time.", "required")
        return body, None

    @staticmethod
    def _check_times(resource):
        try:
            start, end = _instant(resource["start"]), _instant(resource["end"])
        except (ValueError, KeyError) as problem:
            return google_error(400, str(problem) or "Invalid start time.", "invalid")
        if type(start) is not type(end):
            return google_error(400, "Invalid start or end time: both must be dates or date-times.", "invalid")
        if end < start:
            return google_error(400, "The specified time range is empty.", "timeRangeEmpty")
        return None

    def _stamp(self, resource):
        resource["etag"] = '"%d"' % next(self._etags)
        resource["updated"] = _rfc3339(time.time())

    def insert_event(self, req, calendar_id):
        user, error = self._calendar_of(req, calendar_id)
        if error:
            return error
        body, error = self._parse_body(req, require_times=True)
        if error:
            return error
        event_id = body.get("id") or uuid.uuid4().hex[:26]  # hex digits are valid base32hex
        if not EVENT_ID_RE.fullmatch(event_id):
            return google_error(400, "Invalid resource id value.", "invalid")
        resource = {key: value for key, value in body.items() if key not in SERVER_FIELDS}
        resource.setdefault("status", "confirmed")
        error = self._check_times(resource)
        if error:
            return error
        now = _rfc3339(time.time())
        resource.update(
            kind="calendar#event",
            id=event_id,
            iCalUID=f"{event_id}@google.com",
            htmlLink=f"{self.base_url}/calendar/event?eid={quote(event_id)}",
            created=now,
            creator={"email": user.email, "self": True},
            organizer={"email": user.email, "self": True},
            sequence=0,
        )
        resource.setdefault("reminders", {"useDefault": True})
        resource.setdefault("eventType", "default")
        self._stamp(resource)
        with self._state_lock:
            if event_id in req.calendar_events:  # also when deleted: Google never reuses an id
                return google_error(409, "The requested identifier already exists.", "duplicate")
            req.calendar_events[event_id] = StoredEvent(resource)
        return Response(200, resource, headers={"ETag": resource["etag"]})

    def _existing(self, events, event_id, allow_cancelled=False):
        """(StoredEvent, None) or (None, 404/410 error Response)."""
        stored = events.get(unquote(event_id))
        if stored is None:
            return None, google_error(404, "Not Found", "notFound")
        if stored.deleted and not allow_cancelled:
            return None, google_error(410, "Resource has been deleted", "deleted")
        return stored, None

    def get_event(self, req, calendar_id, event_id):
        _user, error = self._calendar_of(req, calendar_id)
        if error:
            return error
        with self._state_lock:
            stored, error = self._existing(req.calendar_events, event_id, allow_cancelled=self.cancelled_on_get)
            if error:
                return error
            return Response(200, copy.deepcopy(stored.resource), headers={"ETag": stored.resource["etag"]})

    def patch_event(self, req, calendar_id, event_id):
        return self._change_event(req, calendar_id, event_id, replace=False)

    def update_event(self, req, calendar_id, event_id):
        return self._change_event(req, calendar_id, event_id, replace=True)

    def _change_event(self, req, calendar_id, event_id, replace):
        _user, error = self._calendar_of(req, calendar_id)
        if error:
            return error
        body, error = self._parse_body(req, require_times=replace)
        if error:
            return error
        changes = {key: value for key, value in body.items() if key not in SERVER_FIELDS + ("id",)}
        with self._state_lock:
            stored, error = self._existing(req.calendar_events, event_id)
            if error:
                return error
            if replace:
                kept = {key: stored.resource[key] for key in SERVER_FIELDS + ("id",) if key in stored.resource}
                resource = dict(kept, status="confirmed", **changes)
            else:
                resource = _deep_merge(copy.deepcopy(stored.resource), changes)
            error = self._check_times(resource)
            if error:
                return error
            if resource.get("start") != stored.resource.get("start") or resource.get("end") != stored.resource.get("end"):
                resource["sequence"] = stored.resource.get("sequence", 0) + 1
            self._stamp(resource)
            stored.resource = resource
            if resource.get("status") == "cancelled":
                stored.deleted = True
            return Response(200, copy.deepcopy(resource), headers={"ETag": resource["etag"]})

    def delete_event(self, req, calendar_id, event_id):
        _user, error = self._calendar_of(req, calendar_id)
        if error:
            return error
        with self._state_lock:
            stored, error = self._existing(req.calendar_events, event_id)
            if error:
                return error
            stored.deleted = True
            stored.resource["status"] = "cancelled"
            self._stamp(stored.resource)
        return Response(204)

    # -- batch -----------------------------------------------------------------------------------
    def batch(self, req):
        content_type = req.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/mixed"):
            return google_error(400, "Batch requests must be multipart/mixed.", "badContent")
        envelope = email.parser.BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + req.body)
        parts = envelope.get_payload() if envelope.is_multipart() else []
        if not parts:
            return google_error(400, "A batch request needs at least one part.", "badContent")
        if len(parts) > MAX_BATCH_PARTS:
            return google_error(400, f"Too many requests in batch; the maximum is {MAX_BATCH_PARTS}.", "batchSizeTooLarge")
        boundary = "batch_" + secrets.token_hex(12)
        chunks = []
        for part in parts:
            content_id = part.get("Content-ID", "")
            inner = self._serve_part(part.get_payload(), req.headers)
            chunks.append(self._format_part(boundary, content_id, inner))
        raw = "".join(chunks) + f"--{boundary}--\r\n"
        return Response(200, raw=raw, content_type=f"multipart/mixed; boundary={boundary}")

    def _serve_part(self, payload, outer_headers):
        request_line, _, rest = payload.lstrip("\r\n").partition("\n")
        method, target, _version = request_line.strip().split(" ", 2)
        head, body = re.split(r"\r?\n\r?\n", rest, maxsplit=1) if re.search(r"\r?\n\r?\n", rest) else (rest, "")
        headers = email.parser.Parser().parsestr(head + "\n\n", headersonly=True)
        if "Authorization" not in headers and outer_headers.get("Authorization"):
            headers["Authorization"] = outer_headers["Authorization"]  # outer headers apply to every part
        part_req = _PartRequest(method.upper(), target, headers, body.encode())
        entry = LoggedRequest(part_req.method, part_req.path, part_req.query, dict(headers.items()), part_req.body)
        with self.lock:
            self.part_log.append(entry)
        response = self._part_fault(part_req) or self.handle(part_req)
        entry.status = response.status
        return response

    def _part_fault(self, part_req):
        """Status and answer faults (not drops or delays) also hit matching requests inside a batch."""
        fault = self._take_fault(part_req.method, part_req.path, inner=True)
        if fault and fault.answer:
            return fault.answer(part_req, lambda: self.handle(part_req))
        return Response(fault.status, fault.body, fault.headers) if fault else None

    @staticmethod
    def _format_part(boundary, content_id, response):
        if content_id.startswith("<") and content_id.endswith(">"):
            content_id = f"<response-{content_id[1:-1]}>"
        phrase = http.HTTPStatus(response.status).phrase
        header_lines = "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
        body = response.raw.decode()
        return (
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {content_id}\r\n\r\n"
            f"HTTP/1.1 {response.status} {phrase}\r\n{header_lines}Content-Length: {len(response.raw)}\r\n\r\n"
            f"{body}\r\n"
        )

    routes = (
        ("GET", r"/o/oauth2/v2/auth", authorize),
        ("POST", r"/token", token),
        ("POST", r"/revoke", revoke),
        ("POST", r"/batch/calendar/v3", batch),
        ("POST", CALENDARS_PATH, insert_calendar),
        ("GET", CALENDAR_PATH, get_calendar),
        ("DELETE", CALENDAR_PATH, delete_calendar),
        ("POST", EVENTS_PATH, insert_event),
        ("GET", EVENT_PATH, get_event),
        ("PATCH", EVENT_PATH, patch_event),
        ("PUT", EVENT_PATH, update_event),
        ("DELETE", EVENT_PATH, delete_event),
        ("GET", calendar_page.PATH, calendar_page.serve),  # HTML view for demos
    )

    # endpoints for a GoogleConfig pointing here
    def config_kwargs(self):
        base = self.base_url
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth_endpoint": base + "/o/oauth2/v2/auth",
            "token_endpoint": base + "/token",
            "revoke_endpoint": base + "/revoke",
            "api_endpoint": base + "/calendar/v3/",
        }
