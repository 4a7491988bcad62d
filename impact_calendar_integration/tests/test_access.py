# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.exceptions import AccessError
from odoo.modules import neutralize
from odoo.tests import TransactionCase, tagged

from .common import connect_offline, make_user


@tagged("post_install", "-at_install")
class TestAccess(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = make_user(cls.env, "alice")
        cls.bob = make_user(cls.env, "bob")
        cls.outsider = make_user(cls.env, "outsider", integration=False)
        cls.manager = make_user(cls.env, "manager", manager=True)
        cls.alice_account = connect_offline(cls.alice)
        cls.bob_account = connect_offline(cls.bob, provider="microsoft")

    def test_outsider_cannot_read_or_write_connections(self):
        accounts = self.env["impact.calendar.account"].with_user(self.outsider)
        with self.assertRaises(AccessError):
            accounts.search([])
        with self.assertRaises(AccessError):
            self.alice_account.with_user(self.outsider).read(["email"])
        with self.assertRaises(AccessError):
            self.alice_account.with_user(self.outsider).write({"email": "x@example.com"})

    def test_member_sees_only_own_connection(self):
        accounts = self.env["impact.calendar.account"].with_user(self.alice)
        self.assertEqual(accounts.search([]), self.alice_account)
        self.assertEqual(self.alice_account.with_user(self.alice).email, "alice@example.com")
        with self.assertRaises(AccessError):
            self.bob_account.with_user(self.alice).read(["email"])
        with self.assertRaises(AccessError):
            self.alice_account.with_user(self.alice).write({"state": "needs_reconnect"})

    def test_manager_sees_every_connection_but_no_token(self):
        accounts = self.env["impact.calendar.account"].with_user(self.manager)
        self.assertEqual(accounts.search([]), self.alice_account | self.bob_account)
        with self.assertRaises(AccessError):
            self.env["impact.calendar.credential"].with_user(self.manager).search([])

    def test_tokens_unreadable_over_rpc_for_owner_other_user_and_admin(self):
        credential = self.alice_account._credential()
        self.assertTrue(credential.secret)
        for user in (self.alice, self.bob, self.env.ref("base.user_admin")):
            with self.subTest(user=user.login):
                with self.assertRaises(AccessError):
                    credential.with_user(user).read(["secret"])
                with self.assertRaises(AccessError):
                    self.env["impact.calendar.credential"].with_user(user).search_read([], ["secret"])

    def test_refresh_token_encrypted_at_rest(self):
        self.env.cr.execute(
            "SELECT secret FROM impact_calendar_credential WHERE account_id = %s", (self.alice_account.id,)
        )
        stored = self.env.cr.fetchone()[0]
        self.assertNotIn("rt-alice", stored)
        self.assertTrue(stored.startswith("fernet1:"))
        self.assertEqual(self.alice_account._credential()._read_tokens().refresh_token, "rt-alice")

    def test_other_user_cannot_disconnect_or_resync(self):
        with self.assertRaises(AccessError):
            self.alice_account.with_user(self.bob).sudo(False).action_resync()
        with self.assertRaises(AccessError):
            self.alice.with_user(self.bob).action_impact_calendar_connect_google()

    def test_neutralize_wipes_tokens(self):
        for query in neutralize.get_neutralization_queries(["impact_calendar_integration"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        self.assertFalse(self.env["impact.calendar.credential"].sudo().search([]))
        self.assertEqual(self.alice_account.state, "needs_reconnect")
