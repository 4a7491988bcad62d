# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Access findings that need the sync world: disconnect deadline, revocation on reconnect,
key rotation, endpoint safety. (The RPC sweep is in test_rpc_sweep.py.)"""

import json
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from ..models import impact_calendar_credential
from ..sync.vault import Vault
from .sync_common import SyncCase


@tagged("post_install", "-at_install")
class TestSecurityGoogle(SyncCase):
    provider = "google"

    def disconnect_removing_events(self):
        wizard = self.env["impact.calendar.disconnect"].with_user(self.instructor).create(
            {"account_id": self.account.id, "keep_events": False}
        )
        wizard.action_confirm()
        self.assertEqual(self.account.state, "disconnecting")

    def credential_gone(self):
        return not self.env["impact.calendar.credential"].sudo().search([("account_id", "=", self.account.id)])

    def test_rejected_delete_does_not_keep_tokens(self):
        self.availability(students=self.students[:1])
        self.push()
        external = self.only_event()
        self.emulator.inject(rf"/events/{external['id']}", status=400, body={"error": {"code": 400, "message": "Invalid"}})
        self.disconnect_removing_events()
        self.push()
        self.assertTrue(self.credential_gone(), "a rejected removal must not hold the tokens")
        self.assertIn("could not be removed", self.instructor.impact_calendar_notice)
        self.assertEqual(len(self.emulator.requests(r"^/revoke$", "POST")), 1, "revoked at Google")

    def test_tokens_erased_by_the_deadline_whatever_is_left(self):
        self.availability(students=self.students[:1])
        self.push()
        self.disconnect_removing_events()
        self.flush()
        # The provider is down (or the push action disabled): the removal never happens.
        self.emulator.inject(r"/batch/calendar/v3", status=503, times=None)
        self.push()
        self.assertFalse(self.credential_gone(), "still trying within the deadline")
        self.account.sudo().disconnect_deadline = fields.Datetime.now() - timedelta(minutes=1)
        # Even with our push action stopped, Odoo's daily autovacuum enforces the deadline.
        self.env["impact.calendar.account"]._gc_expired_disconnects()
        self.assertTrue(self.credential_gone())
        self.assertFalse(self.account.exists())
        self.assertIn("could not be removed", self.instructor.impact_calendar_notice)

    def test_reconnect_to_another_mailbox_revokes_the_old_grant(self):
        self.connect(self.instructor, "other@example.com")
        self.assertEqual(len(self.emulator.requests(r"^/revoke$", "POST")), 1, "the old mailbox's grant")
        self.assertEqual(self.account.email, "other@example.com")

    def test_reconnect_to_the_same_mailbox_keeps_the_grant(self):
        # Google shares one grant between the tokens of a mailbox: revoking the old token would
        # kill the new one.
        self.connect(self.instructor, self.email)
        self.assertFalse(self.emulator.requests(r"^/revoke$", "POST"))
        self.availability(students=self.students[:1])
        self.push()
        self.only_event()

    def test_key_rotation_keeps_accounts_connected(self):
        self.availability(students=self.students[:1], name="Before")
        self.push()
        credential = self.account._credential()
        old_secret = credential.secret
        module = impact_calendar_credential.__name__ + ".ImpactCalendarCredential._configured_key"
        with patch(module, lambda self: "new key, " + "old key"):
            credential.secret = Vault(["old key"]).encrypt(Vault(self._db_secret()).decrypt(old_secret))
            self.availability(students=self.students[:1], name="After")
            self.push()
            self.assertEqual(self.account.state, "connected")
            self.assertEqual(len(self.external_events()), 2)
            self.assertFalse(credential._vault().needs_rotation(credential.secret), "re-encrypted with the new key")
            self.assertTrue(json.loads(Vault(["new key"]).decrypt(credential.secret))["refresh_token"])

    def _db_secret(self):
        return self.env["ir.config_parameter"].sudo().get_param("database.secret")

    def test_plain_http_endpoints_are_refused(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("impact_calendar.google_token_endpoint", "http://tokens.example.com/token")
        with self.assertRaisesRegex(UserError, "must use https"):
            self.env["impact.calendar.account"]._provider_config("google")
        # The worker keeps the change and pushes nothing to that address.
        event = self.availability(students=self.students[:1])
        self.push()
        self.assertFalse(self.external_events())
        self.assertTrue(self.link(event).dirty, "the change waits for a safe endpoint")
        settings = self.env["res.config.settings"].create(
            {"impact_calendar_google_api_endpoint": "http://calendar.example.com/calendar/v3/"}
        )
        with self.assertRaisesRegex(ValidationError, "must use https"):
            settings.execute()
