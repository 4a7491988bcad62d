# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A user who is archived or loses the group keeps no token (issue 21, finding 6): their
account is disconnected as a disconnect that does not keep the classes (the behaviour table's
"instructor loses the group": future classes removed), then revoked at Google and erased."""

from odoo import Command
from odoo.tests import tagged

from .. import compat
from .common import GROUP
from .sync_common import SyncCase


@tagged("post_install", "-at_install")
class TestDepartedUsers(SyncCase):
    def grants(self):
        with self.emulator._state_lock:  # pylint: disable=protected-access
            return [grant.revoked for grant in self.emulator.grants if grant.email == self.email]

    def assert_erased(self):
        account_id = self.account.id
        self.assertFalse(self.account.exists(), "the account outlived its user's right to it")
        self.assertFalse(self.env["impact.calendar.credential"].sudo().search([("account_id", "=", account_id)]))
        self.env.cr.execute("SELECT count(*) FROM impact_calendar_credential WHERE account_id = %s", [account_id])
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        self.assertTrue(self.grants() and all(self.grants()), "the grant was not revoked at Google")

    def assert_removed_then_erased(self, leave):
        """A pushed class; ``leave()``; the next run removes it, then revokes and erases."""
        self.availability(students=self.students[:1])
        self.push()
        self.only_event()
        leave()
        self.assertEqual(self.account.state, "disconnecting")
        self.assertFalse(any(self.grants()), "revoked before the classes were removed")
        self.push()
        self.assertFalse(self.external_events(), "the future classes stayed in the calendar")
        self.assert_erased()

    def test_archived_user(self):
        self.assert_removed_then_erased(lambda: self.instructor.write({"active": False}))

    def test_group_taken_from_the_user(self):
        group = self.env.ref(GROUP)
        self.assert_removed_then_erased(
            lambda: self.instructor.write({compat.USER_GROUPS: [Command.unlink(group.id)]})
        )

    def test_user_taken_out_of_the_group(self):
        group = self.env.ref(GROUP)
        self.assert_removed_then_erased(
            lambda: group.write({compat.GROUP_USERS: [Command.unlink(self.instructor.id)]})
        )

    def test_nothing_pushed_erases_at_once(self):
        self.instructor.write({"active": False})
        self.assert_erased()

    def test_daily_check_catches_what_the_hooks_missed(self):
        def leave_in_sql():
            field = self.env["res.users"]._fields[compat.USER_GROUPS]
            self.env.flush_all()
            self.env.cr.execute(
                f"DELETE FROM {field.relation} WHERE {field.column1} = %s",  # pylint: disable=sql-injection
                [self.instructor.id],
            )
            self.env.registry.clear_cache()
            self.env.registry.clear_cache("groups")
            self.env.invalidate_all()
            self.assertEqual(self.account.state, "connected")
            self.env["impact.calendar.account"]._gc_departed_users()

        self.assert_removed_then_erased(leave_in_sql)

    def test_members_keep_their_account(self):
        self.instructor.write({"name": "Renamed", compat.USER_GROUPS: [Command.link(self.env.ref("base.group_user").id)]})
        self.env["impact.calendar.account"]._gc_departed_users()
        self.assertEqual(self.account.state, "connected")
        self.assertFalse(any(self.grants()))
