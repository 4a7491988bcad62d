# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""When a sync keeps failing, people are told (issue 23): the attention state of a connection,
the instructor's activity, the managers' filter, and all of it clearing by itself."""

from odoo.exceptions import AccessError
from odoo.tests import tagged

from ..sync import attention
from .common import make_user
from .sync_common import SyncCase

BATCH = r"^/batch/calendar/v3$"
OUTAGE = {"error": {"code": 503, "message": "Backend Error: the calendar service is down"}}


@tagged("post_install", "-at_install")
class TestAttention(SyncCase):
    provider = "google"

    def setUp(self):
        super().setUp()
        self.addCleanup(self.emulator.clear_faults)
        self.member = make_user(self.env, f"member{id(self)}")
        self.manager = make_user(self.env, f"manager{id(self)}", manager=True)

    # -- helpers ----------------------------------------------------------------------------
    def outage(self):
        """Every push to the provider fails (503) until the faults are cleared."""
        self.emulator.inject(BATCH, method="POST", status=503, body=OUTAGE, times=None)

    def failing_class(self):
        """A class whose push failed once: its link is retrying."""
        self.outage()
        event = self.availability(students=self.students[:1])
        self.push()
        link = self.link(event)
        self.assertEqual(link.state, "retrying")
        return event

    def failing_for(self, event, hours):
        """The link has been failing for ``hours``, and its retry is due now."""
        self.env.cr.execute(
            """UPDATE impact_calendar_link
                  SET first_failed_at = (now() AT TIME ZONE 'UTC') - make_interval(hours => %s), next_try = NULL
                WHERE id = %s""",
            (hours, self.link(event).id),
        )
        self.env["impact.calendar.link"].invalidate_model()
        return self.link(event).first_failed_at

    def activities(self, account=None):
        account = account or self.account
        return self.env["mail.activity"].sudo().search([
            ("res_model", "=", "impact.calendar.account"), ("res_id", "=", account.id),
            ("activity_type_id", "=", self.env.ref(
                "impact_calendar_integration.mail_activity_type_calendar_attention").id),
        ])

    def set_threshold(self, hours):
        settings = self.env["res.config.settings"].create({"impact_calendar_attention_hours": hours})
        settings.execute()

    # -- the link's first failure -------------------------------------------------------------
    def test_first_failure_is_kept_across_retries_and_cleared_by_a_success(self):
        event = self.failing_class()
        first = self.link(event).first_failed_at
        self.assertTrue(first, "the failure records when the link started failing")
        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE id = %s", (self.link(event).id,))
        self.push()
        link = self.link(event)
        self.assertEqual((link.state, link.attempts, link.first_failed_at), ("retrying", 2, first),
                         "a retry keeps the time of the first failure")
        self.emulator.clear_faults()
        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE id = %s", (link.id,))
        self.push()
        link = self.link(event)
        self.assertEqual((link.state, link.first_failed_at), ("synced", False), "a success clears it")

    # -- attention ------------------------------------------------------------------------------
    def test_failing_past_the_threshold_asks_for_attention_once_and_clears_on_success(self):
        event = self.failing_class()
        self.assertFalse(self.account.needs_attention, "a failure under the threshold tells nobody")
        self.assertFalse(self.activities())

        self.failing_for(event, 25)
        self.push()  # still failing, now for longer than a day
        self.assertEqual((self.account.needs_attention, self.account.attention_reason), (True, attention.FAILING))
        activity = self.activities()
        self.assertEqual(len(activity), 1, "one activity when attention starts")
        self.assertEqual(activity.user_id, self.instructor, "assigned to the instructor")
        self.assertIn("Odoo keeps trying", activity.note)
        self.assertIn("the calendar service is down", activity.note, "the provider's words")
        self.assertIn("the calendar service is down", self.account.attention_message)

        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE dirty")
        self.push()  # another failed retry
        self.env["impact.calendar.account"]._cron_update_attention()
        self.assertEqual(self.activities(), activity, "no second activity on a retry")
        self.assertEqual(self.link(event).state, "retrying", "the retries go on")

        self.emulator.clear_faults()
        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE dirty")
        self.push()
        self.assertEqual(self.link(event).state, "synced")
        self.assertEqual((self.account.needs_attention, self.account.attention_reason), (False, False),
                         "a success clears the attention state")
        self.assertFalse(self.activities(), "the activity is done")
        self.assertFalse(self.instructor.with_user(self.instructor).impact_calendar_attention_message)

    def test_under_the_threshold_nothing_happens(self):
        event = self.failing_class()
        self.failing_for(event, 23)
        self.push()
        self.env["impact.calendar.account"]._cron_update_attention()
        self.assertFalse(self.account.needs_attention)
        self.assertFalse(self.activities())
        self.assertFalse(self.instructor.with_user(self.instructor).impact_calendar_attention_reason)

    def test_a_link_waiting_out_its_backoff_reaches_the_threshold_by_the_hourly_check(self):
        event = self.failing_class()
        self.env.cr.execute(
            """UPDATE impact_calendar_link SET first_failed_at = (now() AT TIME ZONE 'UTC') - interval '30 hours',
                      next_try = (now() AT TIME ZONE 'UTC') + interval '1 hour' WHERE id = %s""",
            (self.link(event).id,),
        )
        self.env["impact.calendar.link"].invalidate_model()
        self.assertEqual(self.push(), 0, "nothing is due: no round evaluates the account")
        cron = self.env.ref("impact_calendar_integration.ir_cron_attention")
        self.assertEqual((cron.active, cron.interval_number, cron.interval_type), (True, 1, "hours"))
        cron.ir_actions_server_id.run()  # the scheduled action's code, in this transaction
        self.assertEqual(self.account.attention_reason, attention.FAILING)
        self.assertEqual(len(self.activities()), 1)

    def test_the_threshold_setting_is_honoured(self):
        self.set_threshold(2)
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("impact_calendar.attention_hours"), "2")
        event = self.failing_class()
        self.failing_for(event, 3)
        self.push()
        self.assertEqual(self.account.attention_reason, attention.FAILING, "3 hours > the 2 set")
        self.set_threshold(48)
        self.env["impact.calendar.account"]._cron_update_attention()
        self.assertFalse(self.account.needs_attention, "3 hours < the 48 set")
        self.assertFalse(self.activities())

    def test_a_revoked_consent_asks_to_reconnect_at_once_and_clears_on_reconnect(self):
        self.emulator.revoke_user(self.email)
        self.emulator.expire_access_tokens(self.email)
        self.availability(students=self.students[:1])
        self.push()
        self.assertEqual(self.account.state, "needs_reconnect")
        self.assertEqual(self.account.attention_reason, attention.RECONNECT, "no threshold for a revoked consent")
        activity = self.activities()
        self.assertEqual((len(activity), activity.user_id), (1, self.instructor))
        self.assertIn("Reconnect", activity.note)
        mine = self.instructor.with_user(self.instructor)
        self.assertEqual(mine.impact_calendar_attention_reason, attention.RECONNECT)
        self.assertIn("Preferences > External", mine.impact_calendar_attention_message)
        self.connect(self.instructor, self.email)
        self.assertFalse(self.account.needs_attention, "reconnected: nothing left to do")
        self.assertFalse(self.activities())
        self.push()
        self.assertFalse(self.account.needs_attention)

    def test_a_dedicated_calendar_that_cannot_be_made_again_says_so(self):
        event = self.failing_class()
        self.account.sudo().write({"destination": "dedicated", "calendar_id": False})
        self.failing_for(event, 25)
        self.env["impact.calendar.account"]._cron_update_attention()
        self.assertEqual(self.account.attention_reason, attention.CALENDAR_DELETED)
        self.assertIn("was deleted", self.activities().note)

    def test_the_reason_changes_without_a_second_activity(self):
        event = self.failing_class()
        self.failing_for(event, 25)
        self.push()
        activity = self.activities()
        self.assertEqual(self.account.attention_reason, attention.FAILING)
        self.account._mark_needs_reconnect("invalid_grant")
        self.account._update_attention()
        self.assertEqual(self.account.attention_reason, attention.RECONNECT)
        self.assertEqual(self.activities(), activity, "the same activity, its text updated")
        self.assertIn("Reconnect", activity.note)

    def test_only_one_of_two_evaluations_makes_the_change(self):
        """Two workers evaluating the account at once: the second finds the change made (its
        guarded UPDATE matches nothing) and leaves the activity to the first."""
        self.assertTrue(self.account._attention_change(attention.FAILING))
        self.assertFalse(self.account._attention_change(attention.FAILING), "already made")
        self.assertEqual((self.account.needs_attention, self.account.attention_reason), (True, attention.FAILING))
        self.assertTrue(self.account.attention_since)
        self.assertTrue(self.account._attention_change(None))
        self.assertEqual((self.account.needs_attention, self.account.attention_since), (False, False))

    # -- who sees it ------------------------------------------------------------------------
    def test_managers_find_it_with_the_needs_attention_filter(self):
        calm = self.connect(self.member, f"{self.member.login}@example.com")
        event = self.failing_class()
        self.failing_for(event, 25)
        self.push()
        view = self.env["impact.calendar.account"].with_user(self.manager).get_views([(False, "search")])
        arch = view["views"]["search"]["arch"]
        self.assertIn('name="needs_attention"', arch, "the search view offers the filter")
        found = self.env["impact.calendar.account"].with_user(self.manager).search([("needs_attention", "=", True)])
        self.assertIn(self.account, found)
        self.assertNotIn(calm, found)
        self.assertEqual(
            self.instructor.with_user(self.manager).impact_calendar_attention_reason, attention.FAILING,
            "managers see it on the user too",
        )

    def test_a_member_cannot_see_another_members_attention(self):
        self.connect(self.member, f"{self.member.login}@example.com")
        event = self.failing_class()
        self.failing_for(event, 25)
        self.push()
        self.assertTrue(self.account.needs_attention)
        other = self.env["impact.calendar.account"].with_user(self.member)
        self.assertNotIn(self.account, other.search([("needs_attention", "=", True)]))
        with self.assertRaises(AccessError):
            other.browse(self.account.id).read(["attention_reason", "attention_message"])
        activity = self.activities()
        with self.assertRaises(AccessError):
            activity.with_user(self.member).read(["note"])
        self.assertFalse(self.env["mail.activity"].with_user(self.member).search([("id", "=", activity.id)]))
        with self.assertRaises(AccessError):
            other.browse(self.account.id).message_post(body="hello")
        seen = self.instructor.with_user(self.member)
        self.assertEqual((seen.impact_calendar_attention_reason, seen.impact_calendar_attention_message), (False, False))
        # The instructor herself reads her activity and the account it points to.
        activity.with_user(self.instructor).read(["note", "res_id"])
        self.account.with_user(self.instructor).read(["attention_reason", "attention_message"])
        self.account.with_user(self.manager).message_post(body="We are looking into it.")

    def test_disconnecting_removes_the_activity(self):
        event = self.failing_class()
        self.failing_for(event, 25)
        self.push()
        self.assertEqual(len(self.activities()), 1)
        account_id = self.account.id
        self.account.with_user(self.instructor)._disconnect(keep_events=True)
        self.assertFalse(self.env["mail.activity"].sudo().search(
            [("res_model", "=", "impact.calendar.account"), ("res_id", "=", account_id)]))
