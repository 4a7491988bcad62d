# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A booking world wired to the loopback emulators: instructors, students, and a cron to run."""

import time
from datetime import timedelta
from unittest.mock import patch

from odoo.tests import TransactionCase

from ..models import impact_calendar_synchronizer
from ..sync import pacing, providers
from .common import add_students, create_class, make_user
from .emulators import tls
from .provider_sides import SIDES


class SyncCase(TransactionCase):
    provider = "google"
    # The behaviour table's tests keep to the main calendar; test_dedicated covers the other.
    destination = "main"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tls = tls
        cls.side = SIDES[cls.provider]()
        cls.emulator = cls.side.start(cls)
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
        """A consent for ``destination`` (default: the class's), as the provider's sign-in makes it."""
        return self.side.connect(self.env, user, email, destination or self.destination)

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
        self.side.clear_log()

    def api_calls(self, method=None):
        """Requests to the calendar API (batch parts counted one by one), not OAuth."""
        return self.side.api_calls(method)

    def external_events(self, email=None):
        return self.side.external_events(email or self.email)

    def only_event(self, email=None):
        events = self.external_events(email)
        self.assertEqual(len(events), 1, events)
        return next(iter(events.values()))

    def title(self, event):
        return self.side.title(event)

    def text(self, event):
        return self.side.text(event)

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
