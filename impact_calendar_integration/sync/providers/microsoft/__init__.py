"""Microsoft Graph adapter: writes our events into one user's Outlook calendar.

Event calls: create, update, delete (through ``push``: one alone, more in a ``$batch``) and ``/me``, in the default
calendar or in a calendar we created (``calendar_id``). Events are never listed or read back;
calendars are listed only to find the one a create whose answer was lost made (by our guard).
"""

import logging
from dataclasses import dataclass
from urllib.parse import quote

import msal
import requests
from msal.exceptions import MsalError
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from ... import guarded_http, http_limits
from ...config import DEDICATED, MAIN, MAX_RESPONSE_BYTES, TOTAL_DEADLINE
from ...outcomes import AuthRevoked, ConnectError, Kind, Outcome, ProviderError
from ...tokens import TokenSet
from .. import OAUTH, USER_REMOVES_APP, Provider, Setting, register
from ..base import CREATE, DELETE, UPDATE, ProviderClient, parse_retry_after
from . import oauth as oauth_microsoft
from .body import build_body
from .config import MICROSOFT_SCOPES, MicrosoftConfig
from .ids import transaction_id
from .oauth import build_app

_logger = logging.getLogger(__name__)

#: Outlook runs at most 4 requests at once per mailbox and throttles the rest (429).
MAILBOX_CONCURRENCY = 4
#: Token endpoint errors after which only the user can help (sign in again).
REVOKED_ERRORS = ("invalid_grant", "interaction_required")
#: Outlook emails every attendee of an event; students must never be invited.
NEVER_SENT = ("attendees",)
MESSAGE_LIMIT = 500
#: How MSAL fails when the sign-in service is down or answers garbage (not a revocation):
#: network errors, unparsable answers (ValueError), HTTP errors (MsalServiceError in
#: recent MSAL, requests.HTTPError in older ones).
SIGN_IN_FAILURES = (requests.RequestException, ValueError, MsalError)


#: A single-value extended property (a named string property in our own GUID namespace) that
#: marks the calendar a create made: the transactionId that ``POST /me/calendars`` lacks.
GUARD_PROPERTY = "String {6f1b3f0e-2c4a-4b7e-9a51-7d0c3e8b2a64} Name impactCalendarGuard"


class BoundedAdapter(HTTPAdapter):
    """Graph requests under ``http_limits``: a total ``deadline`` per request (each hop of a
    redirect), whatever the per-read timeout, and bodies (a redirect's too) read up to
    ``max_bytes`` before requests sees them."""

    def __init__(self, deadline=TOTAL_DEADLINE, max_bytes=MAX_RESPONSE_BYTES):
        self.deadline = deadline
        self.max_bytes = max_bytes
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        result = super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(guarded_http.WATCHED_POOLS)
        return result

    def send(self, request, stream=False, **kwargs):  # pylint: disable=arguments-differ
        return guarded_http.send_bounded(
            lambda: super(BoundedAdapter, self).send(request, stream=True, **kwargs), self.max_bytes, self.deadline
        )


def bounded_session(config):
    """A requests session for Graph whose answers respect ``config``'s size and time limits."""
    session = requests.Session()
    adapter = BoundedAdapter(deadline=config.deadline, max_bytes=config.max_response_bytes)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True)
class GraphRequest:
    method: str
    path: str  # relative to the Graph root, e.g. "/me/events/ID" (also the $batch item url)
    body: dict = None


class GraphCalendarClient(ProviderClient):
    """Adapter to one user's Outlook calendar through Microsoft Graph."""

    batch_size = 20  # Graph's $batch limit

    def __init__(self, config, tokens, on_tokens=None, session=None):
        self.config = config
        self.tokens = tokens
        self.on_tokens = on_tokens
        self.session = session or bounded_session(config)
        self._cache = msal.SerializableTokenCache()
        if tokens.msal_cache:
            self._cache.deserialize(tokens.msal_cache)
        self._app = None  # built on first use: building it fetches the authority's metadata
        self._revoked = None  # why the account cannot be used any more, once we know

    # -- the dedicated calendar -------------------------------------------------------------
    def create_calendar(self, name, guard, resent=False):
        if resent:
            found = self._find_calendar(guard)
            if found is not None:
                return found
        body = {"name": name, "singleValueExtendedProperties": [{"id": GUARD_PROPERTY, "value": guard}]}
        outcome = self._single(CREATE, GraphRequest("POST", "/me/calendars", body))
        if outcome.status == 409:
            # A calendar of that name exists: the user's own, or ours from a lost answer.
            found = self._find_calendar(guard)
            if found is not None:
                return found
            body["name"] = f"{name} ({guard[:6]})"
            outcome = self._single(CREATE, GraphRequest("POST", "/me/calendars", body))
        return outcome

    def _find_calendar(self, guard):
        """The DONE outcome of the calendar carrying ``guard``, None when there is none, or the
        failure of the lookup (the caller then retries later)."""
        query = f"?$select=id,name&$expand=singleValueExtendedProperties($filter=id eq '{GUARD_PROPERTY}')"
        response, failure = self._call(GraphRequest("GET", "/me/calendars" + query))
        if failure is not None:
            return failure
        if response.status_code != 200:
            return classify(response.status_code, response.headers, _json(response), "lookup")
        calendars = _json(response).get("value")
        for calendar in calendars if isinstance(calendars, list) else ():
            if not isinstance(calendar, dict) or not _text_id(calendar.get("id")):
                continue
            properties = calendar.get("singleValueExtendedProperties")
            if any(
                isinstance(p, dict) and str(p.get("id", "")).lower() == GUARD_PROPERTY.lower() and p.get("value") == guard
                for p in (properties if isinstance(properties, list) else ())
            ):
                return Outcome(Kind.DONE, external_id=calendar["id"], status=200)
        return None

    def get_calendar(self, calendar_id):
        return self._single(UPDATE, GraphRequest("GET", _calendar_path(calendar_id) + "?$select=id"))

    def delete_calendar(self, calendar_id):
        return self._single(DELETE, GraphRequest("DELETE", _calendar_path(calendar_id)))

    # -- single requests (a push of one operation, the calendars) -------------------------
    def _single(self, action, request):
        response, failure = self._call(request)
        if failure is not None:
            return failure
        return classify(response.status_code, response.headers, _json(response), action)

    # -- batches ----------------------------------------------------------------------
    def _push_chunk(self, operations, refreshed=False):
        outcomes, planned = {}, []
        for op in operations:
            try:
                planned.append((op, request_for(op, self.calendar_id)))
            except ValueError as exc:
                outcomes[op.key] = Outcome(Kind.REJECTED, message=str(exc))
        if len(planned) == 1:
            op, request = planned[0]
            outcomes[op.key] = self._single(op.action, request)
        elif planned:
            outcomes.update(self._send_batch(planned, refreshed))
        return outcomes

    def _send_batch(self, planned, refreshed):
        items = [_batch_item(index, request) for index, (_, request) in enumerate(planned)]
        response, failure = self._call(GraphRequest("POST", "/$batch", {"requests": items}))
        if failure is None and response.status_code != 200:
            # The $batch request itself failed: every item shares its fate.
            failure = classify(response.status_code, response.headers, _json(response), "batch")
        if failure is not None:
            return {op.key: failure for op, _ in planned}
        answers = _batch_answers(_json(response))
        outcomes, unauthorized = {}, []
        for index, (op, _) in enumerate(planned):
            answer = answers.get(str(index + 1))
            if answer is None:
                outcomes[op.key] = Outcome(Kind.TRANSIENT, message="Graph returned no answer for this request")
            elif not isinstance(answer.get("status"), int):
                outcomes[op.key] = Outcome(Kind.TRANSIENT, message="Graph returned an unreadable answer for this request")
            elif answer.get("status") == 401 and not refreshed:
                unauthorized.append(op)
            else:
                headers = answer.get("headers")
                outcomes[op.key] = classify(
                    answer.get("status") or 0, CaseInsensitiveDict(headers if isinstance(headers, dict) else {}),
                    answer.get("body") if isinstance(answer.get("body"), dict) else {}, op.action)
        if unauthorized:
            outcomes.update(self._retry_unauthorized(unauthorized))
        return outcomes

    def _retry_unauthorized(self, operations):
        """Items refused with 401: refresh the token once and send them again."""
        try:
            self._access_token(force_refresh=True)
        except AuthRevoked as exc:
            return {op.key: Outcome(Kind.AUTH_REVOKED, message=str(exc)) for op in operations}
        except ProviderError as exc:
            return {op.key: exc.outcome for op in operations}
        return self._push_chunk(operations, refreshed=True)

    # -- HTTP ----------------------------------------------------------------------------
    def _call(self, request):
        """Send one Graph request with a valid token: ``(response, None)`` or ``(None, Outcome)``."""
        try:
            return self._send_authorized(request), None
        except AuthRevoked as exc:
            return None, Outcome(Kind.AUTH_REVOKED, message=str(exc))
        except ProviderError as exc:
            return None, exc.outcome
        except (requests.Timeout, http_limits.DeadlineExceeded):
            return None, Outcome(Kind.TRANSIENT, message="Microsoft Graph did not answer in time")
        except http_limits.LimitExceeded as exc:
            return None, Outcome(Kind.TRANSIENT, message=f"Microsoft Graph's answer was refused: {exc}")
        except requests.RequestException as exc:
            return None, Outcome(Kind.TRANSIENT, message=f"Cannot reach Microsoft Graph ({type(exc).__name__})")

    def _send_authorized(self, request):
        response = self._send(request, self._access_token())
        if response.status_code == 401:
            # Our cached token may be revoked or expired early at the server: one fresh try.
            response = self._send(request, self._access_token(force_refresh=True))
            if response.status_code == 401:
                raise AuthRevoked(_graph_message(_json(response)) or "Graph refused a freshly issued token")
        return response

    def _send(self, request, access_token):
        try:
            return self.session.request(
                request.method,
                self.config.graph_endpoint.rstrip("/") + request.path,
                json=request.body,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                timeout=self.config.timeout,
            )
        except (ValueError, UnicodeError) as exc:
            if isinstance(exc, requests.RequestException):
                raise
            # requests reads a 3xx's Location even when it follows no redirect (response.next):
            # one it cannot parse ("http://[::1", bytes that are not UTF-8) raises a plain error.
            raise requests.exceptions.InvalidHeader(f"unreadable answer ({type(exc).__name__})") from None

    # -- tokens --------------------------------------------------------------------------
    def _access_token(self, force_refresh=False):
        """A valid access token from MSAL's cache, refreshed (and rotated) when needed."""
        if self._revoked:
            raise AuthRevoked(self._revoked)
        app = self._msal_app()
        account = self._account(app)
        if account is None:
            self._revoke("no signed-in account in the token cache")
        try:
            result = app.acquire_token_silent_with_error(
                list(MICROSOFT_SCOPES), account, force_refresh=force_refresh
            )
        except SIGN_IN_FAILURES as exc:
            raise ProviderError(Outcome(Kind.TRANSIENT, message=f"Token refresh failed ({type(exc).__name__})")) from None
        finally:
            self._publish_tokens()
        if result and "access_token" in result:
            return result["access_token"]
        if not result or result.get("error") in REVOKED_ERRORS:
            self._revoke(_token_error(result) if result else "no refresh token in the token cache")
        raise ProviderError(Outcome(Kind.TRANSIENT, message=_token_error(result)))

    def _revoke(self, reason):
        self._revoked = reason
        _logger.info("Microsoft account %s needs to sign in again: %s", self.tokens.account_id, reason)
        raise AuthRevoked(reason)

    def _msal_app(self):
        if self._app is None:
            try:
                self._app = build_app(self.config, self._cache)
            except SIGN_IN_FAILURES as exc:
                # MSAL reads the authority's OpenID configuration when the app is built.
                raise ProviderError(Outcome(Kind.TRANSIENT, message=f"Microsoft sign-in service unavailable ({type(exc).__name__})")) from None
        return self._app

    def _account(self, app):
        accounts = app.get_accounts()
        if self.tokens.account_id:
            accounts = [a for a in accounts if a.get("home_account_id") == self.tokens.account_id]
        return accounts[0] if accounts else None

    def _publish_tokens(self):
        """Hand every new cache state to the caller: Microsoft rotates the refresh token."""
        if not self._cache.has_state_changed:
            return
        self.tokens = TokenSet(msal_cache=self._cache.serialize(), account_id=self.tokens.account_id)
        if self.on_tokens is not None:
            self.on_tokens(self.tokens)


# -- requests of each operation ---------------------------------------------------------
def request_for(op, calendar_id=None):
    if op.action == CREATE:
        return _create_request(op.body, op.client_id, calendar_id)
    if op.action == UPDATE:
        return _update_request(op.external_id, op.body, calendar_id)
    if op.action == DELETE:
        return _delete_request(op.external_id, calendar_id)
    raise ValueError(f"Unknown operation {op.action!r}")


def _create_request(body, client_id, calendar_id=None):
    body = _clean(body)
    if client_id:
        body["transactionId"] = client_id  # Graph returns the same event on a retried create
    root = _calendar_path(calendar_id) if calendar_id else "/me/calendar"
    return GraphRequest("POST", root + "/events", body)


def _update_request(external_id, body, calendar_id=None):
    return GraphRequest("PATCH", _event_path(external_id, calendar_id), _clean(body))


def _delete_request(external_id, calendar_id=None):
    return GraphRequest("DELETE", _event_path(external_id, calendar_id))


def _calendar_path(calendar_id):
    return "/me/calendars/" + quote(calendar_id, safe="")


def _event_path(external_id, calendar_id=None):
    if not external_id:
        raise ValueError("An update or delete needs the event's id")
    # Under the calendar's path in dedicated mode: a deleted calendar answers 404 there.
    root = _calendar_path(calendar_id) if calendar_id else "/me"
    return root + "/events/" + quote(external_id, safe="")  # Graph ids may hold "=", "/" or "+"


def _clean(body):
    return {key: value for key, value in (body or {}).items() if key not in NEVER_SENT}


def _batch_item(index, request):
    """A $batch item; items are chained so that at most MAILBOX_CONCURRENCY run at once.

    Item n depends on item n-4: four chains run side by side. A failed item makes the rest
    of its chain fail with 424 (retried later as transient).
    """
    item = {"id": str(index + 1), "method": request.method, "url": request.path}
    if request.body is not None:
        item["body"] = request.body
        item["headers"] = {"Content-Type": "application/json"}
    if index >= MAILBOX_CONCURRENCY:
        item["dependsOn"] = [str(index + 1 - MAILBOX_CONCURRENCY)]
    return item


# -- classification -----------------------------------------------------------------------
def classify(status, headers, body, action):
    """The Outcome of one Graph answer (a response or a $batch item)."""
    message = _graph_message(body)
    if 200 <= status < 300:
        external_id = _text_id(body.get("id")) if isinstance(body, dict) else None
        if action == CREATE and not external_id:
            # Only an answer naming the event confirms a create (a proxy's page or a truncated body
            # does not); the retry carries the same transactionId, so it cannot duplicate.
            return Outcome(Kind.TRANSIENT, status=status, message="Graph answered a create without the event's id")
        return Outcome(Kind.DONE, external_id=None if action == DELETE else external_id, status=status)
    if status in (404, 410) and action in (UPDATE, DELETE):
        return Outcome(Kind.GONE, status=status, message=message)
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status == 429 or (status == 503 and retry_after is not None):
        return Outcome(Kind.RATE_LIMITED, retry_after=retry_after, status=status, message=message)
    if status in (408, 409, 424) or status >= 500:
        return Outcome(Kind.TRANSIENT, status=status, message=message)
    if status == 401:
        return Outcome(Kind.AUTH_REVOKED, status=status, message=message)
    return Outcome(Kind.REJECTED, status=status, message=message)


def _text_id(value):
    """An id as the provider must send it (a non-empty string), else None."""
    return value if isinstance(value, str) and value and "\x00" not in value else None


def _batch_answers(data):
    """{item id: answer} of a $batch response body; whatever is not a proper answer is left out
    (its request then counts as unanswered and is retried)."""
    answers = data.get("responses")
    if not isinstance(answers, list):
        return {}
    return {str(answer.get("id")): answer for answer in answers if isinstance(answer, dict) and answer.get("id") is not None}


def _graph_message(body):
    error = (body or {}).get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    text = ": ".join(part for part in (error.get("code"), error.get("message")) if isinstance(part, str) and part)
    return text[:MESSAGE_LIMIT]


def _token_error(result):
    description = str(result.get("error_description") or "").strip().splitlines()
    return f"{result.get('error')}: {description[0]}" if description else str(result.get("error"))


def _json(response):
    try:
        data = response.json()
    except (ValueError, RecursionError):  # RecursionError: a body of deeply nested brackets
        return {}
    return data if isinstance(data, dict) else {}


# -- the registry entry ------------------------------------------------------------------------
def _start(config, redirect_uri, state, scopes=MICROSOFT_SCOPES):
    try:
        flow = oauth_microsoft.start_flow(config, redirect_uri, state)  # one consent for both destinations
    except oauth_microsoft.MicrosoftAuthError as exc:
        raise ConnectError(str(exc)) from None
    return flow["auth_uri"], {"flow": flow}


def _finish(config, pending, params, redirect_uri):
    try:
        return oauth_microsoft.finish_flow(config, pending["flow"], params)
    except oauth_microsoft.MicrosoftAuthError as exc:
        raise ConnectError(str(exc)) from None


PROVIDER = register(Provider(
    name="microsoft",
    label="Outlook / Office 365",
    sequence=20,
    config_class=MicrosoftConfig,
    settings=(
        Setting("client_id", "Microsoft application (client) ID"),
        Setting("client_secret", "Microsoft client secret", secret=True),
        Setting("tenant", "Microsoft tenant", placeholder="common"),
        Setting("authority_host", "Microsoft authority host", endpoint=True, advanced=True),
        Setting("graph_endpoint", "Microsoft Graph root", endpoint=True, advanced=True),
    ),
    client_class=GraphCalendarClient,
    build_body=build_body,
    client_id=transaction_id,
    connect=OAUTH,
    redirect_uri_label="Microsoft redirect URI",
    start=_start,
    finish=_finish,
    # Microsoft offers no revocation of one delegated refresh token: erasing it is all.
    revoke=None,
    revocation=USER_REMOVES_APP,
    consent_pages=(
        "https://myapps.microsoft.com (work or school account)",
        "https://account.live.com/consent/Manage (personal account)",
    ),
    scopes=MICROSOFT_SCOPES,
    # Calendars.ReadWrite already covers POST /me/calendars: the same consent for both.
    destination_scopes={DEDICATED: MICROSOFT_SCOPES, MAIN: MICROSOFT_SCOPES},
    dedicated_calendar=True,
    calendar_create_idempotent=True,
    native_sync=("_get_microsoft_sync_status", "microsoft_calendar_token"),
))
