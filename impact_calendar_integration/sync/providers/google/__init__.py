"""Google Calendar adapter: pushes our events into one user's primary calendar or into a
calendar it created (``calendar_id``; the ``calendar.app.created`` scope reaches only those).

Built on googleapiclient's static discovery document (shipped in the package: no network for
discovery) over an httplib2 connection authorised by google-auth, which refreshes the access
token by itself. Every call maps to a typed ``Outcome``; nothing per-operation raises.

One instance serves one account in one worker: httplib2 connections are not thread-safe.
"""

from . import quiet_imports  # noqa: F401  first: before google-api-core loads  # pylint: disable=unused-import
import functools
import http.client
import json
import logging
from datetime import datetime, timezone

import google.auth.exceptions
import google.oauth2.credentials
import google_auth_httplib2
import httplib2
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError

from ... import http_limits
from ...config import MAX_RESPONSE_BYTES, TOTAL_DEADLINE
from ...outcomes import AuthRevoked, ConnectError, Kind, Outcome, ProviderError
from ...tokens import TokenSet
from .. import OAUTH, REVOKED, Provider, Setting, register
from ..base import CREATE, DELETE, UPDATE, ProviderClient, parse_retry_after
from . import oauth as oauth_google
from .batch import PlainBatchHttpRequest
from .body import build_body
from .config import GOOGLE_DESTINATION_SCOPES, GOOGLE_SCOPES, GoogleConfig
from .ids import deterministic_event_id

try:  # httplib2 0.31+: what its bounded inflating raises
    from httplib2.decode import DecodeLimitError, DecodeRatioError

    DECODE_LIMIT_ERRORS = (DecodeLimitError, DecodeRatioError)
except ImportError:  # pragma: no cover  (older httplib2 inflates without limits)
    DECODE_LIMIT_ERRORS = ()

_logger = logging.getLogger(__name__)

SERVICE_PATH = "calendar/v3/"
BATCH_PATH = "batch/calendar/v3"
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"})
# The user unticked the calendar scope on Google's granular consent screen: only a new consent helps.
SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
# Network-level failures: the request may or may not have reached Google; retrying is safe
# because creates carry a deterministic id and updates/deletes are idempotent.
NETWORK_ERRORS = (
    OSError, httplib2.HttpLib2Error, http.client.HTTPException, google.auth.exceptions.TransportError, BatchError,
    http_limits.LimitExceeded,
)
MESSAGE_LIMIT = 500
# What googleapiclient raises while it reads a garbled answer: ValueError (non-JSON, broken
# UTF-8, a bad status line), RecursionError (deep nesting), AttributeError and TypeError (an
# error body of the wrong shape: HttpError() calls .strip() on whatever "message" holds).
PARSE_ERRORS = (ValueError, IndexError, RecursionError, AttributeError, TypeError)
MALFORMED_BATCH_MESSAGE = "Google: unreadable batch response."
MALFORMED_MESSAGE = "Google: unreadable response."
MISSING_ID_MESSAGE = "Google answered a create without the event's id."
BURNED_ID_MESSAGE = "The event id was used by an event that has since been deleted; a new id is needed."


class BoundedHttp(httplib2.Http):
    """httplib2 under ``http_limits``: each request (each hop of a redirect) has a total
    ``deadline`` (a watchdog shuts its socket down, whatever the per-read ``timeout``) and
    its body is read up to ``max_bytes``."""

    def __init__(self, timeout, deadline=TOTAL_DEADLINE, max_bytes=MAX_RESPONSE_BYTES):
        super().__init__(timeout=timeout)
        self.deadline = deadline
        self.max_bytes = max_bytes
        # httplib2 inflates a gzip answer after reading it: the cap holds for what it inflates
        # too (httplib2 0.31+ reads these limits; older releases ignore them).
        self.limit_kwargs = dict(getattr(self, "limit_kwargs", {}), hard_limit=max_bytes, safe_limit=max_bytes)

    def _conn_request(self, conn, request_uri, method, body, headers):
        with http_limits.Deadline(self.deadline) as deadline:
            try:
                return super()._conn_request(
                    _BoundedConnection(conn, deadline, self.max_bytes), request_uri, method, body, headers
                )
            except http_limits.LimitExceeded:
                conn.close()  # the rest of the body is still on the wire: never reuse it
                raise
            except DECODE_LIMIT_ERRORS:
                raise http_limits.ResponseTooLarge(f"more than {self.max_bytes} bytes once inflated") from None
            except (OSError, http.client.HTTPException):
                if deadline.expired:
                    conn.close()
                    raise http_limits.DeadlineExceeded(f"no answer within {deadline.seconds} s") from None
                raise


class _BoundedConnection:
    """An httplib2 connection whose socket is under the request's deadline and whose answer
    is read through ``http_limits.read_bounded`` (the rest is the connection's own)."""

    def __init__(self, conn, deadline, max_bytes):
        self._conn = conn
        self._deadline = deadline
        self._max_bytes = max_bytes

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def request(self, *args, **kwargs):
        if self._conn.sock is None:
            self._conn.connect()
        http_limits.watch(self._conn.sock)  # a new or kept-alive socket: under this deadline
        return self._conn.request(*args, **kwargs)

    def getresponse(self):
        response = self._conn.getresponse()
        streamed = _Streamed(response)

        def read(*_args):  # httplib2 reads the whole body with one read()
            return http_limits.read_bounded(streamed, self._max_bytes, self._deadline)

        response.read = read
        return response


class _Streamed:
    """An ``http.client`` answer in the shape ``read_bounded`` reads (a streamed requests
    response): ``headers``, ``iter_content`` and ``close``."""

    def __init__(self, response):
        self.headers = {"Content-Length": response.getheader("content-length") or ""}
        self._read = response.read  # the response's own, before httplib2's is replaced
        self.close = response.close

    def iter_content(self, size):
        while chunk := self._read(size):
            yield chunk


def batch_uri(api_endpoint):
    """``https://host/calendar/v3/`` → ``https://host/batch/calendar/v3``."""
    root = api_endpoint if api_endpoint.endswith("/") else api_endpoint + "/"
    if root.endswith(SERVICE_PATH):
        root = root[: -len(SERVICE_PATH)]
    return root + BATCH_PATH


def _expiry(expires_at):
    # google-auth compares naive UTC datetimes.
    if not expires_at:
        return None
    return datetime.fromtimestamp(float(expires_at), timezone.utc).replace(tzinfo=None)


def _epoch(expiry):
    return expiry.replace(tzinfo=timezone.utc).timestamp() if expiry else None


def _retry_after(headers):
    """Seconds from a Retry-After header, or None."""
    return parse_retry_after((headers or {}).get("retry-after"))


def _error_details(error):
    """(reason, message) from Google's JSON error body of an HttpError."""
    try:
        payload = json.loads(error.content.decode("utf-8") if isinstance(error.content, bytes) else error.content)
        body = payload["error"]
        message = body.get("message") or ""
        errors = body.get("errors") or [{}]
        return errors[0].get("reason") or body.get("status") or "", message
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", getattr(error.resp, "reason", "") or ""


def classify_http_error(error):
    """Outcome of a non-2xx answer (outside the create-409 case, handled by the client)."""
    status = error.resp.status
    reason, message = _error_details(error)
    retry_after = _retry_after(error.resp)
    text = f"Google: {message or reason or status}"[:MESSAGE_LIMIT]

    def outcome(kind):
        return Outcome(kind, status=status, retry_after=retry_after, message=text)

    if status in (404, 410):
        return outcome(Kind.GONE)
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return outcome(Kind.RATE_LIMITED)
    if status == 401 or (status == 403 and reason in SCOPE_REASONS):
        # A 401 that reaches us already survived google-auth's refresh-and-retry.
        return outcome(Kind.AUTH_REVOKED)
    if status >= 500 or status == 408:
        return outcome(Kind.TRANSIENT)
    return outcome(Kind.REJECTED)


def classify_exception(error):
    """Outcome of an exception raised by a call (or a whole batch)."""
    if isinstance(error, BatchError):
        # BatchError subclasses HttpError but means an unreadable batch answer (often a 200 from
        # a proxy): nothing is confirmed, so retry; creates are idempotent, the rest too.
        return Outcome(Kind.TRANSIENT, status=getattr(error.resp, "status", None), message=MALFORMED_BATCH_MESSAGE)
    if isinstance(error, HttpError):
        return classify_http_error(error)
    if isinstance(error, google.auth.exceptions.RefreshError):
        return _classify_refresh_error(error)
    if isinstance(error, http_limits.LimitExceeded):
        return Outcome(Kind.TRANSIENT, message=f"Google: answer refused ({error}).")
    if isinstance(error, NETWORK_ERRORS):
        return Outcome(Kind.TRANSIENT, message=f"Google unreachable: {type(error).__name__}")
    if isinstance(error, google.auth.exceptions.GoogleAuthError):
        _logger.warning("Google authorisation failed: %s", type(error).__name__)
        return Outcome(Kind.TRANSIENT, message=f"Google authorisation failed: {type(error).__name__}")
    raise error


def _classify_refresh_error(error):
    details = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], dict) else {}
    code = details.get("error") or str(error.args[0] if error.args else "").split(":", 1)[0]
    description = details.get("error_description") or ""
    if code == "invalid_grant":
        return Outcome(Kind.AUTH_REVOKED, status=400, message=f"Google refused the refresh token: {description or code}")
    # invalid_client & co. are configuration problems that a user reconnect would not fix;
    # keep the work pending and let the backoff retry once the admin fixed the app settings.
    _logger.warning("Google token refresh failed: %s", code or type(error).__name__)
    return Outcome(Kind.TRANSIENT, message=f"Google token refresh failed: {code or 'unknown error'}")


@functools.lru_cache(maxsize=8)
def _resources(api_endpoint):
    """The events and calendars resources of one endpoint, built once per process: googleapiclient
    makes every method, docstring included, from the discovery document, some 30 ms of CPU per
    build, which the worker used to pay for every account in every round. They hold nothing of an
    account: every request is sent with the client's own authorised connection (``http=`` of
    ``execute``, ``request.http`` in a batch); the placeholder connection is never used."""
    service = build(
        "calendar",
        "v3",
        http=httplib2.Http(),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": api_endpoint},
    )
    return service.events(), service.calendars()


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class GoogleCalendarClient(ProviderClient):
    batch_size = 50  # Google Calendar's limit of parts per batch request

    def __init__(self, config, tokens, on_tokens=None):
        self.config = config
        self.on_tokens = on_tokens
        self.credentials = google.oauth2.credentials.Credentials(
            token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            token_uri=config.token_endpoint,
            client_id=config.client_id,
            client_secret=config.client_secret,
            expiry=_expiry(tokens.expires_at),
        )
        self._published_token = tokens.access_token
        raw_http = BoundedHttp(config.timeout, deadline=config.deadline, max_bytes=config.max_response_bytes)
        self.http = google_auth_httplib2.AuthorizedHttp(self.credentials, http=raw_http)
        self._events, self._calendars = _resources(config.api_endpoint)
        self.batch_uri = batch_uri(config.api_endpoint)

    @property
    def target(self):
        """The calendar events go into: ours, or the user's primary one."""
        return self.calendar_id or self.config.calendar_id

    # -- the dedicated calendar ----------------------------------------------------------------------
    def create_calendar(self, name, guard, resent=False):
        # calendars.insert takes no client-supplied id and calendarList.list is not allowed with
        # calendar.app.created: a resent create cannot find an earlier try's calendar. The caller
        # knows (``calendar_create_idempotent`` is False) and tells the user of a possible orphan.
        outcome = self._execute(self._calendars.insert(body={"summary": name}))
        if outcome.kind is Kind.DONE and not outcome.external_id:
            return Outcome(Kind.TRANSIENT, status=outcome.status, message="Google answered a calendar create without its id.")
        return outcome

    def get_calendar(self, calendar_id):
        return self._execute(self._calendars.get(calendarId=calendar_id), external_id=calendar_id)

    def delete_calendar(self, calendar_id):
        return self._execute(self._calendars.delete(calendarId=calendar_id), external_id=calendar_id)

    # -- single calls (calendars only: events always go through a batch) ---------------------------
    def _execute(self, request, external_id=None):
        result, outcome = self._call(request)
        return outcome or _success_outcome(result, external_id)

    def _call(self, request):
        """(parsed result, None) on success, else (None, Outcome)."""
        try:
            return request.execute(http=self.http, num_retries=0), None  # retries belong to the engine's policy
        except (HttpError, google.auth.exceptions.GoogleAuthError, *NETWORK_ERRORS) as error:
            return None, self._classify(error)
        except PARSE_ERRORS:
            # A body googleapiclient cannot read (a proxy's page on a 2xx, a truncated answer,
            # brackets nested past the parser's depth, an error whose message is a list):
            # nothing is confirmed.
            return None, Outcome(Kind.TRANSIENT, message=MALFORMED_MESSAGE)
        finally:
            self._publish_tokens()

    # -- batch ---------------------------------------------------------------------------------------
    def _push_chunk(self, chunk):
        """{key: Outcome}; when the batch itself failed, every part shares one Outcome."""
        outcomes, requests, ops = {}, {}, {}
        for index, op in enumerate(chunk):
            try:
                requests[str(index)] = self._request_for(op)
                ops[str(index)] = op
            except ValueError as problem:
                outcomes[op.key] = Outcome(Kind.REJECTED, message=str(problem))
        answers, fatal = self._run_batch(requests)
        if fatal is not None:
            outcomes.update({op.key: fatal for op in ops.values()})
            return outcomes
        conflicts = []
        for request_id, op in ops.items():
            response, error = answers[request_id]
            if op.action == CREATE and error is not None and error.resp.status == 409:
                conflicts.append(op)
            else:
                outcomes[op.key] = _part_outcome(op, response, error)
        outcomes.update(self._recover_conflicts(conflicts))
        return outcomes

    def _recover_conflicts(self, creates):
        """409s of a batch, resolved with one batch of GETs (a retried batch of creates after a
        lost answer yields a 409 for every part: one request, not one per event)."""
        requests = {str(index): self._get(op.client_id) for index, op in enumerate(creates)}
        answers, fatal = self._run_batch(requests)
        outcomes = {}
        for index, op in enumerate(creates):
            if fatal is not None:
                outcomes[op.key] = fatal
                continue
            event, error = answers[str(index)]
            outcome = classify_http_error(error) if error is not None else None
            outcomes[op.key] = _conflict_outcome(op.client_id, event, outcome)
        return outcomes

    def _run_batch(self, requests):
        """Send {request_id: HttpRequest} as one batch: ({request_id: (result, HttpError)}, None),
        or ({}, Outcome) when the batch as a whole failed."""
        if not requests:
            return {}, None
        answers = {}

        def collect(request_id, response, error):
            answers[request_id] = (response, error)

        batch = PlainBatchHttpRequest(callback=collect, batch_uri=self.batch_uri)
        for request_id, request in requests.items():
            request.http = self.http  # a part's authorisation, and its refresh on a 401, come from it
            batch.add(request, request_id=request_id)
        try:
            batch.execute(http=self.http)
        except KeyError:
            # googleapiclient looks up every request id in the answer: one was missing.
            return {}, Outcome(Kind.TRANSIENT, message="Google: incomplete batch response.")
        except PARSE_ERRORS:
            # A truncated or garbled part (bad status line, non-JSON 2xx body, broken UTF-8, an
            # error whose message is not a string): googleapiclient raises while parsing;
            # nothing of this batch is confirmed.
            return {}, Outcome(Kind.TRANSIENT, message=MALFORMED_BATCH_MESSAGE)
        except (HttpError, google.auth.exceptions.GoogleAuthError, *NETWORK_ERRORS) as error:
            return {}, self._classify(error)
        finally:
            self._publish_tokens()
        return answers, None

    def _classify(self, error):
        if isinstance(error, google.auth.exceptions.RefreshError) and not self.credentials.refresh_token:
            return Outcome(Kind.AUTH_REVOKED, message="No refresh token stored: the account must be reconnected.")
        return classify_exception(error)

    # -- requests ------------------------------------------------------------------------------------
    def _request_for(self, op):
        if op.action == CREATE:
            if not op.client_id:
                raise ValueError("A Google create needs a client id (the deterministic event id).")
            return self._insert(op.body or {}, op.client_id)
        if op.action not in (UPDATE, DELETE):
            raise ValueError(f"Unknown action {op.action!r}.")
        if not op.external_id:
            raise ValueError(f"A Google {op.action} needs the event id.")
        if op.action == UPDATE:
            return self._patch(op.external_id, op.body or {})
        return self._delete(op.external_id)

    def _insert(self, body, client_id):
        return self._events.insert(
            calendarId=self.target, body=dict(_without_attendees(body), id=client_id), sendUpdates="none"
        )

    def _patch(self, external_id, body):
        return self._events.patch(
            calendarId=self.target, eventId=external_id, body=_patch_body(body), sendUpdates="none"
        )

    def _get(self, event_id):
        return self._events.get(calendarId=self.target, eventId=event_id)

    def _delete(self, external_id):
        return self._events.delete(calendarId=self.target, eventId=external_id, sendUpdates="none")

    # -- tokens --------------------------------------------------------------------------------------
    def _publish_tokens(self):
        """Hand a refreshed access token to the engine so the next run does not refresh again."""
        token = self.credentials.token
        if not token or token == self._published_token:
            return
        self._published_token = token
        if self.on_tokens:
            self.on_tokens(
                TokenSet(
                    access_token=token,
                    refresh_token=self.credentials.refresh_token,
                    expires_at=_epoch(self.credentials.expiry),
                )
            )


def _text_id(event):
    """The id of an event (or calendar) answer: a non-empty string, else None."""
    value = event.get("id") if isinstance(event, dict) else None
    return value if isinstance(value, str) and value and "\x00" not in value else None


def _success_outcome(result, external_id=None):
    event = result if isinstance(result, dict) else {}  # a delete answers 204 without a body
    if event.get("status") == "cancelled":
        # Google may accept a patch of a deleted event and answer with it, still cancelled.
        return Outcome(Kind.GONE, external_id=_text_id(event), status=200, message="The event was deleted in Google.")
    return Outcome(Kind.DONE, external_id=_text_id(event) or external_id, status=200)


def _part_outcome(op, response, error):
    if error is None and op.action == CREATE and not _text_id(response):
        # A create is DONE only with the event's id: without it the link would forget the event.
        return Outcome(Kind.TRANSIENT, status=200, message=MISSING_ID_MESSAGE)
    return _success_outcome(response, op.external_id) if error is None else classify_http_error(error)


def _conflict_outcome(client_id, event, outcome):
    """Outcome of a create that got 409, from the GET of its id (event, or the GET's Outcome)."""
    if outcome is None and not isinstance(event, dict):
        return Outcome(Kind.TRANSIENT, status=409, message=MALFORMED_MESSAGE)
    if outcome is None and event.get("status") != "cancelled":
        return Outcome(Kind.DONE, external_id=client_id, status=409, message="Already created by an earlier try.")
    if outcome is None or outcome.kind is Kind.GONE:
        # Google keeps deleted ids forever: the engine must bump the generation.
        return Outcome(Kind.GONE, status=409, message=BURNED_ID_MESSAGE)
    return outcome


def _without_attendees(body):
    # Google may e-mail attendees even with sendUpdates=none: students are never attendees.
    return {key: value for key, value in body.items() if key != "attendees"}


def _patch_body(body):
    """Patch merges nested objects: switching a class between all-day and timed must clear
    the other form of start/end explicitly (JSON null), or Google would see both."""
    body = _without_attendees(body)
    for name in ("start", "end"):
        when = body.get(name)
        if isinstance(when, dict):
            when = dict(when)
            if "date" in when:
                when.setdefault("dateTime", None)
                when.setdefault("timeZone", None)
            elif "dateTime" in when:
                when.setdefault("date", None)
            body[name] = when
    return body


# -- the registry entry ------------------------------------------------------------------------
def _start(config, redirect_uri, state, scopes=GOOGLE_SCOPES):
    verifier = oauth_google.new_code_verifier()
    return oauth_google.authorization_url(config, redirect_uri, state, verifier, scopes), {"code_verifier": verifier}


def _finish(config, pending, params, redirect_uri):
    try:
        return oauth_google.exchange_code(config, params.get("code"), redirect_uri, pending["code_verifier"])
    except (ProviderError, AuthRevoked) as exc:
        raise ConnectError(str(exc)) from None


def _revoke(config, tokens):
    return oauth_google.revoke(config, tokens.refresh_token or tokens.access_token)


PROVIDER = register(Provider(
    name="google",
    label="Google Calendar",
    sequence=10,
    config_class=GoogleConfig,
    settings=(
        Setting("client_id", "Google client ID"),
        Setting("client_secret", "Google client secret", secret=True),
        Setting("auth_endpoint", "Google authorization endpoint", endpoint=True, advanced=True),
        Setting("token_endpoint", "Google token endpoint", endpoint=True, advanced=True),
        Setting("revoke_endpoint", "Google revoke endpoint", endpoint=True, advanced=True),
        Setting("api_endpoint", "Google Calendar API root", endpoint=True, advanced=True),
    ),
    client_class=GoogleCalendarClient,
    build_body=build_body,
    client_id=deterministic_event_id,
    connect=OAUTH,
    redirect_uri_label="Google redirect URI",
    start=_start,
    finish=_finish,
    revoke=_revoke,
    revocation=REVOKED,
    scopes=GOOGLE_SCOPES,
    destination_scopes=GOOGLE_DESTINATION_SCOPES,
    dedicated_calendar=True,
    calendar_create_idempotent=False,
    native_sync=("_get_google_sync_status", "google_calendar_rtoken"),
))
