# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The private ICS feed, subscribed to as Apple Calendar and Thunderbird do: a GET without any
session, then conditional GETs that must answer 304 until a class changes."""

import contextlib
import hashlib
import logging
from datetime import timedelta

import icalendar
import requests

import odoo
from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged

from .. import compat
from .common import GROUP, add_students, create_class, make_user

_logger = logging.getLogger(__name__)
APPLE = "macOS/14.5 (23F79) dataaccessd/1.0"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"


@tagged("post_install", "-at_install")
class TestFeed(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        add_students(cls, "Feed Student", 3, days=2)
        cls.instructor = make_user(cls.env, "feedteacher")
        cls.other = make_user(cls.env, "feedother")
        cls.manager = make_user(cls.env, "feedmanager", manager=True)

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param("impact_calendar.include_student_names", False)

    # -- helpers ------------------------------------------------------------------------------
    def klass(self, students=1, days=0, **values):
        values.setdefault("name", "Feed pottery")
        when = self.start + timedelta(days=days)
        return create_class(self.env, self.instructor, self.students[:students], when, timedelta(hours=1), **values)

    def turn_on(self, user=None):
        user = user or self.instructor
        user.with_user(user).action_impact_calendar_feed_regenerate()
        user.invalidate_recordset()
        return user.with_user(user).impact_calendar_feed_url

    def get(self, url, agent=APPLE, **headers):
        """A calendar app's poll: a fresh HTTP client, no cookie, no session."""
        self.env.flush_all()
        path = url.split("://", 1)[1].split("/", 1)[1]
        # A calendar app sends no cookie at all; since 19.0 the test server then refuses the
        # request unless told to take every request (18.0 has no such gate).
        allow = getattr(self, "allow_requests", None)
        with allow(all_requests=True) if allow else contextlib.nullcontext(), requests.Session() as client:
            return client.get(f"{self.base_url()}/{path}", headers={"User-Agent": agent, **headers}, timeout=30)

    def events(self, response):
        self.assertEqual(response.status_code, 200, response.text[:200])
        return icalendar.Calendar.from_ical(response.content).walk("VEVENT")

    # -- tests --------------------------------------------------------------------------------
    def test_subscribe_poll_and_conditional_get(self):
        event = self.klass(students=1)
        self.klass(students=0, days=1, name="Nobody booked")
        url = self.turn_on()
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url").rstrip("/")
        self.assertRegex(url, rf"^{base}/impact_calendar/feed/[A-Za-z0-9_-]{{43}}\.ics$")

        first = self.get(url, agent=APPLE)
        self.assertTrue(first.headers["Content-Type"].startswith("text/calendar"))
        self.assertNotIn("session_id", first.cookies)
        [vevent] = self.events(first)
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        self.assertEqual(str(vevent["UID"]), f"{event.id}-{self.instructor.id}@{uuid}")
        self.assertIn("Feed pottery", str(vevent["SUMMARY"]))
        self.assertIn("1 student booked", str(vevent["DESCRIPTION"]))
        self.assertNotIn("Feed Student", first.text, "names are private by default")
        self.assertNotIn("ATTENDEE", first.text)
        self.assertNotIn("ORGANIZER", first.text)
        self.assertEqual(vevent["DTSTART"].dt.replace(tzinfo=None), event.start)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

        # Thunderbird and Apple revalidate: nothing changed, 304 and no body.
        again = self.get(url, agent=THUNDERBIRD, **{"If-None-Match": etag})
        self.assertEqual(again.status_code, 304)
        self.assertEqual(again.content, b"")
        self.assertEqual(self.get(url, **{"If-Modified-Since": modified}).status_code, 304)

        # A student books in a later transaction: new ETag, higher SEQUENCE, same UID.
        sequence = int(vevent["SEQUENCE"])
        event.write({"partner_ids": [Command.link(self.students[1].id)]})
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE calendar_event SET write_date = write_date + interval '1 minute' WHERE id = %s", [event.id]
        )
        event.invalidate_recordset()
        changed = self.get(url, **{"If-None-Match": etag})
        [vevent2] = self.events(changed)
        self.assertNotEqual(changed.headers["ETag"], etag)
        self.assertEqual(str(vevent2["UID"]), str(vevent["UID"]))
        self.assertGreater(int(vevent2["SEQUENCE"]), sequence)
        self.assertIn("2 students booked", str(vevent2["DESCRIPTION"]))

        # The last student leaves: the class leaves the feed.
        event.write({"partner_ids": [Command.unlink(s.id) for s in self.students]})
        self.assertEqual(self.events(self.get(url)), [])

    def test_window_from_thirty_days_back(self):
        self.klass(days=-40, name="Long ago")
        self.klass(days=-20, name="Last month")
        self.klass(days=90, name="Next quarter")
        self.klass(name="Archived", active=False)
        names = sorted(str(v["SUMMARY"]) for v in self.events(self.get(self.turn_on())))
        self.assertEqual(names, ["Last month", "Next quarter"])

    def test_names_only_when_allowed(self):
        self.klass(students=2)
        self.env["ir.config_parameter"].sudo().set_param("impact_calendar.include_student_names", True)
        text = self.get(self.turn_on()).text
        self.assertIn("Feed Student 1", text)
        self.assertNotIn("ATTENDEE", text)

    def test_regenerate_revokes_old_url_and_disable_stops(self):
        self.klass()
        old = self.turn_on()
        self.assertEqual(self.get(old).status_code, 200)
        new = self.turn_on()
        self.assertNotEqual(old, new)
        refused = self.get(old)
        self.assertEqual(refused.status_code, 404)
        self.assertEqual(self.get(new).status_code, 200)
        wrong = self.get(new.replace(".ics", "x.ics"))
        self.assertEqual((wrong.status_code, wrong.content), (404, refused.content), "a 404 reveals nothing")
        self.instructor.with_user(self.instructor).action_impact_calendar_feed_disable()
        self.assertEqual(self.get(new).status_code, 404)
        self.instructor.invalidate_recordset()
        self.assertFalse(self.instructor.with_user(self.instructor).impact_calendar_feed_url)

    def test_losing_the_group_or_being_archived_stops_the_feed(self):
        self.klass()
        url = self.turn_on()
        self.assertEqual(self.get(url).status_code, 200)
        group = self.env.ref(GROUP)
        self.instructor.write({compat.USER_GROUPS: [Command.unlink(group.id)]})
        self.assertEqual(self.get(url).status_code, 404)
        self.instructor.write({compat.USER_GROUPS: [Command.link(group.id)]})
        self.assertEqual(self.get(url).status_code, 200)
        self.instructor.active = False
        self.assertEqual(self.get(url).status_code, 404)

    def test_only_the_user_reads_or_changes_their_feed(self):
        url = self.turn_on()
        self.assertTrue(url)
        for viewer in (self.other, self.manager):
            target = self.instructor.with_user(viewer)
            self.assertFalse(target.impact_calendar_feed_url, f"{viewer.login} must not see the URL")
            self.assertFalse(target.sudo().impact_calendar_feed_url, "sudo keeps the viewer's uid")
            with self.assertRaises(AccessError):
                target.action_impact_calendar_feed_regenerate()
            with self.assertRaises(AccessError):
                target.action_impact_calendar_feed_disable()
        outsider = make_user(self.env, "feedoutsider", integration=False)
        with self.assertRaises(AccessError):
            outsider.with_user(outsider).action_impact_calendar_feed_regenerate()
        with self.assertRaises(AccessError):
            self.env["impact.calendar.feed"].with_user(self.manager).search([])
        # Over RPC the field is self-readable like the other Preferences fields.
        self.assertIn("impact_calendar_feed_url", self.env["res.users"].SELF_READABLE_FIELDS)

    def test_database_keeps_a_hash_not_the_token(self):
        url = self.turn_on()
        token = url.rsplit("/", 1)[1][: -len(".ics")]
        feed = self.env["impact.calendar.feed"].sudo().search([("user_id", "=", self.instructor.id)])
        self.assertEqual(feed.token_hash, hashlib.sha256(token.encode()).hexdigest())
        self.assertGreaterEqual(len(token), 43, "at least 256 bits from secrets.token_urlsafe(32)")
        self.env.flush_all()
        self.env.cr.execute("SELECT * FROM impact_calendar_feed WHERE id = %s", [feed.id])
        row = self.env.cr.fetchone()
        columns = [column[0] for column in self.env.cr.description]
        self.assertEqual(
            sorted(columns),
            sorted(["id", "user_id", "token_hash", "changed_at", "body_etag", "body_changed_at",
                    "create_uid", "create_date", "write_uid", "write_date"]),
            "no column for the token, encrypted or not",
        )
        self.assertEqual([c for c, v in zip(columns, row) if v is not None and token in str(v)], [])

    # -- shown once, in the session that made it --------------------------------------------------
    def rpc(self, method, user, route="/web/dataset/call_kw", fields=None):
        """What the web client sends, in the test's current session (``authenticate``)."""
        args = [[user.id], fields] if fields else [[user.id]]
        return self.make_jsonrpc_request(
            f"{route}/res.users.{method}", {"model": "res.users", "method": method, "args": args, "kwargs": {}},
        )

    def preferences(self, user):
        [row] = self.rpc("read", user, fields=["impact_calendar_feed_enabled", "impact_calendar_feed_url"])
        return row["impact_calendar_feed_enabled"], row["impact_calendar_feed_url"]

    def test_url_is_shown_in_the_session_that_made_it_only(self):
        self.klass()
        login = self.instructor.login
        session = self.authenticate(login, login)
        self.assertEqual(self.preferences(self.instructor), (False, False))
        # The Preferences button, as the web client calls it; it then reads the record again.
        self.assertFalse(self.rpc("action_impact_calendar_feed_regenerate", self.instructor, "/web/dataset/call_button"))
        enabled, url = self.preferences(self.instructor)
        self.assertTrue(enabled)
        self.assertRegex(url or "", r"/impact_calendar/feed/[A-Za-z0-9_-]{43}\.ics$")
        self.assertEqual(self.preferences(self.instructor), (True, url), "the dialog opened again in this session")
        self.assertEqual(self.get(url).status_code, 200)
        token = url.rsplit("/", 1)[1][: -len(".ics")]
        self.env.flush_all()
        self.env.cr.execute("SELECT * FROM impact_calendar_feed WHERE user_id = %s", [self.instructor.id])
        self.assertNotIn(token, " ".join(str(value) for value in self.env.cr.fetchone()))
        self.assertEqual(odoo.http.root.session_store.get(session.sid).get("impact_calendar_feed_token"), token,
                         "kept in the server-side session store, not the database")

        # A later session of the same user: the feed is on, its address is not shown again.
        self.authenticate(login, login)
        self.assertEqual(self.preferences(self.instructor), (True, False))
        self.assertEqual(self.get(url).status_code, 200, "the feed itself keeps working")
        # Another user (the manager too) sees no address in their session.
        for viewer in (self.other, self.manager):
            self.authenticate(viewer.login, viewer.login)
            self.assertEqual(self.preferences(self.instructor), (False, False), viewer.login)

        # Regenerate in a new session: that session shows the new URL, the old one stops at once.
        self.authenticate(login, login)
        self.rpc("action_impact_calendar_feed_regenerate", self.instructor, "/web/dataset/call_button")
        enabled, new = self.preferences(self.instructor)
        self.assertTrue(enabled and new and new != url)
        self.assertEqual(self.get(url).status_code, 404)
        self.assertEqual(self.get(new).status_code, 200)
        # Rotated elsewhere (another session, another device): this session's token is stale.
        self.instructor.with_user(self.instructor).action_impact_calendar_feed_regenerate()
        self.env.flush_all()
        self.assertEqual(self.preferences(self.instructor), (True, False))
        self.rpc("action_impact_calendar_feed_disable", self.instructor, "/web/dataset/call_button")
        self.assertEqual(self.preferences(self.instructor), (False, False))

    def test_poll_cost_does_not_grow_with_the_classes(self):
        self.turn_on()
        feed = self.env["impact.calendar.feed"].sudo().search([("user_id", "=", self.instructor.id)])
        counts, made = [], 0
        for total in (3, 12):
            for n in range(made, total):
                self.klass(students=1 + n % 2, days=n + 1, name=f"Cost {n}")
            made = total
            self.env.flush_all()
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            body, _etag, _modified = feed._serve()
            counts.append(self.env.cr.sql_log_count - before)
            self.assertEqual(body.count(b"BEGIN:VEVENT"), total)
        _logger.info("feed poll: %s queries for 3 classes, %s for 12", *counts)
        self.assertLessEqual(counts[1], counts[0] + 2, f"queries for 3 then 12 classes: {counts}")
