# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Classes in a dedicated calendar (issue 13), on both providers, against the emulators:
least privilege, batching, switching destination, a calendar deleted at the provider,
disconnect, and a calendar create resent after a worker died."""

import json
import math
from datetime import timedelta

from odoo import Command, fields
from odoo.tests import tagged

from .pushing import push_create
from .sync_common import LiveConnection, SyncCase, dead_backend_pid


class DedicatedBehaviour:
    destination = "dedicated"

    # -- helpers ------------------------------------------------------------------------------
    def calendar_id(self):
        self.account.invalidate_recordset()
        return self.account.calendar_id

    def calendar_events(self, calendar_id=None, email=None):
        calendar_id = calendar_id or self.calendar_id()
        email = email or self.email
        if self.provider == "google":
            return self.emulator.calendar_events(email, calendar_id)
        return {event["id"]: event for event in self.emulator.calendar_events(email, calendar_id)}

    def provider_calendars(self):
        return self.emulator.calendars(self.email)

    def calendar_creates(self):
        path = r"^/calendar/v3/calendars$" if self.provider == "google" else r"/me/calendars$"
        return len(self.emulator.requests(path, "POST"))

    def batches(self):
        path = r"^/batch/calendar/v3$" if self.provider == "google" else r"/\$batch$"
        return len(self.emulator.requests(path, "POST"))

    def main_calendar_paths(self):
        """Every request (batch parts and $batch items included) that reached the main calendar."""
        if self.provider == "google":
            return [r.path for r in self.emulator.log + self.emulator.part_log if "/calendars/primary" in r.path]
        paths = [r.path for r in self.emulator.log]
        for request in self.emulator.requests(r"/\$batch$", "POST"):
            paths += [item["url"] for item in json.loads(request.body)["requests"]]
        return [path for path in paths if "/me/calendar/" in path or "/me/events" in path]

    def classes(self, count, students=1):
        return [
            self.availability(students=self.students[:students], name=f"Class {n}", start=self.start + timedelta(hours=n),
                              stop=self.start + timedelta(hours=n, minutes=45))
            for n in range(count)
        ]

    def notice(self):
        self.instructor.invalidate_recordset()
        return self.instructor.sudo().impact_calendar_notice_text or ""

    # -- tests -----------------------------------------------------------------------------------
    def test_first_push_of_100_classes_into_a_new_calendar_never_touches_main(self):
        self.assertEqual(self.account.destination, "dedicated")
        self.classes(100)
        self.push()
        calendar_id = self.calendar_id()
        self.assertTrue(calendar_id)
        self.assertEqual(len(self.calendar_events(calendar_id)), 100)
        self.assertFalse(self.external_events(), "nothing in the main calendar")
        names = [c.get("summary") or c.get("name") for c in self.provider_calendars().values()]
        self.assertEqual(names, ["Classes"])
        size = 50 if self.provider == "google" else 20
        self.assertEqual((self.calendar_creates(), self.batches()), (1, math.ceil(100 / size)))
        self.assertEqual(self.main_calendar_paths(), [], "least privilege: the main calendar is never touched")
        self.assertEqual(set(self.env["impact.calendar.link"].sudo().search([]).mapped("external_calendar")), {calendar_id})

    def test_updates_and_deletes_stay_in_the_calendar_named_in_settings(self):
        self.env["ir.config_parameter"].sudo().set_param("impact_calendar.dedicated_calendar_name", "Yoga classes")
        event = self.availability(students=self.students[:1])
        self.push()
        self.assertEqual(
            [c.get("summary") or c.get("name") for c in self.provider_calendars().values()], ["Yoga classes"]
        )
        event.write({"partner_ids": [Command.link(self.students[1].id)]})
        self.push()
        (only,) = self.calendar_events().values()
        self.assertIn("2 students booked", self.text(only))
        event.write({"partner_ids": [Command.unlink(self.students[0].id), Command.unlink(self.students[1].id)]})
        self.push()
        self.assertFalse(self.calendar_events())
        self.assertEqual(self.calendar_creates(), 1)
        self.assertEqual(self.main_calendar_paths(), [])

    def test_calendar_deleted_at_the_provider_is_made_again_with_every_class(self):
        first, second = self.classes(2)
        self.push()
        old = self.calendar_id()
        self.assertTrue(self.account._client().delete_calendar(old).ok)  # the user deletes it
        first.write({"name": "Class 0 (moved)"})
        self.push()
        new = self.calendar_id()
        self.assertTrue(new and new != old)
        titles = sorted(self.title(e) for e in self.calendar_events(new).values())
        self.assertEqual(len(titles), 2)
        self.assertIn("Class 0 (moved)", titles[0])
        self.assertEqual(list(self.provider_calendars()), [new])
        self.assertIn("was deleted", self.notice())
        self.assertTrue(all(link.state == "synced" for link in self.link(first) | self.link(second)))

    def test_switching_destination_moves_every_class_without_duplicates(self):
        self.classes(3)
        self.push()
        dedicated = self.calendar_id()
        self.assertEqual(len(self.calendar_events(dedicated)), 3)
        # Switch to the main calendar: a reconnect with the other value.
        self.account = self.connect(self.instructor, self.email, "main")
        self.assertEqual(self.account.destination, "main")
        self.flush()
        self.synchronizer._push_round()  # interrupted after one round: removed, not yet created
        self.assertFalse(self.calendar_events(dedicated))
        self.assertFalse(self.external_events())
        links = self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id)])
        self.assertTrue(all(link.dirty and not link.external_id for link in links), "nothing lost: still to push")
        self.synchronizer._drain()
        self.assertEqual(len(self.external_events()), 3)
        self.assertFalse(self.calendar_events(dedicated))
        # And back: the stored calendar still exists and is reused.
        self.account = self.connect(self.instructor, self.email, "dedicated")
        self.push()
        self.assertEqual(self.calendar_id(), dedicated)
        self.assertEqual(len(self.calendar_events(dedicated)), 3)
        self.assertFalse(self.external_events())
        self.assertEqual(len(self.provider_calendars()), 1)

    def test_reconnect_to_the_same_account_reuses_the_calendar(self):
        self.classes(1)
        self.push()
        calendar_id = self.calendar_id()
        self.account = self.connect(self.instructor, self.email)
        self.account.action_resync()
        self.push()
        self.assertEqual(self.calendar_id(), calendar_id)
        self.assertEqual(len(self.provider_calendars()), 1)
        self.assertEqual(len(self.calendar_events(calendar_id)), 1)

    def test_disconnect_deletes_the_calendar_in_one_call(self):
        self.classes(3)
        self.push()
        calendar_id = self.calendar_id()
        self.clear_log()
        self.account._disconnect(keep_events=False)
        self.push()
        self.env["impact.calendar.account"].sudo().search([("state", "=", "disconnecting")])._finish_disconnect_if_done()
        self.assertFalse(self.provider_calendars())
        self.assertFalse(self.calendar_events(calendar_id))
        self.assertFalse(self.account.exists())
        if self.provider == "google":
            calls = [(r.method, r.path) for r in self.emulator.log + self.emulator.part_log if r.path.startswith("/calendar")]
            self.assertEqual(len(calls), 1, calls)
            self.assertEqual(calls[0][0], "DELETE")
            self.assertEqual(len(self.emulator.requests(r"/revoke$", "POST")), 1)
        else:
            self.assertEqual([r.method for r in self.emulator.requests(r"/me/")], ["DELETE"])
            self.assertFalse(self.emulator.requests(r"/\$batch$"))

    def test_disconnect_keeping_classes_leaves_the_calendar(self):
        self.classes(2)
        self.push()
        calendar_id = self.calendar_id()
        self.account._disconnect(keep_events=True)
        self.assertFalse(self.account.exists())
        self.assertEqual(len(self.calendar_events(calendar_id)), 2)

    def test_calendar_create_resent_after_a_dead_worker(self):
        """A worker died after sending the create: the next one resends with the same guard.
        Graph finds the first calendar by it; Google cannot (calendarList.list needs a wider
        scope), so a second calendar is made and the user is told of the possible orphan."""
        client = self.account._client()
        orphan = client.create_calendar("Classes", "guard-1").external_id  # the lost answer
        self.account.sudo().write({
            "calendar_create_guard": "guard-1",
            "calendar_create_sent_at": fields.Datetime.now() - timedelta(hours=1),
        })
        self.classes(1)
        self.push()
        calendar_id = self.calendar_id()
        self.assertEqual(len(self.calendar_events(calendar_id)), 1)
        if self.account._provider().calendar_create_idempotent:
            self.assertEqual(calendar_id, orphan)
            self.assertEqual(len(self.provider_calendars()), 1)
            self.assertFalse(self.notice())
        else:
            self.assertNotEqual(calendar_id, orphan)
            self.assertIn("empty calendar", self.notice())

    def test_calendar_being_created_by_another_worker_is_waited_for(self):
        with LiveConnection(self.env) as pid:  # that worker's call is in flight
            self.account.sudo().write({
                "calendar_create_guard": "g", "calendar_create_sent_at": fields.Datetime.now(), "calendar_create_pid": pid,
            })
            event = self.classes(1)[0]
            self.push()
        self.assertEqual(self.calendar_creates(), 0)
        link = self.link(event)
        self.assertTrue(link.dirty)
        self.assertEqual(link.state, "retrying")

    def assert_one_calendar_after_a_resend(self, orphan):
        """The classes are in the account's calendar; a provider that finds the first try's
        calendar by its guard reuses it, the other tells the user of the possible orphan."""
        calendar_id = self.calendar_id()
        self.assertEqual(len(self.calendar_events(calendar_id)), 1)
        if self.account._provider().calendar_create_idempotent:
            self.assertEqual(calendar_id, orphan)
            self.assertEqual(len(self.provider_calendars()), 1, "no second calendar")
            self.assertFalse(self.notice())
        else:
            self.assertNotEqual(calendar_id, orphan)
            self.assertIn("empty calendar", self.notice())

    def test_calendar_create_of_a_killed_worker_is_resent_at_once(self):
        """The sender died a moment ago (its connection is gone): nobody waits out the lease."""
        orphan = self.account._client().create_calendar("Classes", "guard-1").external_id  # its call
        self.account.sudo().write({
            "calendar_create_guard": "guard-1", "calendar_create_sent_at": fields.Datetime.now(),
            "calendar_create_pid": dead_backend_pid(self.env),
        })
        self.classes(1)
        self.push()
        self.assert_one_calendar_after_a_resend(orphan)

    def test_calendar_create_whose_answer_was_lost_is_resent_by_the_next_run(self):
        """The provider made the calendar but its answer was lost (503): the worker knows its call
        ended, so the next run resends with the same guard instead of waiting out the lease."""
        path = r"^/calendar/v3/calendars$" if self.provider == "google" else r"/me/calendars$"
        self.emulator.inject(path, method="POST", status=503, after_handling=True, body={"error": {"code": 503}})
        event = self.classes(1)[0]
        self.push()
        (orphan,) = self.provider_calendars()
        self.assertFalse(self.calendar_id())
        self.assertEqual(self.link(event).state, "retrying")
        self.assertFalse(self.account.calendar_create_sent_at, "no call is in flight")
        self.assertTrue(self.account.calendar_create_guard, "kept for the resend")
        # The classes' retry is due (a few seconds later): the next run sends.
        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE dirty")
        self.env["impact.calendar.link"].invalidate_model()
        self.push()
        self.assert_one_calendar_after_a_resend(orphan)
        self.assertEqual(self.link(event).state, "synced")


@tagged("post_install", "-at_install")
class TestGoogleDedicated(DedicatedBehaviour, SyncCase):
    provider = "google"
    allow_inherited_tests_method = True

    def test_consent_of_a_dedicated_connection_cannot_reach_primary(self):
        client = self.account._client()
        outcome = push_create(client, {"summary": "x", "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}, "impact0000g0")
        self.assertEqual(outcome.status, 403)


@tagged("post_install", "-at_install")
class TestMicrosoftDedicated(DedicatedBehaviour, SyncCase):
    provider = "microsoft"
    allow_inherited_tests_method = True


@tagged("post_install", "-at_install")
class TestDestinationSettings(SyncCase):
    def test_default_and_forced_destination(self):
        accounts = self.env["impact.calendar.account"]
        params = self.env["ir.config_parameter"].sudo()
        self.assertEqual(accounts._choose_destination(None), "dedicated")
        self.assertEqual(accounts._choose_destination("main"), "main")
        params.set_param("impact_calendar.default_destination", "main")
        self.assertEqual(accounts._choose_destination("bogus"), "main")
        params.set_param("impact_calendar.force_destination", "True")
        self.assertEqual(accounts._choose_destination("dedicated"), "main")
        self.assertEqual(accounts._calendar_name(), "Classes")

    def test_preferences_choice_goes_into_the_start_url(self):
        user = self.instructor.with_user(self.instructor)
        self.assertEqual(user.impact_calendar_destination_choice, "dedicated")
        user.write({"impact_calendar_destination_choice": "main"})
        user.invalidate_recordset()
        self.assertEqual(user.impact_calendar_destination_choice, "main")
        action = user.action_impact_calendar_connect_microsoft()
        self.assertTrue(action["url"].endswith("/impact_calendar/oauth/microsoft/start?destination=main"))
        switch = user.action_impact_calendar_switch_destination()
        self.assertTrue(switch["url"].endswith("start?destination=dedicated"))
