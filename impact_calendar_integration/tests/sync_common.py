# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A booking world wired to the loopback emulators: instructors, students, and a cron to run."""

import time
from datetime import timedelta
from unittest.mock import patch

from odoo.tests import TransactionCase

from ..models import impact_calendar_synchronizer
from ..sync import pacing, providers
from ..sync.tokens import TokenSet
from .common import add_students, create_class, make_user, use_emulator
from .emulators import google, microsoft, tls


class SyncCase(TransactionCase):
    provider = "google"
    # The behaviour table's tests keep to the main calendar; test_dedicated covers the other.
    destination = "main"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tls = tls
        if cls.provider == "google":
            cls.emulator = google.GoogleEmulator().start()
        else:
            cls.emulator = microsoft.MicrosoftEmulator().start()
            trust = tls.trusted()
            trust.__enter__()
            cls.addClassCleanup(trust.__exit__, None, None, None)
        cls.addClassCleanup(cls.emulator.stop)
        use_emulator(cls.env, cls.provider, cls.emulator)
        add_students(cls, "Student", 5, days=3)

    def setUp(self):
        super().setUp()
        # The cron entry point pushes what is due and ends, without waiting on the clock.
        unpaced = patch.object(impact_calendar_synchronizer, "PACER", pacing.RunPacer.unpaced())
        unpaced.start()
        self.addCleanup(unpaced.stop)
        self.instructor = make_user(self.env, f"instructor{id(self)}")
        self.email = f"{self.instructor.login}@example.com"
        self.account = self.connect(self.instructor, self.email)
        self.flush()
        self.synchronizer._drain()
        self.clear_log()

    # -- world ----------------------------------------------------------------------------
    @property
    def synchronizer(self):
        return self.env["impact.calendar.synchronizer"]

    def connect(self, user, email, destination=None):
        """A consent for ``destination`` (default: the class's), as the OAuth callback makes it."""
        destination = destination or self.destination
        if self.provider == "google":
            # The scopes the start route asks for, plus what the user granted before
            # (include_granted_scopes=true, as Google does).
            scopes = providers.get("google").scopes_for(destination)
            with self.emulator._state_lock:  # pylint: disable=protected-access
                earlier = {s for g in self.emulator.grants if g.email == email and not g.revoked for s in g.scopes}
            access, refresh = self.emulator.issue_tokens(email, scopes=tuple(scopes) + tuple(sorted(earlier - set(scopes))))
            tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3000)
        else:
            tokens = self._microsoft_tokens(email)
        return self.env["impact.calendar.account"].sudo()._connect(user, self.provider, tokens, email, destination)

    def _microsoft_tokens(self, email):
        import requests  # pylint: disable=import-outside-toplevel
        from urllib.parse import parse_qsl, urlsplit  # pylint: disable=import-outside-toplevel

        from ..sync.providers.microsoft import oauth as oauth_microsoft  # pylint: disable=import-outside-toplevel

        if email.lower() not in self.emulator.users:  # a reconnect signs the same mailbox in
            self.emulator.seed_user(email)
        self.emulator.consent_as = email
        config = self.env["impact.calendar.account"]._provider_config("microsoft")
        flow = oauth_microsoft.start_flow(config, "http://localhost/cb", "state-x")
        response = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
        answer = dict(parse_qsl(urlsplit(response.headers["Location"]).query))
        tokens, _email = oauth_microsoft.finish_flow(config, flow, answer)
        return tokens

    def availability(self, user=None, students=(), **values):
        values.setdefault("name", "Pottery for beginners")
        return create_class(self.env, user or self.instructor, students, self.start, timedelta(hours=1), **values)

    def flush(self):
        """What a commit and the worker's first step do: ORM flush, the precommit hook that
        appends to the change log, then the worker folding the log into the links."""
        self.env.cr.flush()
        self.env["impact.calendar.link"]._fold_changes()

    def push(self):
        """Commit, then one cron run."""
        self.flush()
        return self.synchronizer._drain()

    # -- provider side ----------------------------------------------------------------------
    def clear_log(self):
        with self.emulator.lock:
            self.emulator.log.clear()
            if self.provider == "google":
                self.emulator.part_log.clear()

    def api_calls(self, method=None):
        """Requests to the calendar API (batch parts counted one by one), not OAuth."""
        if self.provider == "google":
            parts = [r for r in self.emulator.part_log if method is None or r.method == method]
            direct = self.emulator.requests(r"^/calendar/v3/", method)
            return len(parts) + len(direct)
        return len(self.emulator.requests(r"/me/", method)) + self._graph_batch_items(method)

    def _graph_batch_items(self, method):
        import json  # pylint: disable=import-outside-toplevel

        count = 0
        for request in self.emulator.requests(r"/\$batch$", "POST"):
            for item in json.loads(request.body)["requests"]:
                if method is None or item["method"] == method:
                    count += 1
        return count

    def external_events(self, email=None):
        email = email or self.email
        if self.provider == "google":
            return {k: v for k, v in self.emulator.events(email).items() if v.get("status") != "cancelled"}
        return {event["id"]: event for event in self.emulator.events(email)}

    def only_event(self, email=None):
        events = self.external_events(email)
        self.assertEqual(len(events), 1, events)
        return next(iter(events.values()))

    def title(self, event):
        return event.get("summary") or event.get("subject")

    def text(self, event):
        if "description" in event:
            return event["description"]
        return event.get("body", {}).get("content", "")

    def sql_instructors(self, event):
        """The class's instructors as the link SQL sees them (user ids)."""
        query = self.env["calendar.event"]._impact_calendar_instructors_query()
        self.env.flush_all()
        self.env.cr.execute(f"SELECT user_id FROM ({query}) i WHERE i.event_id = %s", [event.id])  # pylint: disable=sql-injection
        return {user_id for (user_id,) in self.env.cr.fetchall()}

    def link(self, event):
        return self.env["impact.calendar.link"].sudo().search([("event_ref", "=", event.id)])

    def no_http(self):
        """Fail on any provider call: booking writes must never talk to the network."""
        return patch.object(providers.Provider, "client", _Forbidden)


def _Forbidden(*args, **kwargs):  # pylint: disable=invalid-name
    raise AssertionError("a provider client was built inside the user's transaction")


def dead_backend_pid(env):
    """The PostgreSQL backend pid of a worker that died: a connection of its own, closed, and
    gone from pg_stat_activity."""
    import psycopg2  # pylint: disable=import-outside-toplevel

    from odoo import sql_db  # pylint: disable=import-outside-toplevel

    _dbname, info = sql_db.connection_info_for(env.cr.dbname)
    connection = psycopg2.connect(**info)
    pid = connection.get_backend_pid()
    connection.close()
    watcher = psycopg2.connect(**info)
    try:
        watcher.autocommit = True
        with watcher.cursor() as cr:
            for _attempt in range(500):  # until the backend has read the close
                cr.execute("SELECT pg_stat_clear_snapshot(); SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                if not cr.fetchone()[0]:
                    return pid
                time.sleep(0.01)
    finally:
        watcher.close()
    raise AssertionError("the closed connection's backend did not end")


class LiveConnection:
    """Another worker's connection, alive for the ``with`` block: its backend pid."""

    def __init__(self, env):
        self.env = env
        self.connection = None

    def __enter__(self):
        import psycopg2  # pylint: disable=import-outside-toplevel

        from odoo import sql_db  # pylint: disable=import-outside-toplevel

        _dbname, info = sql_db.connection_info_for(self.env.cr.dbname)
        self.connection = psycopg2.connect(**info)
        return self.connection.get_backend_pid()

    def __exit__(self, *exc):
        self.connection.close()
