# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Recovery (issue 22): after an outage, every calendar equals Odoo as soon as the provider
answers again, on both providers; a killed worker's claims cost seconds, not a lease."""

from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from ..sync import outbox
from .sync_common import SyncCase, dead_backend_pid


class RecoveryBehaviour:
    def setUp(self):
        super().setUp()
        self.addCleanup(self.emulator.clear_faults)

    def classes(self, count, prefix="Class"):
        return [
            self.availability(students=self.students[:1], name=f"{prefix} {n}", start=self.start + timedelta(hours=n),
                              stop=self.start + timedelta(hours=n, minutes=45))
            for n in range(count)
        ]

    @property
    def batch_path(self):
        """Where a push goes: a batch, or (Graph, one operation) the single request."""
        return r"^/batch/calendar/v3$" if self.provider == "google" else r"/\$batch$|/events$"

    def links(self):
        self.env["impact.calendar.link"].invalidate_model()
        return self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id)])

    def titles(self):
        return sorted(self.title(event) for event in self.external_events().values())

    def test_changes_whose_answer_was_lost_go_out_when_the_account_answers_again(self):
        """A batch is applied but its answer lost (503): its links wait on a backoff. The next
        push to that account succeeds, so they are settled in the same run, not 30 s to an
        hour later, and the idempotent creates make no second event."""
        lost = self.classes(2)
        self.emulator.inject(self.batch_path, method="POST", status=503, after_handling=True,
                             body={"error": {"code": 503, "message": "Service Unavailable"}})
        self.push()
        self.assertEqual(len(self.external_events()), 2, "the provider applied the batch")
        now = fields.Datetime.now()
        waiting = self.links()
        self.assertTrue(all(link.state == "retrying" and link.next_try > now for link in waiting))
        self.assertEqual(set(waiting.mapped("wait_reason")), {outbox.WAIT_BACKOFF})
        lost[0].write({"name": "Class 0 (renamed)"})  # and the outage is over
        self.classes(1, prefix="Later")
        self.push()
        links = self.links()
        self.assertEqual(set(links.mapped("state")), {"synced"}, links.mapped("last_error"))
        self.assertFalse(any(links.mapped("dirty")))
        self.assertEqual(self.titles(), ["Class 0 (renamed)", "Class 1", "Later 0"])

    def test_a_class_unbooked_after_its_create_answer_was_lost_leaves_no_event(self):
        """The create was applied but its answer lost, then the last student left: Odoo holds no
        id of the event, yet it must go."""
        event = self.classes(1)[0]
        self.emulator.inject(self.batch_path, method="POST", status=503, after_handling=True,
                             body={"error": {"code": 503, "message": "Service Unavailable"}})
        self.push()
        self.assertEqual(len(self.external_events()), 1, "the provider applied the create")
        self.assertFalse(self.link(event).external_id)
        event.write({"partner_ids": [(3, self.students[0].id)]})
        self.flush()
        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE dirty")  # its retry is due
        self.env["impact.calendar.link"].invalidate_model()
        self.push()
        self.assertEqual(self.external_events(), {})
        link = self.link(event)
        self.assertEqual((link.state, link.dirty, link.external_id), ("synced", False, False))

    def test_a_throttled_account_keeps_its_retry_after_when_another_push_succeeds(self):
        throttled = self.classes(2)
        self.emulator.inject(self.batch_path, method="POST", status=429, headers={"Retry-After": "120"},
                             body={"error": {"code": 429, "message": "Too many requests"}})
        self.push()
        self.classes(1, prefix="Later")
        self.push()
        self.assertEqual(self.titles(), ["Later 0"])
        for event in throttled:
            link = self.link(event)
            self.assertEqual((link.state, link.wait_reason), ("retrying", outbox.WAIT_THROTTLE))
            self.assertGreater(link.next_try, fields.Datetime.now() + timedelta(seconds=60))

    def test_claims_of_a_killed_worker_are_taken_over_within_seconds(self):
        """A worker was killed mid-push a few seconds ago: its connection is gone, so its claim
        is taken over now, not when the 300 s lease ends."""
        event = self.classes(1)[0]
        self.flush()
        link = self.link(event)
        self.env.cr.execute(
            """UPDATE impact_calendar_link SET claim_token = 'killed', claim_pid = %s,
                      claimed_until = (now() AT TIME ZONE 'UTC') + interval '290 seconds' WHERE id = %s""",
            (dead_backend_pid(self.env), link.id),
        )
        self.env["impact.calendar.link"].invalidate_model()
        self.push()
        self.assertEqual(self.titles(), ["Class 0"])
        self.assertEqual((link.state, link.dirty, link.claim_token), ("synced", False, False))


@tagged("post_install", "-at_install")
class TestGoogleRecovery(RecoveryBehaviour, SyncCase):
    provider = "google"
    allow_inherited_tests_method = True


@tagged("post_install", "-at_install")
class TestMicrosoftRecovery(RecoveryBehaviour, SyncCase):
    provider = "microsoft"
    allow_inherited_tests_method = True
