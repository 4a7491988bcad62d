# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""CalDAV end to end against a real CalDAV server (Radicale, started here on 127.0.0.1),
through the Preferences wizard and the real cron, with faults injected in front of it: what only
CalDAV has (the wizard, the dedicated calendar it makes, ETags, one PUT per change). The rows
every provider shares run for CalDAV in ``TestCaldavSyncBehaviour`` and ``TestFaultsCaldav``."""

import dataclasses
import logging
import re
from datetime import datetime, timedelta

import icalendar

from odoo import Command
from odoo.tests import TransactionCase, tagged

from .common import add_students, create_class, make_user
from .emulators.radicale_server import RadicaleServer

_logger = logging.getLogger(__name__)
PASSWORD = "app-specific-pass"
BOOKED = re.compile(r"(\d+) students? booked")


@tagged("post_install", "-at_install")
class TestCaldavSync(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dav = RadicaleServer().start()
        cls.addClassCleanup(cls.dav.stop)
        cls.env["ir.config_parameter"].sudo().set_param("impact_calendar.dedicated_calendar_name", "Lessons")
        # Radicale listens on loopback: allowed as an administrator allows an on-premises server.
        cls.env["ir.config_parameter"].sudo().set_param("impact_calendar.caldav_allow_private_hosts", "True")
        add_students(cls, "Dav Student", 4, days=3)

    def setUp(self):
        super().setUp()
        self.instructor = make_user(self.env, f"davteacher{id(self)}")
        self.login = self.instructor.login
        self.dav.add_user(self.login, PASSWORD)
        self.dav.clear_faults()
        self.account = self.connect()
        self.clear_log()

    # -- helpers ------------------------------------------------------------------------------
    def connect(self, password=PASSWORD):
        wizard = self.env["impact.calendar.caldav.wizard"].with_user(self.instructor).create({
            "server_preset": "other", "server_url": self.dav.base_url + "/", "username": self.login, "password": password,
        })
        wizard.action_connect()
        return self.env["impact.calendar.account"].sudo().search([("user_id", "=", self.instructor.id)])

    def klass(self, students=1, hours=0, **values):
        values.setdefault("name", "Dav pottery")
        when = self.start + timedelta(hours=hours)
        return create_class(self.env, self.instructor, self.students[:students], when, timedelta(minutes=45), **values)

    def push(self):
        self.env.cr.flush()
        self.env["impact.calendar.link"]._fold_changes()
        return self.env["impact.calendar.synchronizer"]._drain()

    def let_time_pass(self):
        self.env["impact.calendar.link"].flush_model()
        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE dirty AND next_try IS NOT NULL")
        self.env["impact.calendar.link"].invalidate_model()

    def clear_log(self):
        with self.dav.lock:
            self.dav.log.clear()

    def calls(self):
        with self.dav.lock:
            return [(r.method, r.status) for r in self.dav.log]

    def calendar_path(self):
        """The path of the account's dedicated calendar (``calendar_id``), None before it exists."""
        self.account.invalidate_recordset()
        return self.account.calendar_id and "/" + self.account.calendar_id.split("/", 3)[3]

    def stored(self):
        """``{UID: VEVENT}`` in our dedicated calendar, read by a CalDAV REPORT."""
        found = {}
        path = self.calendar_path()
        for text in (self.dav.events(self.login, path) if path else {}).values():
            for vevent in icalendar.Calendar.from_ical(text).walk("VEVENT"):
                self.assertNotIn(str(vevent["UID"]), found, "duplicate UID")
                found[str(vevent["UID"])] = vevent
        return found

    def uid(self, event):
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        return f"{event.id}-{self.instructor.id}@{uuid}"

    # -- tests --------------------------------------------------------------------------------
    def test_connect_checks_credentials_and_keeps_the_password_secret(self):
        self.assertEqual((self.account.provider, self.account.email, self.account.state), ("caldav", self.login, "connected"))
        self.assertEqual((self.account.destination, self.account.calendar_id), ("dedicated", False))
        self.assertEqual(self.dav.calendars(self.login), {}, "the first push makes the calendar, not the connect")
        me = self.instructor.with_user(self.instructor)
        self.assertTrue(me.impact_calendar_destination_forced, "no main calendar to switch to: no switch button")
        credential = self.account._credential()
        self.assertNotIn(PASSWORD, credential.secret)
        self.assertEqual(credential._read_tokens().password, PASSWORD)
        wizard = self.env["impact.calendar.caldav.wizard"].with_user(self.instructor).create({
            "server_url": self.dav.base_url + "/", "username": self.login, "password": "wrong",
        })
        self.assertFalse(wizard.password, "the password never reads back")
        # A refusal is the form again with the reason; the password is not kept.
        self.assertEqual(wizard.action_connect()["res_id"], wizard.id)
        self.assertRegex(wizard.error, "app-specific password")
        self.assertFalse(wizard.sudo().password_secret)
        outsider = make_user(self.env, "davoutsider", integration=False)
        with self.assertRaises(Exception):
            self.env["impact.calendar.caldav.wizard"].with_user(outsider).create({
                "server_url": self.dav.base_url + "/", "username": "x", "password": "y",
            }).action_connect()

    def test_private_server_refused_unless_allowed_and_nothing_sent(self):
        """Off (the default), a loopback server is refused by the form before any request, with
        a message that says what to fix and nothing of the server (no status, no stage)."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("impact_calendar.caldav_allow_private_hosts", False)
        self.clear_log()
        for url in (self.dav.base_url + "/", self.dav.base_url.replace("127.0.0.1", "localhost") + "/"):
            wizard = self.env["impact.calendar.caldav.wizard"].with_user(self.instructor).create({
                "server_preset": "other", "server_url": url, "username": self.login, "password": PASSWORD,
            })
            self.assertEqual(wizard.action_connect()["res_id"], wizard.id)  # the form again, with the reason
            message = wizard.error
            self.assertIn("private or local network", message)
            self.assertIn("An administrator can allow private hosts in Settings", message)
            self.assertNotRegex(message, r"\d{3}|HTTP|Error|127\.0\.0\.1|principal")
        self.assertEqual(self.calls(), [], "nothing sent")
        # Pushes stop too: the account must be reconnected to an allowed server.
        self.klass()
        self.push()
        self.assertEqual(self.calls(), [])
        self.assertEqual(self.account.state, "needs_reconnect")
        self.assertIn("private or local network", self.account.last_error)

    def test_connect_messages_say_what_to_fix(self):
        """A server that is not CalDAV, and a refused password: no status code, no stage."""
        self.dav.inject(r".*", method="PROPFIND", status=500)
        wizard = self.env["impact.calendar.caldav.wizard"].with_user(self.instructor).create({
            "server_preset": "other", "server_url": self.dav.base_url + "/", "username": self.login, "password": PASSWORD,
        })
        wizard.action_connect()
        self.assertRegex(wizard.error, "did not answer as a CalDAV server; check the address")
        self.assertNotRegex(wizard.error, r"\d{3}|HTTP|principal|home")
        self.dav.clear_faults()
        wizard = self.env["impact.calendar.caldav.wizard"].with_user(self.instructor).create({
            "server_preset": "other", "server_url": self.dav.base_url + "/", "username": self.login, "password": "wrong",
        })
        wizard.action_connect()
        self.assertRegex(wizard.error, "user name or app password was refused")
        self.assertNotRegex(wizard.error, r"\d{3}|HTTP")

    def test_control_characters_never_reach_the_caldav_body_nor_the_feed(self):
        """Finding 4: a CR in a class name, its location or a student's name (names shown)
        adds no ATTENDEE, VALARM or second VEVENT to what Radicale stores, nor to the feed."""
        self.env["ir.config_parameter"].sudo().set_param("impact_calendar.include_student_names", True)
        self.students[0].name = "Dav Student\rATTENDEE:mailto:x@example.com"
        event = self.klass(
            students=1, name="Dav pottery\rATTENDEE:mailto:x@example.com\x07",
            location="Room 1\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\rEND:VEVENT\rBEGIN:VEVENT",
        )
        self.push()
        [put] = self.dav.requests(method="PUT")
        self.assertEqual(put.status, 201)
        feed = self.env["impact.calendar.feed"]
        feed._rotate(self.instructor)
        feed_body = feed.sudo().search([("user_id", "=", self.instructor.id)])._body()
        [stored] = self.dav.events(self.login, self.calendar_path()).values()
        for body in (put.body, stored.encode(), feed_body):
            self.assertNotRegex(body, rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
            lines = re.split(rb"\r?\n", body)
            self.assertEqual(lines.count(b"BEGIN:VEVENT"), 1)
            self.assertFalse([line for line in lines if line.startswith((b"ATTENDEE", b"BEGIN:VALARM"))])
            [vevent] = icalendar.Calendar.from_ical(body).walk("VEVENT")
            self.assertNotIn("ATTENDEE", vevent)
            self.assertEqual(str(vevent["SUMMARY"]), "Dav pottery ATTENDEE:mailto:x@example.com")
            self.assertIn("Dav Student ATTENDEE:mailto:x@example.com", str(vevent["DESCRIPTION"]))
        self.assertEqual(list(self.stored()), [self.uid(event)])

    def test_one_request_per_class_change(self):
        event = self.klass(students=1)
        self.push()
        self.assertEqual(self.calls(), [("MKCALENDAR", 201), ("PUT", 201)])
        self.assertEqual(self.dav.calendars(self.login), {self.calendar_path(): "Lessons"})
        put = self.dav.requests(method="PUT")[0]
        self.assertEqual(put.headers.get("If-None-Match"), "*")
        stored = self.stored()
        self.assertEqual(list(stored), [self.uid(event)])
        vevent = stored[self.uid(event)]
        self.assertIn("Dav pottery", str(vevent["SUMMARY"]))
        self.assertIn("1 student booked", str(vevent["DESCRIPTION"]))
        self.assertNotIn(b"ATTENDEE", put.body)
        self.assertNotIn(b"ORGANIZER", put.body)
        self.assertNotIn(b"Dav Student", put.body)

        for change in (
            {"partner_ids": [Command.link(self.students[1].id)]},
            {"start": self.start + timedelta(hours=2), "stop": self.start + timedelta(hours=3)},
            {"name": "Dav pottery (advanced)"},
        ):
            self.clear_log()
            event.write(change)
            self.push()
            self.assertEqual([m for m, _s in self.calls()], ["PUT"], change)
            self.assertTrue(self.dav.requests(method="PUT")[0].headers.get("If-Match"))
        vevent = self.stored()[self.uid(event)]
        self.assertEqual(str(vevent["SUMMARY"]), "Dav pottery (advanced)")
        self.assertEqual(vevent["DTSTART"].dt.replace(tzinfo=None), self.start + timedelta(hours=2))
        self.assertIn("2 students booked", str(vevent["DESCRIPTION"]))

        self.clear_log()
        event.write({"partner_ids": [Command.unlink(s.id) for s in self.students[:2]]})
        self.push()
        self.assertEqual([m for m, _s in self.calls()], ["DELETE"])
        self.assertEqual(self.stored(), {})

    def test_lost_create_answer_costs_one_put_per_try(self):
        """A create applied but whose answer was lost: its retry is one unconditional PUT of the
        current body, recorded as synced; no verifying PUT follows in any later round."""
        self.dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True)
        event = self.klass(students=1)
        self.push()
        link = self.env["impact.calendar.link"].sudo().search([("event_ref", "=", event.id)])
        self.assertEqual((link.state, link.attempts), ("retrying", 1))
        # the class changes before the retry: the retry carries the new version
        event.write({"partner_ids": [Command.link(self.students[1].id)]})
        for _run in range(3):
            self.let_time_pass()
            self.push()
        self.assertEqual(
            [(r.method, r.headers.get("If-None-Match")) for r in self.dav.requests(method="PUT")],
            [("PUT", "*"), ("PUT", None)],
        )
        self.assertEqual([m for m, _s in self.calls()], ["MKCALENDAR", "PUT", "PUT"], "nothing else: no GET, no verifying PUT")
        link.invalidate_recordset()
        self.assertEqual((link.state, link.dirty, link.attempts), ("synced", False, 0))
        stored = self.stored()
        self.assertEqual(list(stored), [self.uid(event)], "0 duplicates")
        self.assertIn("2 students booked", str(stored[self.uid(event)]["DESCRIPTION"]), "0 lost changes")

    def test_faults_no_duplicate_and_no_lost_change(self):
        events = [self.klass(students=1 + n % 3, hours=n, name=f"Dav class {n}") for n in range(6)]
        self.dav.inject(r"\.ics$", method="PUT", status=429, headers={"Retry-After": "120"})
        self.push()
        links = self.env["impact.calendar.link"].sudo().search([("event_ref", "in", [e.id for e in events])])
        self.assertTrue(all(link.dirty for link in links))
        now = datetime.now()
        self.assertTrue(all(link.next_try and link.next_try >= now + timedelta(seconds=100) for link in links), "Retry-After honoured")
        self.assertEqual(len(self.dav.requests(method="PUT")), 1, "a throttled account stops sending")
        self.let_time_pass()
        self.dav.inject(r"\.ics$", method="PUT", status=503, headers={"Retry-After": "5"})
        self.dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True, times=2)
        for _run in range(10):
            self.push()
            self.let_time_pass()
        # changes while faults keep coming: a roster change and a deletion, each answer lost once
        events[0].write({"partner_ids": [Command.link(self.students[3].id)]})
        events[1].write({"active": False})
        self.dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True)
        self.dav.inject(r"\.ics$", method="DELETE", drop=True, after_handling=True)
        for _run in range(10):
            self.push()
            self.let_time_pass()
        stored = self.stored()
        expected = {self.uid(e): e for e in events if e.active}
        self.assertEqual(set(stored), set(expected), "0 duplicates, 0 missing, 0 left behind")
        for uid, event in expected.items():
            roster = len(event._impact_calendar_roster(self.instructor))
            self.assertEqual(int(BOOKED.search(str(stored[uid]["DESCRIPTION"])).group(1)), roster, event.name)
            self.assertEqual(str(stored[uid]["SUMMARY"]), event.name)
        self.assertFalse(links.filtered("dirty"), "nothing left to push")
        with self.dav.lock:
            statuses = [(r.method, r.status) for r in self.dav.log if r.method in ("PUT", "DELETE", "GET")]
        _logger.info(
            "CalDAV faults: %s classes, %s requests (%s), 0 duplicates, 0 lost changes",
            len(events), len(statuses), ", ".join(f"{m} {s}" for m, s in statuses),
        )

    def test_deleted_calendar_is_made_again_through_the_registry(self):
        """The user deletes our calendar: ``get_calendar`` says GONE, the synchronizer forgets
        it, and the next round makes a new one (a new guard) and pushes the class into it."""
        event = self.klass()
        self.push()
        first = self.calendar_path()
        self.dav.delete_calendar(self.login, first)
        event.write({"name": "Dav pottery (moved)"})
        for _run in range(3):
            self.push()
            self.let_time_pass()
        second = self.calendar_path()
        self.assertTrue(second)
        self.assertNotEqual(second, first)
        self.assertEqual(self.dav.calendars(self.login), {second: "Lessons"})
        self.assertEqual([str(v["SUMMARY"]) for v in self.stored().values()], ["Dav pottery (moved)"])
        self.assertIn(("PROPFIND", 404), self.calls(), "get_calendar confirmed the calendar is gone")

    def test_disconnect_deletes_the_calendar_in_one_call(self):
        self.klass()
        self.push()
        path = self.calendar_path()
        self.clear_log()
        self.account.with_user(self.instructor)._disconnect(keep_events=False)
        self.push()
        self.assertIn(("DELETE", path), [(r.method, r.path) for r in self.dav.log])
        self.assertNotIn(path, self.dav.calendars(self.login))
        self.assertFalse(self.account.exists(), "disconnected: the account is erased")

    def test_calendar_an_older_connect_made_is_adopted_and_its_classes_stay(self):
        """1.0.1 made the calendar at connect and kept its URL in the tokens (destination main,
        no ``calendar_id``): the 1.0.2 migration makes it the dedicated calendar, and the
        classes in it are updated in place (no delete, no second calendar)."""
        event = self.klass()
        self.push()
        url = self.account.calendar_id
        link = self.env["impact.calendar.link"].sudo().search([("event_ref", "=", event.id)])
        credential = self.account._credential()
        credential._write_tokens(dataclasses.replace(credential._read_tokens(), calendar_url=url))
        self.account.write({"calendar_id": False, "destination": "main"})
        link.flush_recordset()
        self.env.cr.execute("UPDATE impact_calendar_link SET external_calendar = NULL WHERE id = %s", (link.id,))
        self.env["impact.calendar.account"]._adopt_connect_calendars()
        self.account.invalidate_recordset()
        link.invalidate_recordset()
        self.assertEqual((self.account.calendar_id, self.account.destination, link.external_calendar), (url, "dedicated", url))
        self.clear_log()
        event.write({"name": "Dav pottery (after the upgrade)"})
        self.push()
        self.assertEqual([m for m, _s in self.calls()], ["PUT"], "an update in place")
        self.assertTrue(self.dav.requests(method="PUT")[0].headers.get("If-Match"))
        self.assertEqual(len(self.dav.calendars(self.login)), 1)
        self.assertEqual([str(v["SUMMARY"]) for v in self.stored().values()], ["Dav pottery (after the upgrade)"])
