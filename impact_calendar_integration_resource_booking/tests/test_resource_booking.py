# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Bookings of OCA resource_booking, pushed to the booked teachers' emulated Google calendars."""

from datetime import datetime, timedelta, timezone
from unittest.mock import patch

from odoo import Command
from odoo.tests import new_test_user, tagged

from odoo.addons.impact_calendar_integration.tests.common import make_user
from odoo.addons.impact_calendar_integration.tests.sync_common import SyncCase


@tagged("post_install", "-at_install")
class TestResourceBookingSync(SyncCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True, no_reset_password=True))
        # Open around the clock, every day: any slot fits.
        cls.calendar = cls.env["resource.calendar"].create({
            "name": "Always open",
            "tz": "UTC",
            "attendance_ids": [
                Command.create({"name": str(day), "dayofweek": str(day), "hour_from": 0, "hour_to": 24, "day_period": "morning"})
                for day in range(7)
            ],
        })
        cls.room = cls.env["resource.resource"].create(
            {"name": "Pottery room", "resource_type": "material", "calendar_id": cls.calendar.id, "tz": "UTC"}
        )
        cls.booking_type = cls.env["resource.booking.type"].create(
            {"name": "Pottery lesson", "resource_calendar_id": cls.calendar.id, "duration": 1.0, "location": "Studio"}
        )
        cls.coordinator = new_test_user(
            cls.env, login="rb_coordinator", name="Coordinator", tz="UTC",
            groups="base.group_user,resource_booking.group_manager,"
            "impact_calendar_integration.group_calendar_integration",
        )
        cls.student = new_test_user(cls.env, login="rb_student", name="Portal Student", groups="base.group_portal")
        cls.slot = cls.start.replace(hour=10)

    def setUp(self):
        super().setUp()
        self.teacher = self.instructor  # connected by SyncCase
        self.combination = self.combination_of(self.teacher)

    # -- world ----------------------------------------------------------------------------
    def combination_of(self, *teachers):
        resources = self.env["resource.resource"].create([
            {"name": teacher.name, "resource_type": "user", "user_id": teacher.id,
             "calendar_id": self.calendar.id, "tz": "UTC"}
            for teacher in teachers
        ])
        combination = self.env["resource.booking.combination"].create(
            {"resource_ids": [Command.set((resources | self.room).ids)]}
        )
        self.booking_type.write({"combination_rel_ids": [Command.create({"combination_id": combination.id})]})
        return combination

    def teacher_connected(self, name):
        teacher = make_user(self.env, f"{name}{id(self)}")
        email = f"{teacher.login}@example.com"
        self.connect(teacher, email)
        return teacher, email

    def book(self, combination=None, partners=None, **values):
        """A coordinator books a student into a teacher's slot from the backend."""
        vals = {
            "type_id": self.booking_type.id,
            "partner_ids": [Command.set((partners or self.students[:1]).ids)],
            "combination_auto_assign": False,
            "combination_id": (combination or self.combination).id,
            "start": self.slot,
            "duration": 1.0,
        }
        vals.update(values)
        booking = self.env["resource.booking"].with_user(self.coordinator).create(vals)
        self.assertTrue(booking.meeting_id, "scheduled: resource_booking made the meeting")
        return booking

    def utc_start(self, external):
        value = datetime.fromisoformat(external["start"]["dateTime"].replace("Z", "+00:00"))
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    # -- tests ----------------------------------------------------------------------------
    def test_backend_booking_reaches_the_teacher_not_the_coordinator(self):
        coordinator_email = "rb_coordinator@example.com"
        self.connect(self.coordinator, coordinator_email)
        booking = self.book()
        meeting = booking.meeting_id
        self.assertEqual(meeting.user_id, self.coordinator, "resource_booking: the organizer is who booked")
        self.assertEqual(meeting._impact_calendar_instructors(), self.teacher)
        self.assertEqual(self.sql_instructors(meeting), {self.teacher.id})
        self.push()
        external = self.only_event()
        self.assertIn(meeting.name, self.title(external))
        self.assertIn("1 student booked", self.text(external), "the teacher is not a student")
        self.assertEqual(self.utc_start(external), self.slot)
        self.assertFalse(self.external_events(coordinator_email), "organizing is not teaching")
        self.assertEqual(self.link(meeting).user_id, self.teacher)

    def test_portal_student_schedules_a_pending_booking(self):
        booking = self.env["resource.booking"].with_user(self.coordinator).create({
            "type_id": self.booking_type.id,
            "partner_ids": [Command.set(self.student.partner_id.ids)],
            "combination_id": self.combination.id,
            "combination_auto_assign": False,
        })
        self.assertEqual(booking.state, "pending")
        self.push()
        self.assertFalse(self.external_events(), "no slot chosen yet")
        # What /my/bookings/<id>/confirm does for the student.
        mine = booking.with_user(self.student)
        mine.check_access("read")
        portal = mine.sudo().with_context(using_portal=True, tz="UTC")
        portal.start = self.slot
        portal.action_confirm()
        self.assertEqual(booking.state, "confirmed")
        self.push()
        external = self.only_event()
        self.assertIn("1 student booked", self.text(external))
        self.assertEqual(self.utc_start(external), self.slot)

    def test_cancelled_booking_leaves_the_calendar(self):
        booking = self.book()
        self.push()
        self.only_event()
        booking.action_cancel()
        self.assertFalse(booking.meeting_id)
        self.push()
        self.assertFalse(self.external_events())

    def test_rescheduled_booking_moves(self):
        booking = self.book()
        self.push()
        first = self.only_event()
        booking.write({"start": self.slot + timedelta(days=1, hours=2)})
        self.push()
        moved = self.only_event()
        self.assertEqual(moved["id"], first["id"], "the same event, updated")
        self.assertEqual(self.utc_start(moved), self.slot + timedelta(days=1, hours=2))

    def test_scheduling_does_not_look_up_former_teachers(self):
        # resource_booking writes ``meeting_id`` on every booking it schedules or reschedules;
        # only a new combination needs the former teachers. Reading them forced the pending
        # combination recompute, and with it resource_booking's scheduling check, once more.
        booking_class = type(self.env["resource.booking"])
        original = booking_class._impact_calendar_teacher_partners
        with patch.object(booking_class, "_impact_calendar_teacher_partners", autospec=True,
                          side_effect=original) as lookup:
            booking = self.book()
            booking.write({"start": self.slot + timedelta(hours=2)})
            self.assertEqual(lookup.call_count, 0)
            booking.write({"combination_id": self.combination_of(make_user(self.env, "teacher_c")).id})
            self.assertEqual(lookup.call_count, 2, "a new combination: the former and the new teachers")

    def test_combination_change_moves_the_class_to_the_new_teacher(self):
        other, other_email = self.teacher_connected("teacher_b")
        booking = self.book()
        self.push()
        self.only_event()
        booking.write({"combination_id": self.combination_of(other).id})
        self.push()
        self.assertFalse(self.external_events(), "gone from the former teacher's calendar")
        external = self.only_event(other_email)
        self.assertIn("1 student booked", self.text(external), "the former teacher is not a student")
        self.assertNotIn(self.teacher.partner_id, booking.meeting_id.partner_ids)

    def test_second_teacher_added_to_the_combination(self):
        other, other_email = self.teacher_connected("teacher_c")
        booking = self.book()
        self.push()
        resource = self.env["resource.resource"].create(
            {"name": other.name, "resource_type": "user", "user_id": other.id, "calendar_id": self.calendar.id, "tz": "UTC"}
        )
        self.combination.write({"resource_ids": [Command.link(resource.id)]})
        self.assertEqual(self.sql_instructors(booking.meeting_id), {self.teacher.id, other.id})
        self.push()
        for email in (self.email, other_email):
            self.assertIn("1 student booked", self.text(self.only_event(email)))
        self.combination.write({"resource_ids": [Command.unlink(resource.id)]})
        self.push()
        self.assertFalse(self.external_events(other_email))
        self.only_event()

    def test_teacher_without_account_gets_nothing_and_nothing_fails(self):
        unconnected = make_user(self.env, f"unconnected{id(self)}")
        booking = self.book(combination=self.combination_of(unconnected))
        with self.no_http():
            self.env.cr.flush()
        queued = self.env["impact.calendar.change"].sudo().search_count([("event_ref", "=", booking.meeting_id.id)])
        self.assertFalse(queued, "no instructor with an account: the booking queues nothing")
        self.assertEqual(self.push(), 0)
        self.assertFalse(self.link(booking.meeting_id))
        self.assertEqual(self.api_calls(), 0)

    def test_booking_rule_is_the_same_in_sql_and_python(self):
        """Instructors and roster of booking meetings: the link SQL and Python agree."""
        other, _email = self.teacher_connected("teacher_d")
        duo = self.combination_of(self.teacher, other)
        for index, state in enumerate(["needsAction", "tentative", "accepted", "declined"]):
            for students in (self.students[:0], self.students[:1]):
                booking = self.book(
                    combination=duo, partners=students or self.teacher.partner_id,
                    start=self.slot + timedelta(days=index, hours=2 * len(students)),
                )
                meeting = booking.meeting_id
                meeting.attendee_ids.write({"state": state})
                self.flush()
                self.assertEqual(meeting._impact_calendar_instructors(), self.teacher | other)
                self.assertEqual(self.sql_instructors(meeting), {self.teacher.id, other.id})
                python_says = bool(meeting._impact_calendar_roster())
                links = self.link(meeting)
                self.assertEqual(bool(links), python_says, (state, len(students)))
                self.assertEqual(python_says, state != "declined" and bool(students))
                if links:
                    self.assertEqual(links.user_id, self.teacher | other)

    def test_booking_commits_call_a_function_with_the_bridges_instructors(self):
        """The booking side's function (impact_calendar_link_append.py) is this registry's: it
        counts a combination's teachers."""
        function = self.env["impact.calendar.link"]._impact_calendar_append_function
        self.env.cr.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regproc(%s)", [function])
        self.assertIn("resource_booking_combination", self.env.cr.fetchone()[0])
