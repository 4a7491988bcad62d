"""Loopback Microsoft identity platform (Entra ID v2 endpoints) and Microsoft Graph calendar.

One HTTPS server plays both hosts: ``authority_host`` (login.microsoftonline.com) and
``graph_endpoint`` (graph.microsoft.com/v1.0). It follows the Microsoft behaviour our client
depends on, including the unpleasant parts:

* OAuth: discovery document, authorize with auto-consent (or ``deny_next``), token endpoint
  with PKCE S256 and client-secret checks, id tokens MSAL can read, ``client_info``, and
  refresh tokens that ROTATE on every use (the old one stops working, stricter than Entra).
* Graph: ``/me``, event create (``transactionId`` makes retries idempotent), get, patch,
  delete, a few validation rules, Bearer checks with expiring access tokens, and ``$batch``
  (<= 20 items, ``dependsOn``, 424 on a failed dependency).
* Calendars: ``/me/calendars`` POST (409 on a name in use), GET (list, always with their
  single-value extended properties expanded), GET/DELETE by id; events under
  ``/me/calendars/{id}/events`` (404 when the calendar or the event in it is missing);
  deleting a calendar deletes its events.
* Outlook throttling: a request rate per mailbox (429 + ``Retry-After``) and at most
  ``concurrency_limit`` requests running at once per mailbox, counting both concurrent HTTP
  requests and the items of a ``$batch`` that would run in parallel.
"""

import base64
import copy
import hashlib
import json
import math
import re
import secrets
import threading
import time
import uuid
import zoneinfo
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from urllib.parse import unquote, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import calendar_page
from .common import LoopbackServer, Response
from .tls import server_context

DEFAULT_CLIENT_ID = "5f1c4a8e-7d3b-4c2a-9e61-0b8d2f4a7c11"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_TENANT_ID = "3c5e9a1f-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
DEFAULT_USER = "instructor@contoso.test"
GRAPH_RESOURCE_ID = "00000003-0000-0000-c000-000000000000"
MAX_BATCH_REQUESTS = 20
MULTI_TENANT_SEGMENTS = ("common", "organizations", "consumers")

#: Writable event properties we let through; anything else is a RequestBodyRead error.
EVENT_PROPERTIES = frozenset(
    """subject body bodyPreview start end isAllDay location locations showAs importance
    sensitivity categories isReminderOn reminderMinutesBeforeStart responseRequested
    allowNewTimeProposals hideAttendees attendees isOnlineMeeting onlineMeetingProvider
    onlineMeetingUrl recurrence transactionId originalStartTimeZone originalEndTimeZone
    singleValueExtendedProperties multiValueExtendedProperties""".split()
)

#: A sample of the Windows zone names Graph also accepts (and their IANA equivalents).
WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "Tokyo Standard Time": "Asia/Tokyo",
    "India Standard Time": "Asia/Kolkata",
    "AUS Eastern Standard Time": "Australia/Sydney",
}

_DATETIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)(?:\.(\d{1,7}))?(Z|[+-]\d\d:\d\d)?$")


# -- small helpers --------------------------------------------------------------------
def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value):
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def graph_error(status, code, message, headers=None):
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": _now_iso(), "request-id": str(uuid.uuid4())},
        }
    }
    return Response(status, body, headers)


def oauth_error(status, error, code, description):
    return Response(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {uuid.uuid4()}\r\nTimestamp: {_now_iso()}",
            "error_codes": [code],
            "timestamp": _now_iso(),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
    )


def _now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_zone(name):
    """tzinfo for an IANA or (known) Windows zone name, or None when Graph would refuse it."""
    if not isinstance(name, str) or not name:
        return None
    if name in WINDOWS_ZONES:
        name = WINDOWS_ZONES[name]
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def parse_graph_datetime(value):
    """Naive or aware datetime from Graph's ``dateTime`` (up to 7 fractional digits), or None."""
    match = _DATETIME.match(value) if isinstance(value, str) else None
    if not match:
        return None
    base, fraction, offset = match.groups()
    text = base + (f".{fraction[:6].ljust(6, '0')}" if fraction else "")
    if offset:
        text += "+00:00" if offset == "Z" else offset
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def to_utc(date_time_zone):
    """The UTC instant of a Graph ``{dateTime, timeZone}`` (for tests checking times)."""
    moment = parse_graph_datetime(date_time_zone["dateTime"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=resolve_zone(date_time_zone["timeZone"]))
    return moment.astimezone(timezone.utc)


_signing_key = None
_signing_key_lock = threading.Lock()


def _key():
    global _signing_key
    with _signing_key_lock:
        if _signing_key is None:
            _signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _signing_key


def sign_jwt(claims, kid="emulator-key-1"):
    """An RS256 JWT like Entra's (MSAL reads the claims; it does not check the signature)."""
    header = {"typ": "JWT", "alg": "RS256", "kid": kid}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}".encode()
    signature = _key().sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64url(signature)}"


def jwks(kid="emulator-key-1"):
    numbers = _key().public_key().public_numbers()

    def encode(n):
        return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    return {"keys": [{"kty": "RSA", "use": "sig", "kid": kid, "n": encode(numbers.n), "e": encode(numbers.e)}]}


# -- state ------------------------------------------------------------------------------
@dataclass
class User:
    email: str
    oid: str
    tenant_id: str
    name: str


@dataclass
class AuthCode:
    user: User
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str
    code_challenge: str
    code_challenge_method: str


@dataclass
class Grant:
    """What a refresh token stands for."""

    user: User
    client_id: str
    scope: str


@dataclass
class AccessToken:
    user: User
    client_id: str
    expires_at: float


@dataclass
class Mailbox:
    events: dict = field(default_factory=dict)  # event id -> event resource
    transactions: dict = field(default_factory=dict)  # transactionId -> event id
    calendars: dict = field(default_factory=dict)  # secondary calendar id -> resource
    event_calendar: dict = field(default_factory=dict)  # event id -> secondary calendar id
    in_flight: int = 0
    max_in_flight: int = 0
    recent: deque = field(default_factory=deque)  # start times of requests in the rate window


class MicrosoftEmulator(LoopbackServer):
    """Entra ID + Graph on one loopback HTTPS server."""

    def __init__(
        self,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        tenant_id=DEFAULT_TENANT_ID,
        access_token_lifetime=3600,
        rate_limit=(10000, 600),
        concurrency_limit=4,
    ):
        super().__init__(tls_context=server_context())
        self.apps = {client_id: client_secret}
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant_id = tenant_id
        self.access_token_lifetime = access_token_lifetime
        self.rate_limit = rate_limit  # (requests, seconds) per mailbox, None = unlimited
        self.concurrency_limit = concurrency_limit
        self.users = {}  # email -> User
        self.codes = {}  # code -> AuthCode
        self.redeemed_codes = set()
        self.refresh_tokens = {}  # refresh token -> Grant
        self.access_tokens = {}  # access token -> AccessToken
        self.mailboxes = defaultdict(Mailbox)  # oid -> Mailbox
        self.invitations_sent = []  # (organizer email, attendee address): Outlook emails attendees
        self.deny_next = False  # next authorize: the user declines consent
        self.consent_as = None  # email the authorize endpoint signs in (default: login_hint or first user)
        self.gate = None  # threading.Event: Graph operations wait on it while holding their slot
        self._revoke_next_refresh = 0
        self.seed_user(DEFAULT_USER)

    # -- addresses and settings ----------------------------------------------------------
    @property
    def authority_host(self):
        return self.base_url

    @property
    def graph_endpoint(self):
        return f"{self.base_url}/v1.0"

    def config_kwargs(self, tenant="common"):
        """Keyword arguments for ``MicrosoftConfig`` pointing at this emulator."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "tenant": tenant,
            "authority_host": self.authority_host,
            "graph_endpoint": self.graph_endpoint,
        }

    # -- test controls -------------------------------------------------------------------
    def seed_user(self, email, name=None, tenant_id=None):
        with self.lock:
            user = User(email, str(uuid.uuid4()), tenant_id or self.tenant_id, name or email.split("@")[0].title())
            self.users[email.lower()] = user
            return user

    def user(self, email):
        return self.users[email.lower()]

    def revoke_next_refresh(self, times=1):
        """The next refresh-token grant(s) fail with invalid_grant (as after a password reset)."""
        with self.lock:
            self._revoke_next_refresh += times

    def revoke_user(self, email):
        """The user withdrew consent: every refresh and access token of theirs stops working."""
        oid = self.user(email).oid
        with self.lock:
            for store in (self.refresh_tokens, self.access_tokens):
                for token in [t for t, grant in store.items() if grant.user.oid == oid]:
                    del store[token]

    def expire_access_tokens(self, email=None):
        """Access tokens expire now at the server (the client's cache still thinks they are fresh)."""
        with self.lock:
            for token in self.access_tokens.values():
                if email is None or token.user.email.lower() == email.lower():
                    token.expires_at = time.time() - 1

    def is_refresh_token_valid(self, refresh_token):
        with self.lock:
            return refresh_token in self.refresh_tokens

    # -- inspection ----------------------------------------------------------------------
    def issued_secrets(self):
        """Every access and refresh token this emulator issued (to check none leaks)."""
        with self.lock:
            return set(self.access_tokens) | set(self.refresh_tokens)

    def events(self, email=DEFAULT_USER):
        """Copies of the events in a user's default calendar."""
        with self.lock:
            mailbox = self.mailboxes[self.user(email).oid]
            return copy.deepcopy([e for eid, e in mailbox.events.items() if eid not in mailbox.event_calendar])

    def calendars(self, email=DEFAULT_USER):
        """{id: resource} of a user's secondary calendars."""
        with self.lock:
            return copy.deepcopy(self.mailboxes[self.user(email).oid].calendars)

    def calendar_events(self, email, calendar_id):
        """Copies of the events in one secondary calendar."""
        with self.lock:
            mailbox = self.mailboxes[self.user(email).oid]
            return copy.deepcopy([mailbox.events[eid] for eid, cid in mailbox.event_calendar.items() if cid == calendar_id])

    def add_calendar(self, email, name):
        """A calendar the user made in Outlook: its id."""
        with self.lock:
            mailbox = self.mailboxes[self.user(email).oid]
            calendar_id = "AAMkAGcal" + b64url(secrets.token_bytes(18)) + "AAA="
            mailbox.calendars[calendar_id] = {"id": calendar_id, "name": name, "singleValueExtendedProperties": []}
            return calendar_id

    def event(self, event_id, email=DEFAULT_USER):
        with self.lock:
            event = self.mailboxes[self.user(email).oid].events.get(event_id)
            return copy.deepcopy(event)

    def max_concurrency(self, email=DEFAULT_USER):
        """Most Graph operations observed running at once in the mailbox."""
        with self.lock:
            return self.mailboxes[self.user(email).oid].max_in_flight

    def in_flight(self, email=DEFAULT_USER):
        with self.lock:
            return self.mailboxes[self.user(email).oid].in_flight

    # -- identity: discovery, authorize, token --------------------------------------------
    def _issuer(self, tenant):
        if tenant.lower() in MULTI_TENANT_SEGMENTS:
            return f"{self.base_url}/{{tenantid}}/v2.0"  # literally, as Entra publishes it
        return f"{self.base_url}/{self._tenant_id(tenant)}/v2.0"

    def _tenant_id(self, tenant):
        try:
            return str(uuid.UUID(tenant))
        except ValueError:
            return self.tenant_id  # a domain name such as contoso.onmicrosoft.com

    def openid_configuration(self, req, tenant):
        base = f"{self.base_url}/{tenant}"
        return Response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": self._issuer(tenant),
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.graph_endpoint.rsplit('/', 1)[0]}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "preferred_username", "name", "tid", "oid", "email"],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
                "msgraph_host": "graph.microsoft.com",
            },
        )

    def keys(self, req, tenant):
        return Response(200, jwks())

    def authorize(self, req, tenant):
        query = req.query
        redirect_uri = query.get("redirect_uri")
        if query.get("client_id") not in self.apps or not redirect_uri:
            # Entra shows an error page and never redirects to an unverified redirect_uri.
            return Response(400, raw="<html><body>AADSTS700016: Application not found.</body></html>", content_type="text/html")
        state = query.get("state")
        mode = query.get("response_mode") or "query"
        if query.get("response_type") != "code":
            return self._auth_redirect(redirect_uri, mode, error="unsupported_response_type", state=state,
                                       error_description="AADSTS70005: response_type 'code' is required.")
        with self.lock:
            denied, self.deny_next = self.deny_next, False
        if denied:
            return self._auth_redirect(redirect_uri, mode, state=state, error="access_denied",
                                       error_description="AADSTS65004: User declined to consent to access the app.")
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method", "plain")
        if challenge and method != "S256":
            return self._auth_redirect(redirect_uri, mode, state=state, error="invalid_request",
                                       error_description="AADSTS501491: Invalid code_challenge_method.")
        user = self._signing_in_user(query.get("login_hint"))
        code = "0.A" + secrets.token_urlsafe(48)
        with self.lock:
            self.codes[code] = AuthCode(user, query["client_id"], redirect_uri, query.get("scope", ""),
                                        query.get("nonce"), challenge, method)
        return self._auth_redirect(redirect_uri, mode, code=code, state=state, session_state=str(uuid.uuid4()))

    def _signing_in_user(self, login_hint):
        with self.lock:
            email = self.consent_as or login_hint
            if email and email.lower() in self.users:
                return self.users[email.lower()]
            return next(iter(self.users.values()))

    @staticmethod
    def _auth_redirect(redirect_uri, mode, **params):
        params = {k: v for k, v in params.items() if v is not None}
        if mode == "form_post":
            inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}"/>' for k, v in params.items())
            page = (f'<html><body onload="document.forms[0].submit()"><form method="POST" action="{escape(redirect_uri)}">'
                    f"{inputs}</form></body></html>")
            return Response(200, raw=page, content_type="text/html")
        separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
        return Response(302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})

    def token(self, req, tenant):
        form = req.form()
        client_id, secret = self._client_credentials(req, form)
        if client_id not in self.apps:
            return oauth_error(400, "unauthorized_client", 700016,
                               f"Application with identifier '{client_id}' was not found in the directory.")
        if secret != self.apps[client_id]:
            return oauth_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._redeem_code(form, client_id)
        if grant_type == "refresh_token":
            return self._redeem_refresh_token(form, client_id)
        return oauth_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")

    @staticmethod
    def _client_credentials(req, form):
        header = req.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return unquote(client_id), unquote(secret)
        return form.get("client_id"), form.get("client_secret")

    def _redeem_code(self, form, client_id):
        code = form.get("code")
        with self.lock:
            grant = self.codes.pop(code, None)
            if grant is None:
                if code in self.redeemed_codes:
                    return oauth_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
                return oauth_error(400, "invalid_grant", 70008, "The provided authorization code has expired or is invalid.")
            self.redeemed_codes.add(code)
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return oauth_error(400, "invalid_grant", 50011, "The redirect URI or client does not match the authorization request.")
        if grant.code_challenge and not self._pkce_ok(grant, form.get("code_verifier")):
            return oauth_error(400, "invalid_grant", 501481,
                               "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
        return self._issue_tokens(grant.user, client_id, form.get("scope") or grant.scope, grant.nonce, form)

    @staticmethod
    def _pkce_ok(grant, verifier):
        if not verifier:
            return False
        return b64url(hashlib.sha256(verifier.encode()).digest()) == grant.code_challenge

    def _redeem_refresh_token(self, form, client_id):
        token = form.get("refresh_token")
        with self.lock:
            grant = self.refresh_tokens.pop(token, None)  # rotation: a refresh token works once
            if grant is not None and self._revoke_next_refresh:
                self._revoke_next_refresh -= 1
                grant = None
        if grant is None or grant.client_id != client_id:
            return oauth_error(400, "invalid_grant", 70000,
                               "The provided value for the 'refresh_token' is not valid. The user could have been "
                               "deleted or revoked consent.")
        return self._issue_tokens(grant.user, client_id, form.get("scope") or grant.scope, None, form)

    def _issue_tokens(self, user, client_id, scope, nonce, form):
        requested = scope.split()
        granted = " ".join(s for s in requested if s != "offline_access")
        now = int(time.time())
        access_token = sign_jwt({
            "aud": GRAPH_RESOURCE_ID, "iss": f"https://sts.windows.net/{user.tenant_id}/", "iat": now, "nbf": now,
            "exp": now + self.access_token_lifetime, "oid": user.oid, "tid": user.tenant_id, "scp": granted,
            "upn": user.email, "uti": secrets.token_urlsafe(16),
        })
        body = {
            "token_type": "Bearer",
            "scope": granted,
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access_token,
        }
        with self.lock:
            self.access_tokens[access_token] = AccessToken(user, client_id, now + self.access_token_lifetime)
            if "offline_access" in requested:
                refresh_token = "1.A" + secrets.token_urlsafe(64)
                self.refresh_tokens[refresh_token] = Grant(user, client_id, scope)
                body["refresh_token"] = refresh_token
        if "openid" in requested:
            body["id_token"] = self._id_token(user, client_id, nonce, now, "email" in requested)
        if form.get("client_info") == "1":
            body["client_info"] = b64url_json({"uid": user.oid, "utid": user.tenant_id})
        return Response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _id_token(self, user, client_id, nonce, now, with_email):
        claims = {
            "aud": client_id,
            "iss": f"{self.base_url}/{user.tenant_id}/v2.0",
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.email,
            "sub": b64url(hashlib.sha256(f"{user.oid}{client_id}".encode()).digest()),
            "tid": user.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce  # MSAL sent a hash of its nonce and compares it with this
        if with_email:
            claims["email"] = user.email
        return sign_jwt(claims)

    # -- Graph: authentication, throttling, dispatch -------------------------------------
    def _authenticate(self, header):
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            return None, graph_error(401, "InvalidAuthenticationToken", "Access token is empty.",
                                     {"WWW-Authenticate": 'Bearer realm=""'})
        with self.lock:
            token = self.access_tokens.get(header[7:].strip())
        if token is None:
            return None, graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.",
                                     {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
        if token.expires_at <= time.time():
            return None, graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.",
                                     {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
        return token.user, None

    def _throttled(self, mailbox):
        """429 when the mailbox is over its request rate, else count the request and None."""
        now = time.time()
        with self.lock:
            if self.rate_limit:
                limit, window = self.rate_limit
                while mailbox.recent and mailbox.recent[0] <= now - window:
                    mailbox.recent.popleft()
                if len(mailbox.recent) >= limit:
                    wait = max(1, math.ceil(mailbox.recent[0] + window - now))
                    return graph_error(429, "ApplicationThrottled", "Application is over its MailboxRequestRate limit.",
                                       {"Retry-After": str(wait)})
            mailbox.recent.append(now)
        return None

    def _enter(self, mailbox, count=1):
        """Take ``count`` concurrency slots; returns how many were granted."""
        with self.lock:
            granted = max(0, min(count, self.concurrency_limit - mailbox.in_flight))
            mailbox.in_flight += granted
            mailbox.max_in_flight = max(mailbox.max_in_flight, mailbox.in_flight)
            return granted

    def _leave(self, mailbox, count=1):
        with self.lock:
            mailbox.in_flight -= count

    @staticmethod
    def _concurrency_exceeded():
        return graph_error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                           {"Retry-After": "1"})

    def _graph_http(self, req, rest):
        user, error = self._authenticate(req.headers.get("Authorization"))
        if error:
            return error
        try:
            body = json.loads(req.body) if req.body else None
        except ValueError:
            return graph_error(400, "RequestBodyRead", "Invalid JSON in the request body.")
        mailbox = self.mailboxes[user.oid]
        throttled = self._throttled(mailbox)
        if throttled:
            return throttled
        if not self._enter(mailbox):
            return self._concurrency_exceeded()
        try:
            return self._operate(user, req.method, "/" + rest, body)
        finally:
            self._leave(mailbox)

    def _operate(self, user, method, path, body):
        """One Graph operation inside the user's mailbox (slot already held)."""
        if self.gate is not None:
            self.gate.wait(10)
        for route_method, pattern, func in self.graph_routes:
            if route_method == method:
                match = re.fullmatch(pattern, path)
                if match:
                    groups = {k: unquote(v) for k, v in match.groupdict().items()}
                    return func(self, user, body, **groups)
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{path.strip('/').split('/')[0]}'.")

    # -- Graph: resources ----------------------------------------------------------------
    def me(self, user, body):
        return Response(200, {
            "@odata.context": f"{self.graph_endpoint}/$metadata#users/$entity",
            "id": user.oid,
            "displayName": user.name,
            "mail": user.email,
            "userPrincipalName": user.email,
        })

    # -- Graph: calendars ----------------------------------------------------------------
    def list_calendars(self, user, body):
        with self.lock:
            return Response(200, {"value": copy.deepcopy(list(self.mailboxes[user.oid].calendars.values()))})

    def create_calendar(self, user, body):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            return graph_error(400, "ErrorInvalidRequest", "A calendar needs a name.")
        unknown = set(body) - {"name", "color", "singleValueExtendedProperties", "multiValueExtendedProperties"}
        if unknown:
            return graph_error(400, "RequestBodyRead", f"The property '{sorted(unknown)[0]}' does not exist on type 'microsoft.graph.calendar'.")
        mailbox = self.mailboxes[user.oid]
        with self.lock:
            names = {c["name"].lower() for c in mailbox.calendars.values()} | {"calendar"}
            if body["name"].lower() in names:
                return graph_error(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            calendar_id = "AAMkAGcal" + b64url(secrets.token_bytes(18)) + "AAA="
            resource = {"id": calendar_id, "name": body["name"], "color": body.get("color", "auto"),
                        "canEdit": True, "isDefaultCalendar": False,
                        "singleValueExtendedProperties": copy.deepcopy(body.get("singleValueExtendedProperties") or [])}
            mailbox.calendars[calendar_id] = resource
            return Response(201, copy.deepcopy(resource))

    def get_calendar(self, user, body, calendar_id):
        with self.lock:
            calendar = self.mailboxes[user.oid].calendars.get(calendar_id)
            return Response(200, copy.deepcopy(calendar)) if calendar else self._not_found()

    def delete_calendar(self, user, body, calendar_id):
        mailbox = self.mailboxes[user.oid]
        with self.lock:
            if mailbox.calendars.pop(calendar_id, None) is None:
                return self._not_found()
            for event_id in [eid for eid, cid in mailbox.event_calendar.items() if cid == calendar_id]:
                mailbox.events.pop(event_id, None)
                mailbox.event_calendar.pop(event_id)
        return Response(204)

    def _in_calendar(self, mailbox, event_id, calendar_id):
        """The event, when it exists (and, given a calendar, lies in that calendar)."""
        if calendar_id is not None and (calendar_id not in mailbox.calendars or mailbox.event_calendar.get(event_id) != calendar_id):
            return None
        return mailbox.events.get(event_id)

    # -- Graph: events ---------------------------------------------------------------------
    def create_event(self, user, body, calendar_id=None):
        error = self._validate_event(body)
        if error:
            return error
        mailbox = self.mailboxes[user.oid]
        transaction_id = body.get("transactionId")
        with self.lock:
            if calendar_id is not None and calendar_id not in mailbox.calendars:
                return self._not_found()
            known = mailbox.events.get(mailbox.transactions.get(transaction_id)) if transaction_id else None
            if known is not None:
                return Response(201, self._resource(known))  # a retried create: the same event
            event = self._new_event(user, body)
            mailbox.events[event["id"]] = event
            if calendar_id is not None:
                mailbox.event_calendar[event["id"]] = calendar_id
            if transaction_id:
                mailbox.transactions[transaction_id] = event["id"]
            self._record_invitations(user, body)
            return Response(201, self._resource(event))

    def get_event(self, user, body, event_id, calendar_id=None):
        with self.lock:
            event = self._in_calendar(self.mailboxes[user.oid], event_id, calendar_id)
            return Response(200, self._resource(event)) if event else self._not_found()

    def update_event(self, user, body, event_id, calendar_id=None):
        with self.lock:
            event = self._in_calendar(self.mailboxes[user.oid], event_id, calendar_id)
            if event is None:
                return self._not_found()
            error = self._validate_event(body, current=event)
            if error:
                return error
            event.update(copy.deepcopy(body))
            event["lastModifiedDateTime"] = _now_iso()
            event["changeKey"] = secrets.token_urlsafe(12)
            event["@odata.etag"] = f'W/"{event["changeKey"]}"'
            self._record_invitations(user, body)
            return Response(200, self._resource(event))

    def delete_event(self, user, body, event_id, calendar_id=None):
        mailbox = self.mailboxes[user.oid]
        with self.lock:
            if self._in_calendar(mailbox, event_id, calendar_id) is None:
                return self._not_found()
            mailbox.events.pop(event_id)
            mailbox.event_calendar.pop(event_id, None)
        return Response(204)

    @staticmethod
    def _not_found():
        return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    def _new_event(self, user, body):
        event_id = "AAMkAG" + b64url(secrets.token_bytes(30)) + "AAA="  # ids need URL-encoding ("=")
        change_key = secrets.token_urlsafe(12)
        event = {
            "@odata.etag": f'W/"{change_key}"',
            "id": event_id,
            "createdDateTime": _now_iso(),
            "lastModifiedDateTime": _now_iso(),
            "changeKey": change_key,
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
            "subject": "",
            "isAllDay": False,
            "attendees": [],
            "organizer": {"emailAddress": {"name": user.name, "address": user.email}},
            "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
        }
        event.update(copy.deepcopy(body))
        return event

    def _resource(self, event):
        return dict(copy.deepcopy(event), **{"@odata.context": f"{self.graph_endpoint}/$metadata#users('me')/events/$entity"})

    def _record_invitations(self, user, body):
        for attendee in body.get("attendees") or ():
            address = ((attendee or {}).get("emailAddress") or {}).get("address")
            self.invitations_sent.append((user.email, address))

    # -- Graph: validation ---------------------------------------------------------------
    def _validate_event(self, body, current=None):
        if not isinstance(body, dict):
            return graph_error(400, "RequestBodyRead", "An event resource (a JSON object) is expected in the request body.")
        for name in body:
            if name not in EVENT_PROPERTIES and not name.startswith("@odata."):
                return graph_error(400, "RequestBodyRead",
                                   f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make sure to "
                                   "only use property names that are defined by the type or mark the type as open type.")
        for name in ("subject", "transactionId"):
            if name in body and not isinstance(body[name], str):
                return graph_error(400, "RequestBodyRead",
                                   f"Cannot convert the literal '{body[name]}' to the expected type 'Edm.String'.")
        for name in ("start", "end"):
            if name in body:
                error = self._validate_time(body[name])
                if error:
                    return error
        merged = dict(current or {}, **body)
        if merged.get("isAllDay") and not self._midnight_bounds(merged):
            return graph_error(400, "ErrorPropertyValidationFailure", "At least one property failed validation.")
        return None

    @staticmethod
    def _validate_time(value):
        if not isinstance(value, dict) or set(value) - {"dateTime", "timeZone", "@odata.type"}:
            return graph_error(400, "RequestBodyRead", "A dateTimeTimeZone value {dateTime, timeZone} is expected.")
        if parse_graph_datetime(value.get("dateTime")) is None:
            return graph_error(400, "RequestBodyRead",
                               f"Cannot convert the literal '{value.get('dateTime')}' to the expected type 'Edm.DateTime'.")
        if resolve_zone(value.get("timeZone")) is None:
            return graph_error(400, "ErrorTimeZoneNotSupportedException",
                               "A valid TimeZone value must be specified. The following TimeZone value is not "
                               f"supported: '{value.get('timeZone')}'.")
        return None

    @staticmethod
    def _midnight_bounds(event):
        """All-day events must start and end at midnight in their time zone."""
        for name in ("start", "end"):
            value = event.get(name)
            moment = parse_graph_datetime((value or {}).get("dateTime"))
            if moment is None or (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
                return False
        return True

    # -- Graph: $batch ---------------------------------------------------------------
    def batch(self, req):
        user, error = self._authenticate(req.headers.get("Authorization"))
        if error:
            return error
        try:
            items = req.json().get("requests")
        except (ValueError, AttributeError):
            return graph_error(400, "BadRequest", "Invalid batch payload format.")
        error = self._validate_batch(items)
        if error:
            return error
        responses = self._run_batch(user, items)
        # Graph answers in any order: return them reversed so clients must match on "id".
        ordered = [responses[item["id"]] for item in reversed(items)]
        return Response(200, {"responses": ordered})

    @staticmethod
    def _validate_batch(items):
        if not isinstance(items, list) or not items:
            return graph_error(400, "BadRequest", "Invalid batch payload format.")
        if len(items) > MAX_BATCH_REQUESTS:
            return graph_error(400, "BadRequest", f"Number of batch requests exceeds the limit of {MAX_BATCH_REQUESTS}.")
        ids = [item.get("id") if isinstance(item, dict) else None for item in items]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            return graph_error(400, "BadRequest", "Every batch request needs a unique string id.")
        known = set()
        for item in items:
            url = item.get("url")
            if not isinstance(url, str) or not url or "://" in url or item.get("method") not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
                return graph_error(400, "BadRequest", f"Invalid method or relative url in request id : {item['id']}.")
            if "body" in item and not any(k.lower() == "content-type" for k in (item.get("headers") or {})):
                return graph_error(400, "BadRequest", f"Write request id : {item['id']} does not contain Content-Type header or body.")
            depends = item.get("dependsOn") or []
            if not isinstance(depends, list) or not set(depends) <= known:
                # Graph resolves dependencies in request order; an unknown id is an error.
                return graph_error(400, "BadRequest", f"Request id : {item['id']} depends on a request not earlier in the batch.")
            known.add(item["id"])
        return None

    def _run_batch(self, user, items):
        """Run items in waves: every item whose dependencies are done runs concurrently."""
        mailbox = self.mailboxes[user.oid]
        results = {}
        pending = list(items)
        while pending:
            wave = [i for i in pending if all(d in results for d in i.get("dependsOn") or [])]
            pending = [i for i in pending if i not in wave]
            runnable = []
            for item in wave:
                if any(not 200 <= results[d]["status"] < 300 for d in item.get("dependsOn") or []):
                    results[item["id"]] = self._item_response(item, graph_error(
                        424, "FailedDependency", "The request could not be completed because a dependent request failed."))
                else:
                    runnable.append(item)
            granted = self._enter(mailbox, len(runnable))
            try:
                for index, item in enumerate(runnable):
                    if index >= granted:
                        response = self._concurrency_exceeded()
                    else:
                        response = self._run_item(user, mailbox, item)
                    results[item["id"]] = self._item_response(item, response)
            finally:
                self._leave(mailbox, granted)
        return results

    def _run_item(self, user, mailbox, item):
        parts = urlsplit(item["url"] if item["url"].startswith("/") else "/" + item["url"])
        # Status faults injected on a resource path also hit that resource inside a $batch.
        fault = self._take_fault(item["method"], "/v1.0" + parts.path, inner=True, answers=False)
        if fault is not None:
            return Response(fault.status, fault.body, fault.headers)
        throttled = self._throttled(mailbox)
        if throttled:
            return throttled
        return self._operate(user, item["method"], parts.path, copy.deepcopy(item.get("body")))

    @staticmethod
    def _item_response(item, response):
        body = json.loads(response.raw) if response.raw else None
        out = {"id": item["id"], "status": response.status, "headers": dict(response.headers)}
        if body is not None:
            out["body"] = body
        return out

    # -- routing ---------------------------------------------------------------------
    graph_routes = (
        ("GET", r"/me", me),
        ("GET", r"/me/calendars", list_calendars),
        ("POST", r"/me/calendars", create_calendar),
        ("GET", r"/me/calendars/(?P<calendar_id>[^/]+)", get_calendar),
        ("DELETE", r"/me/calendars/(?P<calendar_id>[^/]+)", delete_calendar),
        ("POST", r"/me/calendars/(?P<calendar_id>[^/]+)/events", create_event),
        ("GET", r"/me/calendars/(?P<calendar_id>[^/]+)/events/(?P<event_id>[^/]+)", get_event),
        ("PATCH", r"/me/calendars/(?P<calendar_id>[^/]+)/events/(?P<event_id>[^/]+)", update_event),
        ("DELETE", r"/me/calendars/(?P<calendar_id>[^/]+)/events/(?P<event_id>[^/]+)", delete_event),
        ("POST", r"/me/(?:calendar/)?events", create_event),
        ("GET", r"/me/(?:calendar/)?events/(?P<event_id>[^/]+)", get_event),
        ("PATCH", r"/me/(?:calendar/)?events/(?P<event_id>[^/]+)", update_event),
        ("DELETE", r"/me/(?:calendar/)?events/(?P<event_id>[^/]+)", delete_event),
    )

    routes = (
        ("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", openid_configuration),
        ("GET", r"/(?P<tenant>[^/]+)/discovery/v2\.0/keys", keys),
        ("GET", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/authorize", authorize),
        ("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", token),
        ("POST", r"/v1\.0/\$batch", batch),
        ("GET", r"/v1\.0/(?P<rest>.+)", _graph_http),
        ("POST", r"/v1\.0/(?P<rest>.+)", _graph_http),
        ("PATCH", r"/v1\.0/(?P<rest>.+)", _graph_http),
        ("DELETE", r"/v1\.0/(?P<rest>.+)", _graph_http),
        ("GET", calendar_page.PATH, calendar_page.serve),  # HTML view for demos
    )
