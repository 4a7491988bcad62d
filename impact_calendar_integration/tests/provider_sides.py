# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The provider side of the Odoo sync tests: one object per provider that owns its server
(emulator or Radicale), connects an account, reads the external calendar back, and knows the
paths and bodies faults aim at. ``SyncCase`` picks one from ``SIDES`` by ``provider``; no test
names a provider to decide what to do.

Capabilities the shared rows depend on are declared, as ``payment.provider.support_*`` are:
``batch_size`` (changes that travel in one request; 1: no batches), ``native_sync`` (Odoo has a sync of its own for this provider), ``stable_ids``
(an event made again at the provider gets the id it had), ``revokes_tokens`` (a disconnect
revokes the tokens at the provider; Microsoft's identity platform has no such endpoint),
``write_answers_checked`` (a write's 2xx answer carries something the client checks),
``client_resends_dropped`` (the client library sends a request again when the connection drops).
"""

import json
import math
import re
import time
from datetime import date, datetime, timezone
from urllib.parse import parse_qsl, quote, urlsplit

import icalendar
import requests

from ..sync import payload, providers
from ..sync.providers.caldav import CaldavClient, split_external_id
from ..sync.providers.google import GoogleCalendarClient
from ..sync.providers.microsoft import GraphCalendarClient
from ..sync.providers.microsoft import body as graph_body
from ..sync.providers.microsoft import oauth as oauth_microsoft
from ..sync.tokens import TokenSet
from .common import use_emulator
from .emulators import google, microsoft, tls
from .emulators.common import Response
from .emulators.radicale_server import RadicaleServer
from .pushing import push_delete

CALDAV_PASSWORD = "app-specific-pass"


def utc_iso(value):
    """An ISO date-time with an offset, as a naive UTC ISO string."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()


class ProviderSide:
    """What every side answers; the subclasses fill it in."""

    name = None
    native_sync = True
    stable_ids = False
    revokes_tokens = False  # a disconnect revokes the tokens at the provider
    write_answers_checked = True  # a write's 2xx answer carries the event, which the client reads
    client_resends_dropped = False  # the HTTP library sends a request again when its connection drops
    batch_size = 1
    mid_batch_total = 0  # classes pushed when the consent dies mid-batch
    mid_batch_outcome = ()  # then (events landed, links synced, links paused)

    def __init__(self):
        self.server = None

    # -- server --------------------------------------------------------------------------
    def start(self, case_class):
        """Start the server for ``case_class`` and point the settings at it; undone after the class."""
        raise NotImplementedError

    def reset(self):
        """No fault, no latency, no throttle left from the last test."""
        self.server.clear_faults()
        self.server.latency = 0.0
        return self.server

    def let_time_pass(self):
        """The provider's own clock moves on (its quota window, say)."""

    # -- accounts ------------------------------------------------------------------------
    def connect(self, env, user, email, destination):
        raise NotImplementedError

    def revoke(self, email):
        """The user withdraws our access at the provider."""
        self.server.revoke_user(email)
        self.server.expire_access_tokens(email)

    def consent_dies(self, email):
        """The access token ends and the next refresh is refused (invalid_grant)."""
        self.server.expire_access_tokens(email)
        self.server.revoke_next_refresh()

    def revoke_mid_batch(self, email):
        """The consent dies after ``mid_batch_total - <the last requests>`` parts were served."""
        raise NotImplementedError

    def secrets(self):
        """Every secret the server handed out or holds for us."""
        return self.server.issued_secrets() | {self.server.client_secret}

    # -- the request log -----------------------------------------------------------------
    def clear_log(self):
        with self.server.lock:
            self.server.log.clear()

    def api_calls(self, method=None):
        """Calendar API calls (the parts of a batch one by one), not OAuth."""
        raise NotImplementedError

    def create_requests(self):
        return self.api_calls("POST")

    def push_requests(self):
        """HTTP requests that carried changes."""
        return len(self.server.requests(self.batch_path, "POST"))

    def requests_for(self, changes):
        """``push_requests`` after ``changes`` changes pushed in one run."""
        return math.ceil(changes / self.batch_size)

    def event_reads(self):
        """Requests that read events back (there must be none)."""
        return [r.path for r in self.server.requests(r"/events") if r.method == "GET" and re.search(r"/events/?(\?|$)", r.path)]

    def revocations(self):
        """Token revocations sent to the provider."""
        return 0

    # -- the external calendar -----------------------------------------------------------
    def external_events(self, email):
        """``{id: event}`` of the live events in ``email``'s calendar."""
        raise NotImplementedError

    def delete_event(self, account, external):
        """The user deletes ``external`` in their own calendar."""
        return push_delete(account._client(), external["id"]).ok

    def title(self, event):
        raise NotImplementedError

    def text(self, event):
        raise NotImplementedError

    def location(self, event):
        raise NotImplementedError

    def times(self, event):
        """("date", first day, day after the last) or ("utc", start, end) as ISO strings."""
        raise NotImplementedError

    def event_ref(self, event):
        """The Odoo event id the event carries (0 if none)."""
        raise NotImplementedError

    def attendees(self, event):
        return event.get("attendees") or []

    # -- what faults aim at --------------------------------------------------------------
    batch_path = None  # a request carrying several changes
    push_paths = None  # any request carrying changes (one change may travel alone)
    create_path = None  # a create (also inside a batch)
    create_method = "POST"
    update_method = "PATCH"
    events_path = None  # any calendar API call

    def item_path(self, external_id):
        raise NotImplementedError

    @staticmethod
    def without_id(answer):
        """``answer`` to a create, without the event's id."""
        data = json.loads(answer.raw)
        data.pop("id", None)
        return Response(answer.status, body=data)

    def error_body(self, code, message=None):
        raise NotImplementedError

    def throttle_body(self):
        raise NotImplementedError

    def throttle_next(self):
        """The next push is answered 429 with Retry-After: 30."""
        self.server.inject(self.push_paths, status=429, times=1, headers={"Retry-After": "30"}, body=self.throttle_body())

    def throttle_quota(self, per_minute):
        """The provider's own quota: more than ``per_minute`` calls a minute are throttled."""
        raise NotImplementedError


class GoogleSide(ProviderSide):
    name = "google"
    revokes_tokens = True
    client_resends_dropped = True  # httplib2 retries once on a dropped connection
    batch_size = 50
    mid_batch_total = 50  # one batch; the consent dies after 45 of its parts
    mid_batch_outcome = (45, 0, 50)  # the batch's answer is a refused refresh: all of it waits for the reconnect
    client_class = GoogleCalendarClient
    batch_path = r"^/batch/calendar/v3$"
    push_paths = batch_path  # one change goes out as a batch too
    create_path = r"^/calendar/v3/calendars/primary/events$"
    events_path = r"/batch/calendar/v3|/calendar/v3/"

    def start(self, case_class):
        self.server = google.GoogleEmulator().start()
        case_class.addClassCleanup(self.server.stop)
        use_emulator(case_class.env, self.name, self.server)
        return self.server

    def reset(self):
        server = super().reset()
        server.requests_per_minute = None
        server.rate_limit_retry_after = None
        server.revoke_next = False
        return server

    def let_time_pass(self):
        self.server.reset_quota()

    def connect(self, env, user, email, destination):
        # The scopes the start route asks for, plus what the user granted before
        # (include_granted_scopes=true, as Google does).
        emulator = self.server
        scopes = providers.get("google").scopes_for(destination)
        with emulator._state_lock:  # pylint: disable=protected-access
            earlier = {s for g in emulator.grants if g.email == email and not g.revoked for s in g.scopes}
        access, refresh = emulator.issue_tokens(email, scopes=tuple(scopes) + tuple(sorted(earlier - set(scopes))))
        tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3000)
        return env["impact.calendar.account"].sudo()._connect(user, self.name, tokens, email, destination)

    def revoke_mid_batch(self, email):
        return self.server.inject(self.create_path, method="POST", skip=45, before=lambda: self.consent_dies(email))

    def clear_log(self):
        with self.server.lock:
            self.server.log.clear()
            self.server.part_log.clear()

    def api_calls(self, method=None):
        parts = [r for r in self.server.part_log if method is None or r.method == method]
        return len(parts) + len(self.server.requests(r"^/calendar/v3/", method))

    def event_reads(self):
        requests_ = list(self.server.requests(r"/events")) + list(self.server.part_log)
        return [r.path for r in requests_ if r.method == "GET" and re.search(r"/events/?(\?|$)", r.path)]

    def revocations(self):
        return len(self.server.requests(r"^/revoke$", "POST"))

    def external_events(self, email):
        return {k: v for k, v in self.server.events(email).items() if v.get("status") != "cancelled"}

    def title(self, event):
        return event.get("summary")

    def text(self, event):
        return event.get("description", "")

    def location(self, event):
        return event.get("location")

    def times(self, event):
        if (event.get("start") or {}).get("date"):
            return ("date", event["start"]["date"], event["end"]["date"])
        return ("utc", utc_iso(event["start"]["dateTime"]), utc_iso(event["end"]["dateTime"]))

    def event_ref(self, event):
        marker = ((event.get("extendedProperties") or {}).get("private") or {}).get(payload.MARKER_KEY) or ":0"
        return int(marker.rsplit(":", 1)[-1])

    def item_path(self, external_id):
        return r"^/calendar/v3/calendars/primary/events/" + re.escape(external_id) + "$"

    def error_body(self, code, message=None):
        reasons = {400: "invalid", 404: "notFound", 410: "deleted", 500: "backendError", 503: "backendError"}
        text = message or {404: "Not Found", 410: "Resource has been deleted"}.get(code, "Backend Error")
        return {"error": {"code": code, "message": text, "errors": [{"reason": reasons.get(code, "backendError"), "message": text}]}}

    def throttle_body(self):
        return {"error": {"code": 429, "message": "Rate Limit Exceeded", "errors": [
            {"reason": "rateLimitExceeded", "domain": "usageLimits", "message": "Rate Limit Exceeded"}]}}

    def throttle_quota(self, per_minute):
        self.server.requests_per_minute = per_minute
        self.server.rate_limit_status = 429
        self.server.rate_limit_retry_after = None


class MicrosoftSide(ProviderSide):
    name = "microsoft"
    batch_size = 20
    mid_batch_total = 25  # a $batch of 20, then the consent dies before the next 5
    mid_batch_outcome = (20, 20, 5)
    client_class = GraphCalendarClient
    batch_path = r"^/v1\.0/\$batch$"
    push_paths = r"^/v1\.0/\$batch$|^/v1\.0/me/calendar/events$"  # one change goes out alone
    create_path = r"^/v1\.0/me/calendar/events$"  # also matches the items of a $batch
    events_path = r"/\$batch|/me/"

    def start(self, case_class):
        self.server = microsoft.MicrosoftEmulator().start()
        trust = tls.trusted()
        trust.__enter__()
        case_class.addClassCleanup(trust.__exit__, None, None, None)
        case_class.addClassCleanup(self.server.stop)
        use_emulator(case_class.env, self.name, self.server)
        return self.server

    def reset(self):
        server = super().reset()
        server.rate_limit = (10000, 600)
        with server.lock:
            server._revoke_next_refresh = 0  # pylint: disable=protected-access
        return server

    def let_time_pass(self):
        with self.server.lock:
            for mailbox in self.server.mailboxes.values():
                mailbox.recent.clear()

    def connect(self, env, user, email, destination):
        """Tokens as the real sign-in makes them: the authorize redirect, then the code redeemed."""
        emulator = self.server
        if email.lower() not in emulator.users:  # a reconnect signs the same mailbox in
            emulator.seed_user(email)
        emulator.consent_as = email
        config = env["impact.calendar.account"]._provider_config(self.name)
        flow = oauth_microsoft.start_flow(config, "http://localhost/cb", "state-x")
        response = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
        answer = dict(parse_qsl(urlsplit(response.headers["Location"]).query))
        tokens, _email = oauth_microsoft.finish_flow(config, flow, answer)
        return env["impact.calendar.account"].sudo()._connect(user, self.name, tokens, email, destination)

    def revoke_mid_batch(self, email):
        return self.server.inject(self.batch_path, method="POST", skip=1, before=lambda: self.consent_dies(email))

    def _batch_items(self, method):
        count = 0
        for request in self.server.requests(r"/\$batch$", "POST"):
            for item in json.loads(request.body)["requests"]:
                if method is None or item["method"] == method:
                    count += 1
        return count

    def api_calls(self, method=None):
        return len(self.server.requests(r"/me/", method)) + self._batch_items(method)

    def create_requests(self):
        return self._batch_items("POST") + len(self.server.requests(r"/me/calendar/events$", "POST"))

    def push_requests(self):
        # One change travels as a plain request, several as a $batch.
        return len(self.server.requests(self.push_paths, "POST"))

    def external_events(self, email):
        return {event["id"]: event for event in self.server.events(email)}

    def title(self, event):
        return event.get("subject")

    def text(self, event):
        return event.get("body", {}).get("content", "")

    def location(self, event):
        return (event.get("location") or {}).get("displayName")

    def times(self, event):
        if event.get("isAllDay"):
            return ("date", event["start"]["dateTime"][:10], event["end"]["dateTime"][:10])
        zones = (event["start"]["timeZone"], event["end"]["timeZone"])
        kind = "utc" if zones == ("UTC", "UTC") else f"zones {zones}"  # compares unequal to any expected "utc"
        return (kind, event["start"]["dateTime"][:19], event["end"]["dateTime"][:19])

    def event_ref(self, event):
        for prop in event.get("singleValueExtendedProperties") or ():
            if prop.get("id") == graph_body.GRAPH_MARKER_ID:
                return int((prop.get("value") or ":0").rsplit(":", 1)[-1])
        return 0

    def item_path(self, external_id):
        return r"^/v1\.0/me/events/" + re.escape(quote(external_id, safe="")) + "$"

    def error_body(self, code, message=None):
        codes = {400: "ErrorInvalidRequest", 404: "ErrorItemNotFound", 410: "ErrorItemNotFound",
                 500: "InternalServerError", 503: "ServiceUnavailable"}
        return {"error": {"code": codes.get(code, "InternalServerError"), "message": message or "Something went wrong"}}

    def throttle_body(self):
        return {"error": {"code": "ApplicationThrottled", "message": "Application is over its MailboxConcurrency limit."}}

    def throttle_quota(self, per_minute):
        self.server.rate_limit = (per_minute, 60)


class CaldavSide(ProviderSide):
    """A real CalDAV server (Radicale) behind the loopback fault layer; one Radicale user per
    instructor, connected through the Preferences wizard. Every change is one request (a PUT
    or a DELETE of one ``.ics``), and the account has no OAuth: a changed password is what a
    revoked consent is elsewhere."""

    name = "caldav"
    native_sync = False
    stable_ids = True  # the resource name derives from the UID: made again, same href
    write_answers_checked = False  # a PUT's 2xx has no body: a proxy's page in its place reads as done
    batch_size = 1
    batch_path = r"\.ics$"
    push_paths = r"\.ics$"
    create_path = r"\.ics$"
    create_method = "PUT"
    update_method = "PUT"
    events_path = r"\.ics$"
    mid_batch_total = 10  # one PUT each; the password changes after 6 of them
    mid_batch_outcome = (6, 6, 4)
    client_class = CaldavClient

    def __init__(self):
        super().__init__()
        self.logins = {}  # email → Radicale user

    def start(self, case_class):
        self.server = RadicaleServer().start()
        case_class.addClassCleanup(self.server.stop)
        params = case_class.env["ir.config_parameter"].sudo()
        # Radicale listens on loopback: allowed as an administrator allows an on-premises server.
        params.set_param("impact_calendar.caldav_allow_private_hosts", "True")
        return self.server

    def connect(self, env, user, email, destination):
        """The Preferences wizard, as the user fills it in (CalDAV has only the dedicated calendar)."""
        login = self.logins.setdefault(email, user.login)
        if login not in self.server.users:
            self.server.add_user(login, CALDAV_PASSWORD)
        wizard = env["impact.calendar.caldav.wizard"].with_user(user).create({
            "server_preset": "other", "server_url": self.server.base_url + "/",
            "username": login, "password": self.server.users[login],
        })
        wizard.action_connect()
        return env["impact.calendar.account"].sudo().search([("user_id", "=", user.id), ("provider", "=", self.name)])

    def revoke(self, email):
        """The user changes their app password: ours no longer opens the calendar."""
        login = self.logins[email]
        self.server.add_user(login, self.server.users[login] + "-changed")

    consent_dies = revoke

    def secrets(self):
        return set(self.server.users.values())

    def api_calls(self, method=None):
        return len(self.server.requests(None, method))

    def create_requests(self):
        return len(self.server.requests(r"\.ics$", "PUT"))

    def push_requests(self):
        return len([r for r in self.server.requests(r"\.ics$") if r.method in ("PUT", "DELETE")])

    def event_reads(self):
        return [r.path for r in self.server.log if r.method in ("GET", "REPORT")]

    def external_events(self, email):
        """Every VEVENT in every calendar of the user, read straight from Radicale (``email``:
        the one the test connected with, or the account's, which is the Radicale user)."""
        login = self.logins.get(email) or (email if email in self.server.users else None)
        if not login:
            return {}
        found = {}
        for href in self._calendars(login):
            for path, text in self.server.events(login, href).items():
                for vevent in icalendar.Calendar.from_ical(text).walk("VEVENT"):
                    found[path] = self._as_event(path, vevent)
        return found

    def _calendars(self, login):
        try:
            return self.server.calendars(login)
        except requests.HTTPError:  # the user has no calendar collection yet
            return {}

    @staticmethod
    def _as_event(path, vevent):
        def moment(name):
            value = vevent[name].dt if name in vevent else None
            if isinstance(value, datetime):
                if value.tzinfo:
                    value = value.astimezone(timezone.utc).replace(tzinfo=None)
                return value.isoformat()
            return value.isoformat() if isinstance(value, date) else None

        allday = "DTSTART" in vevent and not isinstance(vevent["DTSTART"].dt, datetime)
        attendees = vevent.get("ATTENDEE") or []
        return {
            "id": path,
            "uid": str(vevent.get("UID", "")),
            "summary": str(vevent.get("SUMMARY", "")),
            "description": str(vevent.get("DESCRIPTION", "")),
            "location": str(vevent["LOCATION"]) if "LOCATION" in vevent else None,
            "attendees": attendees if isinstance(attendees, list) else [attendees],
            "times": ("date" if allday else "utc", moment("DTSTART"), moment("DTEND")),
        }

    def delete_event(self, account, external):
        login = account.email
        response = self.server._upstream.delete(  # pylint: disable=protected-access
            self.server.radicale_url + external["id"], auth=(login, self.server.users[login]), timeout=30)
        return response.ok

    def title(self, event):
        return event["summary"]

    def text(self, event):
        return event["description"]

    def location(self, event):
        return event["location"]

    def times(self, event):
        return event["times"]

    def event_ref(self, event):
        """The UID is ``<event id>-<user id>@<database uuid>``."""
        match = re.match(r"(\d+)-", event["uid"])
        return int(match.group(1)) if match else 0

    def item_path(self, external_id):
        href, _etag = split_external_id(external_id)
        return re.escape(urlsplit(href).path) + "$"

    def revoke_mid_batch(self, email):
        return self.server.inject(self.create_path, method="PUT", skip=6, before=lambda: self.revoke(email))

    @staticmethod
    def without_id(answer):
        """A create's answer without its ETag (what the client keeps of it)."""
        answer.headers.pop("ETag", None)
        return answer

    def error_body(self, code, message=None):
        return message or "Service unavailable"  # a CalDAV server explains in plain text

    def throttle_body(self):
        return "Too many requests"

    def throttle_quota(self, per_minute):
        """A CalDAV server declares no quota: after ``per_minute`` writes it answers 429, once,
        without Retry-After."""
        self.server.inject(self.create_path, method="PUT", status=429, skip=per_minute, times=1, body=self.throttle_body())


SIDES = {side.name: side for side in (GoogleSide, MicrosoftSide, CaldavSide)}
