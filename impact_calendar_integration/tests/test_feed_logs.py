# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The feed's token stays out of the server's log and out of every cache (issue 21, finding 5)."""

import contextlib
import logging
from datetime import timedelta

import requests

from odoo.tests import HttpCase, tagged

from .common import add_students, create_class, make_user


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@tagged("post_install", "-at_install")
class TestFeedLogs(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        add_students(cls, "Log Student", 1, days=2)
        cls.instructor = make_user(cls.env, "feedlogteacher")
        create_class(cls.env, cls.instructor, cls.students, cls.start, timedelta(hours=1), name="Logged pottery")

    def get(self, path, **headers):
        """A calendar app's poll: no cookie, no session."""
        self.env.flush_all()
        allow = getattr(self, "allow_requests", None)  # 19.0 refuses cookieless test requests
        with allow(all_requests=True) if allow else contextlib.nullcontext(), requests.Session() as client:
            return client.get(f"{self.base_url()}{path}", headers=headers, timeout=30)

    @contextlib.contextmanager
    def captured_logs(self):
        """Every record any logger emits meanwhile, the request lines included."""
        capture = _Capture()
        root, werkzeug = logging.getLogger(), logging.getLogger("werkzeug")
        level = werkzeug.level
        werkzeug.setLevel(logging.INFO)  # request lines are INFO; a quieter config hides them
        root.addHandler(capture)
        try:
            yield capture.lines
        finally:
            root.removeHandler(capture)
            werkzeug.setLevel(level)

    def test_token_never_logged_and_feed_never_stored(self):
        self.instructor.with_user(self.instructor).action_impact_calendar_feed_regenerate()
        self.instructor.invalidate_recordset()
        url = self.instructor.with_user(self.instructor).impact_calendar_feed_url
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        token = path.rsplit("/", 1)[1].removesuffix(".ics")
        self.assertGreaterEqual(len(token), 40)

        with self.captured_logs() as lines:
            first = self.get(path)
            again = self.get(path, **{"If-None-Match": first.headers["ETag"]})
            missing = self.get(path.replace(token, token[::-1]))
        self.assertEqual((first.status_code, again.status_code, missing.status_code), (200, 304, 404))
        # No cache may write it down; the ETag and 304s still spare the pollers.
        for response in (first, again):
            self.assertEqual(response.headers["Cache-Control"], "private, no-store")
        self.assertTrue(first.headers["ETag"])

        feed_lines = [line for line in lines if "/impact_calendar/feed/" in line]
        # The requests were logged (else this test could not fail), without their token.
        self.assertGreaterEqual(len(feed_lines), 3, lines)
        leaked = [line for line in lines if token in line or token[::-1] in line]
        self.assertFalse(leaked, "a log line holds the feed token")
