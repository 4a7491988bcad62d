"""CalDAV adapter (Apple iCloud, Fastmail, Nextcloud, any RFC 4791 server), on plain ``requests``.

Why not the ``caldav`` library: each push must be exactly one request whose status we classify
ourselves (401, 412, 429/503 with Retry-After, dropped connections), with our own conditional
headers; ``caldav`` hides statuses behind its exceptions and its recent releases pull
``niquests`` in beside Odoo's pinned ``requests``/``urllib3``. Five verbs are all we need:
PROPFIND (discovery), MKCALENDAR (our dedicated calendar), PUT, GET (after a 412) and DELETE.

No OAuth: the user gives a server URL, a user name and an app-specific password, checked at once
by discovery (principal → calendar-home-set) and kept encrypted in the TokenSet like any token.

One push = one request: create ``PUT`` + ``If-None-Match: *`` (a retry after a lost answer gets
412 and overwrites the resource it made); update ``PUT`` + ``If-Match`` on the stored ETag
(412: re-read the ETag and overwrite, Odoo is the truth); delete ``DELETE`` (404 counts as
done). The resource name derives from the UID, so a class can never be created twice.

Every request goes through ``guarded_http``: the server, ``.well-known``, the principal and home
``href``s the server sends, and each redirect hop (at most three, followed by hand) are checked
by ``netguard`` before a socket is opened; private hosts and plain http only when an
administrator sets ``impact_calendar.caldav_allow_private_hosts``. Answers are capped in size and
time. Messages shown on the connect form say what to fix, never a status, a stage or an
exception class: the form must not become a port scanner.
"""

import logging
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import requests

from ... import guarded_http, http_limits, ics, netguard, payload
from ...config import DEFAULT_TIMEOUT
from ...outcomes import ConnectError, Kind, Outcome
from ...tokens import TokenSet
from .. import FORM, USER_DELETES_PASSWORD, Provider, Setting, register
from ..base import CREATE, DELETE, UPDATE, ProviderClient, parse_retry_after

_logger = logging.getLogger(__name__)

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
NS = {"d": DAV, "c": CALDAV}
#: our dedicated calendar's collection inside the calendar home is this prefix and the create's
#: guard: a resent create finds the calendar its first try made
COLLECTION_PREFIX = "impact-classes-"
MESSAGE_LIMIT = 300
#: statuses after which a retry may succeed; the rest of 4xx are refusals of this payload
TRANSIENT_STATUSES = (408, 423, 425, 500, 502, 503, 504, 507)
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
#: the system parameter that opens private and loopback hosts (an on-premises server, the tests)
ALLOW_PRIVATE_PARAM = "impact_calendar.caldav_allow_private_hosts"

# What the connect form says: what to fix, nothing of what the server answered.
NOT_ALLOWED = (
    "The server address is not allowed: it points to a private or local network. "
    "An administrator can allow private hosts in Settings."
)
HTTPS_ONLY = "The server address must start with https://."
NOT_A_URL = "Enter the server address, for example https://caldav.icloud.com."
NOT_CALDAV = "The server did not answer as a CalDAV server; check the address."
REFUSED = (
    "The user name or app password was refused. iCloud and Fastmail need an app-specific "
    "password, not the account password."
)
CANNOT_CREATE = "The server refused to create the calendar; check that this account may create calendars."

PRESETS = {
    "icloud": "https://caldav.icloud.com",
    "fastmail": "https://caldav.fastmail.com/dav/",
    "nextcloud": "https://<host>/remote.php/dav",
}

PROPFIND_PRINCIPAL = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:current-user-principal/></d:prop></d:propfind>'
)
PROPFIND_HOME = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    b"<d:prop><c:calendar-home-set/></d:prop></d:propfind>"
)
PROPFIND_RESOURCETYPE = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>'
)


def _mkcalendar_body(name):
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>'
        f"<d:displayname>{escape(payload.clean_text(name))}</d:displayname>"
        "<c:supported-calendar-component-set><c:comp name=\"VEVENT\"/></c:supported-calendar-component-set>"
        "</d:prop></d:set></c:mkcalendar>"
    ).encode("utf-8")


@dataclass(frozen=True)
class CaldavConfig:
    """Admin settings: the dedicated calendar's name (the server is each user's own), and
    whether servers on private networks may be reached; the bounds of one request."""

    calendar_name: str = "Classes"
    timeout: float = DEFAULT_TIMEOUT  # per read
    allow_private_hosts: bool = False
    deadline: float = guarded_http.DEADLINE  # per request, whatever the server drips
    max_response_bytes: int = guarded_http.MAX_BYTES


@dataclass(frozen=True)
class CaldavProvider(Provider):
    """A provider whose settings are not per-provider: the dedicated calendar's name is the
    one every provider uses (``impact_calendar.dedicated_calendar_name``)."""

    def config(self, get_param):
        return CaldavConfig(
            calendar_name=get_param("impact_calendar.dedicated_calendar_name") or "Classes",
            allow_private_hosts=str(get_param(ALLOW_PRIVATE_PARAM) or "").lower() in ("1", "true"),
        )


def new_session(config, resolver=None):
    """A session that reaches only the hosts ``config`` allows (``resolver``: for tests)."""
    return guarded_http.GuardedSession(
        netguard.Guard(config.allow_private_hosts, resolver), max_bytes=config.max_response_bytes, deadline=config.deadline,
    )


def connect_message(exc):
    """What the connect form says about a refused address."""
    if exc.reason == netguard.PRIVATE:
        return NOT_ALLOWED
    if exc.reason == netguard.SCHEME:
        return HTTPS_ONLY
    if exc.reason == netguard.MALFORMED:
        return NOT_A_URL
    return NOT_CALDAV


# -- ids and bodies ------------------------------------------------------------------------------
def split_external_id(external_id):
    """``(href, etag)`` from our external id ``"<href> <etag>"`` (the ETag is optional)."""
    href, _sep, etag = (external_id or "").partition(" ")
    return href, etag or None


def join_external_id(href, etag):
    return f"{href} {etag}" if etag else href


def uid_of(href):
    """The UID of the resource at ``href`` (its name, without ``.ics``)."""
    name = unquote(href.rstrip("/").rsplit("/", 1)[-1])
    return name[:-4] if name.endswith(".ics") else name


def build_body(snapshot):
    """What the CalDAV resource holds, as JSON values (hashed by the engine)."""
    return ics.event_fields(snapshot)


# -- HTTP helpers ------------------------------------------------------------------------------------
def _message(response):
    text = (response.text or "").strip().replace("\n", " ")
    return f"CalDAV {response.status_code} {response.reason or ''}: {text[:MESSAGE_LIMIT]}".strip()


def classify(response):
    """Outcome of a failed (non-2xx, non-412) answer."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 401:
        return Outcome(Kind.AUTH_REVOKED, status=status, message="The CalDAV server refused the password (changed or revoked app-specific password).")
    if status in (404, 410):
        return Outcome(Kind.GONE, status=status, message=_message(response))
    if status == 429:
        return Outcome(Kind.RATE_LIMITED, status=status, retry_after=retry_after, message=_message(response))
    if status in TRANSIENT_STATUSES or status >= 500:
        return Outcome(Kind.TRANSIENT, status=status, retry_after=retry_after, message=_message(response))
    return Outcome(Kind.REJECTED, status=status, message=_message(response))


def _calendar_missing(response):
    """A PUT answered 404 on a create, or 409 (no parent collection, RFC 4918 9.7.1): not the
    event but its calendar may be gone. A 404 that waits with backoff: the synchronizer then
    asks ``get_calendar`` and forgets a calendar that is gone (never GONE, which re-creates the
    event at once into the same missing calendar)."""
    return Outcome(Kind.TRANSIENT, status=404, message=_message(response))


def _is_calendar(response):
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError:
        return False
    return any(True for _ in root.iter(f"{{{CALDAV}}}calendar"))


def _hrefs(response, prop):
    """Every ``<d:href>`` under property ``prop`` (Clark notation) of a multistatus answer."""
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError:
        return []
    found = []
    for element in root.iter(prop):
        found += [href.text.strip() for href in element.iter(f"{{{DAV}}}href") if href.text]
    return found


class CaldavClient(ProviderClient):
    """Adapter to one user's dedicated calendar on a CalDAV server."""

    batch_size = 1  # CalDAV has no batch; the base class's stop policy still applies per op

    def __init__(self, config, tokens, on_tokens=None, session=None):
        self.config = config
        self.tokens = tokens
        self.on_tokens = on_tokens
        self.session = session or new_session(config)
        self.session.auth = (tokens.username or "", tokens.password or "")

    # -- requests --------------------------------------------------------------------------
    def _request(self, method, url, body=None, headers=None):
        headers = dict(headers or {})
        if body is not None and "Content-Type" not in headers:
            headers["Content-Type"] = "application/xml; charset=utf-8"
        return self.session.request(
            method, url, data=body, headers=headers, timeout=self.config.timeout, allow_redirects=False,
        )

    def _put(self, href, fields, condition):
        body = ics.resource(fields, uid_of(href))
        headers = {"Content-Type": "text/calendar; charset=utf-8", **condition}
        return self._request("PUT", href, body, headers)

    # -- operations ------------------------------------------------------------------------
    def _push_chunk(self, chunk):
        return {op.key: self._push_one(op) for op in chunk}

    def _push_one(self, op):
        try:
            if op.action == CREATE:
                return self._create(op.body, op.client_id, resent=bool(op.meta.get("resent")))
            if op.action == UPDATE:
                return self._update(op.external_id, op.body, resent=bool(op.meta.get("resent")))
            if op.action == DELETE:
                return self._delete(op.external_id)
        except netguard.HostNotAllowed as exc:
            # The server (or its DNS) now points somewhere we may not go: the user must reconnect.
            return Outcome(Kind.AUTH_REVOKED, message=connect_message(exc))
        except NETWORK_ERRORS as exc:
            # The request may or may not have been applied: a retry is safe (same resource name,
            # conditional or whole-body PUTs, DELETE of a missing resource counts as done).
            return Outcome(Kind.TRANSIENT, message=f"Cannot reach the CalDAV server ({type(exc).__name__})")
        except http_limits.LimitExceeded as exc:
            return Outcome(Kind.TRANSIENT, message=f"The CalDAV server's answer was too large or too slow ({exc})")
        except requests.RequestException as exc:
            return Outcome(Kind.TRANSIENT, message=f"CalDAV request failed ({type(exc).__name__})")
        except (ValueError, UnicodeError):  # requests parsing a 3xx's unreadable Location (response.next)
            return Outcome(Kind.TRANSIENT, message="The CalDAV server sent an unreadable answer.")
        except ConnectError as exc:
            return Outcome(Kind.TRANSIENT, message=str(exc))
        return Outcome(Kind.REJECTED, message=f"unknown action {op.action}")

    def _create(self, body, client_id, resent=False):
        """PUT the event at its deterministic href. A first try sends ``If-None-Match: *``; a
        resent one (an earlier try may have been applied, its answer lost) overwrites
        unconditionally: the same href with the current body, so one PUT whatever happened."""
        if not self.calendar_id:
            # A CalDAV account has no main calendar of ours to fall back on (``main_calendar``).
            return Outcome(Kind.REJECTED, message="No CalDAV calendar to push into.")
        condition = {} if resent else {"If-None-Match": "*"}
        href = urljoin(self.calendar_id, quote(client_id, safe="@-_.") + ".ics")
        response = self._put(href, body, condition)
        if response.status_code == 404:
            return _calendar_missing(response)
        if response.status_code == 412:
            # A first try found the resource there (a lost "create sent" mark): overwrite it.
            return self._overwrite(href, body)
        return self._done(href, response)

    def _update(self, external_id, body, resent=False):
        """PUT on the stored ETag (412: overwrite the newer one, Odoo is the truth). A resent
        update may have been applied, which changed the ETag: it overwrites at once, one PUT."""
        href, etag = split_external_id(external_id)
        response = self._put(href, body, {"If-Match": etag} if etag and not resent else {})
        if response.status_code == 412:
            return self._overwrite(href, body)
        return self._done(href, response)

    def _delete(self, external_id):
        href, _etag = split_external_id(external_id)
        # Unconditional: whatever the user changed there, the class is gone in Odoo.
        response = self._request("DELETE", href)
        if 200 <= response.status_code < 300:
            return Outcome(Kind.DONE, status=response.status_code)
        return classify(response)  # 404/410: GONE, which the engine counts as done

    def _overwrite(self, href, body):
        """After a 412: read the resource's current ETag, then overwrite on it (Odoo is the truth)."""
        current = self._request("GET", href)
        if current.status_code in (404, 410):
            return self._done(href, self._put(href, body, {"If-None-Match": "*"}))
        if not 200 <= current.status_code < 300:
            return classify(current)
        etag = current.headers.get("ETag")
        return self._done(href, self._put(href, body, {"If-Match": etag} if etag else {}))

    def _done(self, href, response):
        if 200 <= response.status_code < 300:
            return Outcome(Kind.DONE, external_id=join_external_id(href, response.headers.get("ETag")), status=response.status_code)
        if response.status_code == 412:
            # Changed again between our GET and PUT: let the next round try.
            return Outcome(Kind.TRANSIENT, status=412, message=_message(response))
        if response.status_code == 409:
            return _calendar_missing(response)
        return classify(response)

    # -- the dedicated calendar -----------------------------------------------------------
    def create_calendar(self, name, guard, resent=False):
        """MKCALENDAR at a collection named after ``guard``: a resent create finds its first
        try's calendar there (``calendar_create_idempotent``) instead of making a second one."""
        try:
            home = self.tokens.calendar_home or discover(self.session, self.tokens.server_url, self.config.timeout)
            if not self.tokens.calendar_home:
                self._keep_tokens(replace(self.tokens, calendar_home=home))
            return Outcome(Kind.DONE, external_id=make_calendar(self.session, home, name, guard, self.config.timeout))
        except ConnectError as exc:
            message = str(exc)
            # A refused password or a server now out of bounds: the user must reconnect.
            kinds = {REFUSED: Kind.AUTH_REVOKED, NOT_ALLOWED: Kind.AUTH_REVOKED, HTTPS_ONLY: Kind.AUTH_REVOKED, CANNOT_CREATE: Kind.REJECTED}
            return Outcome(kinds.get(message, Kind.TRANSIENT), message=message)

    def get_calendar(self, calendar_id):
        return self._calendar_call(calendar_id, "PROPFIND", PROPFIND_RESOURCETYPE, {"Depth": "0"})

    def delete_calendar(self, calendar_id):
        return self._calendar_call(calendar_id, "DELETE")

    def _calendar_call(self, calendar_id, method, body=None, headers=None):
        """One request on our calendar's collection: DONE, GONE (404/410) or what failed."""
        try:
            response = self._request(method, calendar_id, body, headers)
        except netguard.HostNotAllowed as exc:
            return Outcome(Kind.AUTH_REVOKED, message=connect_message(exc))
        except (requests.RequestException, http_limits.LimitExceeded, ValueError) as exc:
            return Outcome(Kind.TRANSIENT, message=f"Cannot reach the CalDAV server ({type(exc).__name__})")
        if 200 <= response.status_code < 300:
            return Outcome(Kind.DONE, external_id=calendar_id, status=response.status_code)
        return classify(response)

    def _keep_tokens(self, tokens):
        self.tokens = tokens
        if self.on_tokens:
            self.on_tokens(tokens)


# -- discovery (also the credential check) -----------------------------------------------------
def _propfind(session, url, body, timeout, depth="0"):
    return guarded_http.request(
        session, "PROPFIND", url, data=body, timeout=timeout,
        headers={"Depth": depth, "Content-Type": "application/xml; charset=utf-8"},
    )


def _check(response):
    if response.status_code == 401:
        raise ConnectError(REFUSED)
    if response.status_code != 207:
        raise ConnectError(NOT_CALDAV)


def _follow(base, href):
    """The absolute URL of an ``href`` a server sent; https never leads to plain http."""
    url = urljoin(base, href)
    if urlsplit(base).scheme.lower() == "https" and urlsplit(url).scheme.lower() != "https":
        raise netguard.HostNotAllowed(netguard.SCHEME, url)
    return url


def _connect_errors(function):
    """Every failure of a connect-time call as a ConnectError whose message is safe to show."""
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except netguard.HostNotAllowed as exc:
            raise ConnectError(connect_message(exc)) from None
        except (requests.RequestException, http_limits.LimitExceeded, ValueError):
            raise ConnectError(NOT_CALDAV) from None
    return wrapper


@_connect_errors
def discover(session, server_url, timeout=DEFAULT_TIMEOUT):
    """The user's calendar-home-set URL: server (or /.well-known/caldav) → current-user-principal
    → calendar-home-set. Raises ConnectError with a message safe to show."""
    response = _propfind(session, server_url, PROPFIND_PRINCIPAL, timeout)
    if response.status_code in (404, 405):
        response = _propfind(session, _follow(server_url, "/.well-known/caldav"), PROPFIND_PRINCIPAL, timeout)
    _check(response)
    principals = _hrefs(response, f"{{{DAV}}}current-user-principal")
    if not principals:
        raise ConnectError(NOT_CALDAV)
    response = _propfind(session, _follow(response.url, principals[0]), PROPFIND_HOME, timeout)
    _check(response)
    homes = _hrefs(response, f"{{{CALDAV}}}calendar-home-set")
    if not homes:
        raise ConnectError(NOT_CALDAV)
    home = _follow(response.url, homes[0])
    # Checked now, not at the first push: the connect form must say the address is refused.
    getattr(session, "guard", netguard.Guard()).check(home)
    return home if home.endswith("/") else home + "/"


@_connect_errors
def make_calendar(session, home, name, guard, timeout=DEFAULT_TIMEOUT):
    """Our dedicated calendar at ``home``/impact-classes-<guard>/ (MKCALENDAR): its URL. A
    calendar already there is the one an earlier try with the same guard made."""
    url = urljoin(home, f"{COLLECTION_PREFIX}{quote(guard, safe='')}/")
    response = guarded_http.request(
        session, "MKCALENDAR", url, data=_mkcalendar_body(name), timeout=timeout,
        headers={"Content-Type": "application/xml; charset=utf-8"},
    )
    if response.status_code in (201, 200, 204):
        return url
    if response.status_code in (405, 409):
        # 405: something is already there; ours only if it is a calendar.
        check = _propfind(session, url, PROPFIND_RESOURCETYPE, timeout)
        if check.status_code == 207 and _is_calendar(check):
            return url
    if response.status_code == 401:
        raise ConnectError(REFUSED)
    raise ConnectError(CANNOT_CREATE)


def connect_calendar(tokens):
    """The calendar a connect made before calendars were created through ``create_calendar``
    (kept in the tokens): an account connected then keeps pushing into it."""
    return tokens.calendar_url


def check_credentials(config, server_url, username, password, session=None):
    """Connect: check the credentials at once (discovery) and return ``(TokenSet, account
    label)``; the first push makes the dedicated calendar (``create_calendar``). Raises ConnectError with a message safe to show."""
    server_url = (server_url or "").strip()
    if "<" in server_url:
        raise ConnectError("Replace <host> with your server's name.")
    if not (username and password):
        raise ConnectError("Enter the user name and the app-specific password.")
    session = session or new_session(config)
    session.auth = (username, password)
    home = discover(session, server_url, config.timeout)
    tokens = TokenSet(server_url=server_url, username=username, password=password, calendar_home=home)
    return tokens, username


PROVIDER = register(CaldavProvider(
    name="caldav",
    label="Apple iCloud / CalDAV",
    sequence=30,
    config_class=CaldavConfig,
    settings=(
        Setting(
            "allow_private_hosts", "CalDAV servers on private networks", kind="boolean",
            help="Lets users connect a CalDAV server on this machine or a private network (an "
            "on-premises Nextcloud), also over plain http. Risk: any member can then make the Odoo "
            "server send requests to internal services. Off: only public https servers.",
        ),
    ),
    client_class=CaldavClient,
    build_body=build_body,
    client_id=ics.event_uid,
    create_sends_current_body=True,
    dedicated_calendar=True,
    main_calendar=False,
    calendar_create_idempotent=True,
    connect_calendar=connect_calendar,
    connect=FORM,
    check=check_credentials,
    revocation=USER_DELETES_PASSWORD,
))
