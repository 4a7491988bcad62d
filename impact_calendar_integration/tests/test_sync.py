# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Every row of the behaviour table (DESIGN §2), on every provider: Google and Microsoft against
their emulators, CalDAV against a real Radicale."""

import contextlib
import threading
import time
from datetime import date, timedelta
from unittest.mock import patch

from odoo import Command
from odoo.tests import tagged

from .. import compat
from ..models import impact_calendar_synchronizer
from ..sync import pacing, providers
from .common import GROUP, make_user
from .sync_common import SyncCase


class SyncBehaviour:
    """Provider-agnostic behaviour; mixed into one TestCase per provider below."""

    def delete_at_provider(self, external):
        """The instructor deletes the event in their own calendar."""
        self.assertTrue(self.side.delete_event(self.account, external))

    def test_first_booking_creates_event(self):
        event = self.availability()
        with self.no_http():
            self.flush()
        self.assertEqual(self.push(), 0, "an availability without students is not pushed")
        self.assertFalse(self.external_events())
        with self.no_http():
            event.write({"partner_ids": [Command.link(self.students[0].id)]})
            self.flush()
        self.push()
        external = self.only_event()
        self.assertIn("Pottery for beginners", self.title(external))
        self.assertIn("1 student booked", self.text(external))
        self.assertNotIn("Student 1", self.text(external), "names are private by default")
        self.assertFalse(external.get("attendees"))
        self.assertEqual(self.link(event).state, "synced")

    def test_roster_change_updates_same_event(self):
        event = self.availability(students=self.students[:1])
        self.push()
        first = self.only_event()
        self.clear_log()
        event.write({"partner_ids": [Command.link(self.students[1].id)]})
        self.push()
        second = self.only_event()
        self.assertEqual(first["id"], second["id"])
        self.assertIn("2 students booked", self.text(second))
        self.assertEqual(self.api_calls(), 1)

    def test_last_student_removed_deletes_event(self):
        event = self.availability(students=self.students[:2])
        self.push()
        self.only_event()
        event.write({"partner_ids": [Command.unlink(self.students[0].id), Command.unlink(self.students[1].id)]})
        self.push()
        self.assertFalse(self.external_events())
        link = self.link(event)
        self.assertFalse(link.external_id)
        self.assertFalse(link.dirty)

    def test_all_remaining_declined_deletes_event(self):
        event = self.availability(students=self.students[:2])
        self.push()
        event.attendee_ids.filtered(lambda a: a.partner_id in self.students).do_decline()
        self.push()
        self.assertFalse(self.external_events())

    def test_bulk_writes_can_skip_syncing_with_a_context_key(self):
        event = self.availability(students=self.students[:1])
        self.push()
        self.clear_log()
        event.with_context(impact_calendar_no_sync=True).write({"name": "Imported"})
        self.push()
        self.assertEqual(self.api_calls(), 0, "a migration or import opts out, like no_calendar_sync")
        event.write({"location": "Room 2"})
        self.push()
        self.assertEqual(self.title(self.only_event()), "Imported", "the next change sends everything")

    def test_booking_rule_is_the_same_in_sql_and_python(self):
        """The link SQL and the Python roster read one rule (instructors, states): they agree."""
        states = ["needsAction", "tentative", "accepted", "declined"]
        for state in states:
            for with_instructor_only in (False, True):
                students = self.students[:0] if with_instructor_only else self.students[:1]
                event = self.availability(students=students, name=f"Rule {state} {with_instructor_only}")
                event.attendee_ids.write({"state": state})
                self.flush()
                self.assertEqual(self.sql_instructors(event), set(event._impact_calendar_instructors().ids))
                self.assertEqual(event._impact_calendar_instructors(), self.instructor, "the organizer by default")
                python_says = bool(event._impact_calendar_roster())
                sql_says = bool(self.link(event))
                self.assertEqual(sql_says, python_says, (state, with_instructor_only))
                self.assertEqual(python_says, state != "declined" and not with_instructor_only)

    def test_co_instructors_follow_the_extension_point(self):
        """An override that makes a second user an instructor: each gets the class in their own
        calendar, neither counts as booked, and dropping one removes it from theirs only."""
        co = make_user(self.env, f"co{id(self)}")
        co_email = f"{co.login}@example.com"
        self.connect(co, co_email)
        model = self.registry["calendar.event"]
        base_query = model._impact_calendar_instructors_query
        co_query = (
            "SELECT att.event_id, u.id AS user_id FROM calendar_attendee att"
            f" JOIN res_users u ON u.partner_id = att.partner_id WHERE u.id = {co.id}"
        )
        with patch.object(
            model, "_impact_calendar_instructors_query", lambda m: f"{base_query(m)} UNION ALL {co_query}"
        ), patch.object(
            model, "_impact_calendar_instructors",
            lambda event: event.user_id | co.filtered(lambda u: u.partner_id in event.partner_ids),
        ):
            event = self.availability(name="Co-taught")
            event.write({"partner_ids": [Command.link(co.partner_id.id)]})
            self.push()
            self.assertEqual(self.sql_instructors(event), {self.instructor.id, co.id})
            self.assertFalse(event._impact_calendar_roster())
            self.assertFalse(self.link(event), "two instructors and no student: not a booked class")
            event.write({"partner_ids": [Command.link(self.students[0].id)]})
            self.push()
            for email in (self.email, co_email):
                self.assertIn("1 student booked", self.text(self.only_event(email)))
            event.write({"partner_ids": [Command.unlink(co.partner_id.id)]})
            self.push()
            self.assertFalse(self.external_events(co_email), "no longer an instructor")
            self.assertIn("1 student booked", self.text(self.only_event()))

    def test_autovacuum_drops_settled_links_of_deleted_and_old_classes(self):
        kept = self.availability(students=self.students[:1], name="Upcoming")
        removed = self.availability(students=self.students[:1], name="Removed")
        ancient = self.availability(
            students=self.students[:1], name="Ancient",
            start=self.start - timedelta(days=400), stop=self.start - timedelta(days=400) + timedelta(hours=1),
        )
        self.push()
        removed.unlink()
        self.push()  # deleted at the provider: its link is settled with nothing left there
        dirty = self.availability(students=self.students[:1], name="Not pushed yet")
        self.flush()
        self.env["impact.calendar.link"]._gc_settled_links()
        refs = set(self.env["impact.calendar.link"].sudo().search([]).mapped("event_ref"))
        self.assertIn(kept.id, refs)
        self.assertIn(dirty.id, refs, "a change still to push is never dropped")
        self.assertNotIn(removed.id, refs)
        self.assertNotIn(ancient.id, refs)

    def test_time_title_location_change_updates(self):
        event = self.availability(students=self.students[:1])
        self.push()
        event.write({
            "name": "Pottery — advanced 🏺",
            "start": self.start + timedelta(hours=2),
            "stop": self.start + timedelta(hours=4),
            "location": "Room 12",
        })
        self.push()
        external = self.only_event()
        self.assertIn("Pottery — advanced 🏺", self.title(external))
        self.assertEqual(self.side.location(external), "Room 12")
        self.assertEqual(self.side.times(external)[:2], ("utc", (self.start + timedelta(hours=2)).isoformat()))

    def test_archive_cancel_and_delete_remove_event(self):
        archived = self.availability(students=self.students[:1], name="Archived class")
        deleted = self.availability(students=self.students[:1], name="Deleted class")
        self.push()
        self.assertEqual(len(self.external_events()), 2)
        archived.action_archive()
        deleted.unlink()
        self.push()
        self.assertFalse(self.external_events())

    def test_organizer_change_moves_event(self):
        other = make_user(self.env, f"other{id(self)}")
        other_email = f"{other.login}@example.com"
        self.connect(other, other_email)
        event = self.availability(students=self.students[:1])
        self.push()
        self.only_event()
        event.write({"user_id": other.id, "partner_ids": [Command.link(other.partner_id.id)]})
        self.push()
        self.assertFalse(self.external_events())
        self.assertIn("Pottery", self.title(self.only_event(other_email)))

    def test_connect_backfills_future_booked_classes(self):
        late = make_user(self.env, f"late{id(self)}")
        self.availability(user=late, students=self.students[:1], name="Future A")
        self.availability(user=late, students=self.students[:2], name="Future B")
        self.availability(user=late, name="Nobody booked")
        self.availability(
            user=late, students=self.students[:1], name="Past",
            start=self.start - timedelta(days=30), stop=self.start - timedelta(days=30, hours=-1),
        )
        self.push()
        email = f"{late.login}@example.com"
        account = self.connect(late, email)
        self.flush()
        self.assertEqual(account.pending_count, 2, "backfill progress is visible before the push")
        self.push()
        titles = sorted(self.title(e) for e in self.external_events(email).values())
        self.assertEqual(titles, ["Future A", "Future B"])
        account.invalidate_recordset()
        self.assertEqual((account.pending_count, account.synced_count), (0, 2))
        self.assertTrue(account.last_push_at)

    def test_disconnect_removes_future_events_and_tokens(self):
        self.availability(students=self.students[:1])
        self.push()
        self.only_event()
        wizard = self.env["impact.calendar.disconnect"].with_user(self.instructor).create(
            {"account_id": self.account.id, "keep_events": False}
        )
        wizard.action_confirm()
        self.push()
        self.assertFalse(self.external_events())
        self.assertFalse(self.env["impact.calendar.account"].sudo().search([("user_id", "=", self.instructor.id)]))
        self.assertFalse(self.env["impact.calendar.credential"].sudo().search([("account_id", "=", self.account.id)]))
        self.assertEqual(self.side.revocations(), 1 if self.side.revokes_tokens else 0, "tokens revoked where the provider can")

    def test_recurring_class_pushes_each_booked_occurrence(self):
        self.availability(
            students=self.students[:1], name="Weekly clay",
            recurrency=True, rrule_type="daily", interval=1, end_type="count", count=3,
        )
        self.push()
        events = self.external_events()
        self.assertEqual(len(events), 3)
        self.assertEqual({self.title(e) for e in events.values()}, {"Weekly clay"})

    def native_sync(self, token):
        """Odoo's own sync of this provider installed: active by default, as it reports. A
        provider Odoo has no sync of: nothing to patch, and nothing may change."""
        status, token_field = providers.get(self.provider).native_sync
        if not self.side.native_sync:
            self.assertEqual((status, token_field), (None, None), "the side and the registry agree")
            return contextlib.nullcontext()
        users = type(self.env["res.users"])
        stack = contextlib.ExitStack()
        stack.enter_context(patch.object(users, status, lambda user: "sync_active", create=True))
        stack.enter_context(patch.object(users, token_field, token, create=True))
        return stack

    def test_native_odoo_sync_never_connected_is_no_conflict(self):
        with self.native_sync(token=False):
            self.availability(students=self.students[:1])
            self.push()
            self.assertEqual(len(self.external_events()), 1)
            self.assertFalse(self.instructor.impact_calendar_native_conflict)

    def test_native_odoo_sync_of_same_provider_is_not_doubled(self):
        with self.native_sync(token="native-token"):
            self.availability(students=self.students[:1])
            self.push()
            prefs = self.instructor.with_user(self.instructor)
            prefs.invalidate_recordset()
            if self.side.native_sync:
                self.assertFalse(self.external_events(), "Odoo's own sync already pushes it")
                self.assertTrue(prefs.impact_calendar_native_conflict)
            else:
                self.assertEqual(len(self.external_events()), 1, "no sync of Odoo's own to defer to")
                self.assertFalse(prefs.impact_calendar_native_conflict)
        self.env.invalidate_all()
        self.assertFalse(self.instructor.impact_calendar_native_conflict)

    def test_resync_pushes_everything_again(self):
        self.availability(students=self.students[:1], name="A")
        self.availability(students=self.students[:2], name="B")
        self.push()
        self.clear_log()
        self.instructor.with_user(self.instructor).action_impact_calendar_resync()
        self.push()
        self.assertEqual(self.api_calls(), 2)
        self.assertEqual(len(self.external_events()), 2)

    def test_disconnect_can_keep_events(self):
        self.availability(students=self.students[:1])
        self.push()
        wizard = self.env["impact.calendar.disconnect"].with_user(self.instructor).create(
            {"account_id": self.account.id, "keep_events": True}
        )
        wizard.action_confirm()
        self.push()
        self.only_event()
        self.assertFalse(self.account.exists())

    def test_losing_group_stops_sync_and_removes_future_events(self):
        event = self.availability(students=self.students[:1])
        self.push()
        self.instructor.write({compat.USER_GROUPS: [Command.unlink(self.env.ref(GROUP).id)]})
        self.push()
        self.assertFalse(self.external_events())
        event.write({"partner_ids": [Command.link(self.students[1].id)]})
        self.push()
        self.assertFalse(self.external_events(), "no sync without the group")

    def test_gone_on_update_recreates(self):
        event = self.availability(students=self.students[:1])
        self.push()
        external = self.only_event()
        self.delete_at_provider(external)
        event.write({"name": "Renamed"})
        self.push()
        recreated = self.only_event()
        if self.side.stable_ids:
            self.assertEqual(recreated["id"], external["id"], "made again under the name it had")
        else:
            self.assertNotEqual(recreated["id"], external["id"])
        self.assertEqual(self.title(recreated), "Renamed")

    def test_changes_in_external_calendar_never_reach_odoo(self):
        event = self.availability(students=self.students[:1])
        self.push()
        external = self.only_event()
        self.delete_at_provider(external)
        self.push()
        self.assertEqual(event.name, "Pottery for beginners")
        self.assertTrue(event.active)
        # Never read back: no listing of the events (events.list, GET /me/events, a REPORT).
        self.assertEqual(self.side.event_reads(), [])

    def test_unrelated_write_makes_no_api_call(self):
        event = self.availability(students=self.students[:1])
        self.push()
        self.clear_log()
        event.write({"alarm_ids": [Command.set([])], "privacy": "private"})
        event.message_post(body="Bring an apron")
        self.push()
        self.assertEqual(self.api_calls(), 0)

    def test_ten_writes_coalesce_into_one_call_and_undo_into_none(self):
        event = self.availability(students=self.students[:1])
        self.push()
        self.clear_log()
        for n in range(10):
            event.write({"location": f"Room {n}"})
            self.flush()
        self.push()
        self.assertEqual(self.api_calls(), 1)
        self.clear_log()
        event.write({"location": "Somewhere else"})
        self.flush()
        event.write({"location": "Room 9"})
        self.push()
        self.assertEqual(self.api_calls(), 0, "a change undone before the run costs nothing")

    def test_revoked_consent_pauses_then_resumes_after_reconnect(self):
        self.side.revoke(self.email)
        event = self.availability(students=self.students[:1])
        self.push()
        self.assertEqual(self.account.state, "needs_reconnect")
        self.assertEqual(self.link(event).state, "paused")
        self.assertTrue(self.link(event).dirty, "the change is kept, not lost")
        self.assertEqual(self.instructor.with_user(self.instructor).impact_calendar_state, "needs_reconnect")
        self.connect(self.instructor, self.email)
        self.push()
        self.assertIn("Pottery", self.title(self.only_event()))
        self.assertEqual(self.account.state, "connected")

    def test_rate_limit_schedules_retry_and_keeps_change(self):
        self.side.throttle_next()
        event = self.availability(students=self.students[:1])
        self.push()
        link = self.link(event)
        self.assertEqual(link.state, "retrying")
        self.assertTrue(link.dirty)
        self.assertTrue(link.next_try)
        self.assertFalse(self.external_events())
        link.sudo().write({"next_try": False})
        self.push()
        self.only_event()

    def test_server_errors_back_off_then_succeed(self):
        self.emulator.inject(self.side.events_path, status=503, body=self.side.error_body(503), times=1)
        event = self.availability(students=self.students[:1])
        self.push()
        link = self.link(event)
        self.assertEqual((link.state, link.attempts), ("retrying", 1))
        link.sudo().write({"next_try": False})
        self.push()
        self.only_event()
        self.assertEqual(self.link(event).attempts, 0)

    def test_privacy_setting_shows_names(self):
        self.env["ir.config_parameter"].sudo().set_param("impact_calendar.include_student_names", "True")
        self.availability(students=self.students[:2])
        self.push()
        self.assertIn("Student 1, Student 2", self.text(self.only_event()))

    def test_scope_domain_narrows_availabilities(self):
        tag = self.env["calendar.event.type"].create({"name": "Bookable"})
        self.env["ir.config_parameter"].sudo().set_param(
            "impact_calendar.event_domain", f"[('categ_ids', 'in', [{tag.id}])]"
        )
        private = self.availability(students=self.students[:1], name="Private meeting")
        self.availability(students=self.students[:1], name="Open class", categ_ids=[Command.set(tag.ids)])
        self.push()
        self.assertEqual([self.title(e) for e in self.external_events().values()], ["Open class"])
        private.write({"categ_ids": [Command.set(tag.ids)]})
        self.push()
        self.assertEqual(len(self.external_events()), 2)

    def test_all_day_class(self):
        self.availability(
            students=self.students[:1], allday=True,
            start_date=date(2026, 10, 24), stop_date=date(2026, 10, 25),
            start=date(2026, 10, 24), stop=date(2026, 10, 25),
        )
        self.push()
        self.assertEqual(self.side.times(self.only_event()), ("date", "2026-10-24", "2026-10-26"))

    def test_dst_boundary_keeps_utc_instant(self):
        # 2026-03-29 01:30 UTC: Brussels springs forward at 01:00 UTC that night.
        from datetime import datetime  # pylint: disable=import-outside-toplevel

        start = datetime(2026, 3, 29, 0, 30)
        self.availability(students=self.students[:1], start=start, stop=start + timedelta(hours=2))
        self.push()
        external = self.only_event()
        self.assertEqual(self.side.times(external)[:2], ("utc", start.isoformat()))

    def test_lost_answer_after_provider_accepted_create_makes_no_duplicate(self):
        # The provider creates the event, but its answer never reaches the worker (a crash
        # between the provider's answer and our commit looks the same from here).
        self.emulator.inject(self.side.push_paths, drop=True, after_handling=True, times=1)
        event = self.availability(students=self.students[:1])
        self.push()
        link = self.link(event)
        if self.side.client_resends_dropped:
            self.assertEqual((link.state, self.side.create_requests()), ("synced", 2), "the HTTP library sent it again at once")
        else:
            self.assertEqual((link.state, link.attempts, self.side.create_requests()), ("retrying", 1, 1))
            link.sudo().write({"next_try": False})
            self.push()
            self.assertEqual(self.side.create_requests(), 2, "the next run sent the create again")
        self.only_event()
        self.assertEqual(self.link(event).state, "synced")

    def test_backlog_of_100_classes_drains_in_whole_batches(self):
        for n in range(100):
            self.availability(students=self.students[:1], name=f"Backlog {n}")
        self.clear_log()
        self.push()
        self.assertEqual(len(self.external_events()), 100)
        # Google: 2 batches of 50; Graph: 5 $batch requests of 20; CalDAV: one PUT per class.
        self.assertEqual(self.side.push_requests(), self.side.requests_for(100))

    def test_booking_write_has_bounded_query_cost(self):
        events = self.env["calendar.event"]
        for n in range(100):
            events |= self.availability(students=self.students[:1], name=f"Class {n}")
        self.push()
        costs = {}
        for size in (1, 100):
            events[:size].write({"location": f"Room for {size}"})
            self.env.flush_all()
            before = self.env.cr.sql_log_count
            self.env["impact.calendar.link"]._append_changes()
            costs[size] = self.env.cr.sql_log_count - before
        # A handful of statements per transaction, whether it touched 1 event or 100.
        self.assertLessEqual(costs[1], 6, costs)
        self.assertLessEqual(costs[100], costs[1], costs)
        self.env["impact.calendar.link"]._fold_changes()
        self.assertEqual(self.link(events[:1]).dirty, True)


@tagged("post_install", "-at_install")
class TestGoogleSync(SyncBehaviour, SyncCase):
    provider = "google"
    allow_inherited_tests_method = True

    def test_a_run_drops_only_spent_wake_ups(self):
        """A booking's wake-up stays while its change is in the log; once a run has taken the
        log, the wake-ups made since the run began are spent, and dropped. Older ones (the
        scheduler's own clean-up) and future ones (retries) stay."""
        cron = self.env.ref("impact_calendar_integration.ir_cron_push_bookings")
        triggers = self.env["ir.cron.trigger"].sudo()
        run_started = self.synchronizer._db_now() - timedelta(seconds=5)
        before = triggers.search([("cron_id", "=", cron.id)])
        # The setup's own bookings, folded already, woke the worker after run_started too: spent.
        spent_before = before.filtered(lambda trigger: trigger.call_at >= run_started)
        older = triggers.create({"cron_id": cron.id, "call_at": run_started - timedelta(minutes=1)})
        later = triggers.create({"cron_id": cron.id, "call_at": run_started + timedelta(hours=1)})
        self.availability(students=self.students[:1])
        self.env.cr.flush()  # the booking's precommit: appends to the change log, wakes the worker
        woken = triggers.search([("cron_id", "=", cron.id)]) - before - older - later
        self.assertTrue(woken)
        self.synchronizer._drop_spent_triggers(run_started)
        self.assertEqual(triggers.search([("cron_id", "=", cron.id)]), before | older | later | woken, "its change is pending")
        self.env["impact.calendar.link"]._fold_changes()  # what a run does first
        self.synchronizer._drop_spent_triggers(run_started)
        self.assertEqual(triggers.search([("cron_id", "=", cron.id)]), before - spent_before | older | later)

    def _run_in_server(self, during_wait=(), burst=True):
        """One real ``_cron_push`` as a running server does it (waits and ends of transactions
        included, commits aside); ``during_wait``: what is committed during each wait, in turn;
        ``burst``: a round ended just before. Returns (pushed, waits); ``self.paced``: whether
        the run recorded a new gap."""
        during_wait = list(during_wait)
        waits = []

        def wait():
            waits.append(time.monotonic())
            if during_wait:
                during_wait.pop(0)()
                self.env.cr.flush()  # the booking's commit: its precommit appends to the change log

        synchronizer = type(self.synchronizer)
        key = (self.env.cr.dbname, threading.get_ident())
        pacer = pacing.RunPacer()
        if burst:
            pacer.caught_up(key, pacer.thread_clock())
        caught_up = pacer.last(key)
        with patch.object(compat, "testing", return_value=False), \
                patch.object(synchronizer, "_commit"), patch.object(synchronizer, "_rollback"), \
                patch.object(synchronizer, "_keep_run_gap", side_effect=wait), \
                patch.object(impact_calendar_synchronizer, "PACER", pacer):
            pushed = self.synchronizer._cron_push()
            self.paced = pacer.last(key) != caught_up
        return pushed, len(waits)

    def test_a_burst_is_served_by_one_run(self):
        """In a burst, a run that caught up waits its gap and pushes what was committed
        meanwhile, in the same run; it ends after a wait that brought nothing."""
        self.availability(students=self.students[:1])
        self.env.cr.flush()

        def later():
            self.availability(students=self.students[1:2], name="Booked during the wait")

        pushed, waits = self._run_in_server(during_wait=[lambda: None, later])
        self.assertEqual(pushed, 2)
        self.assertEqual(waits, 3, "before the run, after each push")
        self.assertEqual(len(self.external_events()), 2)

    def test_a_run_with_nothing_to_push_ends_at_once(self):
        """A spurious wake-up during a burst neither waits after its empty round nor moves the
        last push's gap, which decides when the next change may go out."""
        self.assertEqual(self._run_in_server(), (0, 1), "only the wait before the run")
        self.assertFalse(self.paced)

    def test_an_isolated_change_ends_its_run_at_once(self):
        self.availability(students=self.students[:1])
        self.env.cr.flush()
        self.assertEqual(self._run_in_server(burst=False), (1, 1))

    def test_backlog_wakes_every_push_worker(self):
        main = self.env.ref("impact_calendar_integration.ir_cron_push_bookings")
        extra = main.copy({"name": "External Calendar: push booked classes (worker 2)", "active": True})
        # A backlog of 250 links of classes that no longer exist: settled without any HTTP call.
        self.env.cr.execute(
            """INSERT INTO impact_calendar_link (event_ref, user_id, account_id, dirty, change_seq,
                                                 generation, state, attempts)
               SELECT -n, %s, %s, true, 1, 0, 'pending', 0 FROM generate_series(1, 250) n""",
            (self.instructor.id, self.account.id),
        )
        triggers = self.env["ir.cron.trigger"].sudo()
        before = triggers.search_count([("cron_id", "=", extra.id)])
        with self.no_http():
            self.assertEqual(self.synchronizer._cron_push(), 250)
        self.assertEqual(triggers.search_count([("cron_id", "=", extra.id)]), before + 1)
        self.assertEqual(self.synchronizer._workers(), main | extra)

    def test_deterministic_id_and_private_marker(self):
        event = self.availability(students=self.students[:1])
        self.push()
        external = self.only_event()
        self.assertEqual(external["id"], self.link(event).external_id)
        self.assertRegex(external["id"], r"^[a-v0-9]{5,1024}$")
        self.assertIn("impactCalendar", external["extendedProperties"]["private"])


@tagged("post_install", "-at_install")
class TestMicrosoftSync(SyncBehaviour, SyncCase):
    provider = "microsoft"
    allow_inherited_tests_method = True


@tagged("post_install", "-at_install")
class TestCaldavSyncBehaviour(SyncBehaviour, SyncCase):
    provider = "caldav"
    destination = "dedicated"  # a CalDAV account has only the calendar it makes
    allow_inherited_tests_method = True
