# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A user who is archived or loses the group keeps no token (issue 21, finding 6): their
account is disconnected as a disconnect that does not keep the classes (the behaviour table's
"instructor loses the group": future classes removed), then revoked at Google and erased."""

from odoo import Command
from odoo.modules import neutralize
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

from .. import compat
from .common import GROUP, connect_offline, make_user
from .sync_common import SyncCase
from .test_rpc_sweep import SECRET_FIELD


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


@tagged("post_install", "-at_install")
class TestNeutralizeLeavesNoSecret(TransactionCase):
    def test_every_stored_secret_is_wiped(self):
        user = make_user(self.env, "neutral_teacher")
        connect_offline(user)
        self.env["impact.calendar.caldav.wizard"].with_user(user).create(
            {"server_url": "https://caldav.example/", "username": "neutral", "password": "app-pass"}
        )
        self.env["ir.config_parameter"].sudo().set_param("impact_calendar.include_student_names", False)
        user.with_user(user).action_impact_calendar_feed_regenerate()
        for query in neutralize.get_neutralization_queries(["impact_calendar_integration"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        # Every stored field of the addon's models whose name says it holds a secret.
        left, checked = [], []
        for model_name in self.registry:
            model = self.env[model_name]
            if model._original_module != "impact_calendar_integration" or model._abstract:
                continue
            for name, field in model._fields.items():
                if field.store and field.column_type and SECRET_FIELD.search(name):
                    checked.append(f"{model_name}.{name}")
                    self.env.cr.execute(
                        SQL("SELECT count(*) FROM %s WHERE %s IS NOT NULL",
                            SQL.identifier(model._table), SQL.identifier(name))
                    )
                    if self.env.cr.fetchone()[0]:
                        left.append(f"{model_name}.{name}")
        self.assertIn("impact.calendar.caldav.wizard.password_secret", checked)
        self.assertIn("impact.calendar.credential.secret", checked)
        self.assertFalse(left, "secrets a neutralized copy keeps")
