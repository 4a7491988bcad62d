# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import logging
import os

from odoo import api, fields, models, tools

from .. import compat
from ..sync.tokens import TokenSet
from ..sync.vault import Vault

_logger = logging.getLogger(__name__)

KEY_OPTION = "impact_calendar_encryption_key"
KEY_ENV = "IMPACT_CALENDAR_ENCRYPTION_KEY"


class ImpactCalendarCredential(models.Model):
    """Encrypted tokens of one connected account.

    Its own model with no access right for anybody: only the addon's code reads it, through
    ``sudo()``. Admins see account statuses, never tokens.
    """

    _name = "impact.calendar.credential"
    _description = "External Calendar Credential"
    _rec_name = "account_id"

    account_id = fields.Many2one(
        "impact.calendar.account", required=True, ondelete="cascade", index=True
    )
    secret = fields.Text(help="Fernet-encrypted JSON of the account's tokens.")

    locals().update(compat.sql_constraints(  # models.Constraint on 19.0
        ("account_uniq", "unique(account_id)", "An account has one credential."),
    ))

    @api.model
    def _configured_key(self):
        """The configured keys, newest first, comma-separated (empty when none is set)."""
        return tools.config.get(KEY_OPTION) or os.environ.get(KEY_ENV) or ""

    @api.model
    def _vault(self):
        """The configured keys, newest first, then the database secret: without a key it
        encrypts (weaker: Settings says so); with one, it still reads what it encrypted."""
        keys = [key.strip() for key in self._configured_key().split(",") if key.strip()]
        keys.append(self.env["ir.config_parameter"].sudo().get_param("database.secret"))
        return Vault(keys)

    def _read_tokens(self):
        """Decrypted TokenSet; raises VaultKeyError when no key decrypts them. Tokens read with
        an older key are re-encrypted with the newest one (key rotation)."""
        self.ensure_one()
        vault = self._vault()
        stored = self.sudo().secret
        data = json.loads(vault.decrypt(stored) or "{}")
        if vault.needs_rotation(stored):
            self.sudo().secret = vault.encrypt(json.dumps(data))
        return TokenSet(**data)

    def _write_tokens(self, tokens):
        self.ensure_one()
        plain = json.dumps({k: v for k, v in vars(tokens).items() if v is not None})
        self.sudo().secret = self._vault().encrypt(plain)
