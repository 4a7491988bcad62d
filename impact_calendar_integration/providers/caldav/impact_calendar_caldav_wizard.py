# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ...models.impact_calendar_account import dialog_action
from ...sync import providers
from ...sync.outcomes import ConnectError
from ...sync.providers import caldav
from ...sync.vault import VaultKeyError

_logger = logging.getLogger(__name__)

PRESETS = caldav.PRESETS
PROVIDER = caldav.PROVIDER.name


class ImpactCalendarCaldavWizard(models.TransientModel):
    """Connect an Apple iCloud, Fastmail, Nextcloud or other CalDAV calendar.

    The password is write-only and used once. The web client saves the form before it calls
    Connect, so the password reaches the database (Fernet-encrypted) for the time between the
    two requests. Connect takes it off the row whatever happens, and a failed check is an
    answer (the form again, with the reason), not an exception: an exception would roll the
    clearing back and leave the password on the row. A success deletes the row.
    Rows are their creator's only (record rule, and ``_check_owner`` on every path).
    """

    _name = "impact.calendar.caldav.wizard"
    _description = "Connect a CalDAV Calendar"
    _transient_max_hours = 0.5  # nothing of a half-filled form lingers

    server_preset = fields.Selection(
        [("icloud", "Apple iCloud"), ("fastmail", "Fastmail"), ("nextcloud", "Nextcloud"), ("other", "Other CalDAV server")],
        string="Service",
        default="icloud",
    )
    server_url = fields.Char("Server URL", default=PRESETS["icloud"])
    # Required in the form only: Connect refuses an empty one with a message.
    username = fields.Char("User name", help="iCloud: your Apple ID e-mail address.")
    password = fields.Char(
        "App-specific password", compute="_compute_password", inverse="_inverse_password",
        help="Never your account password: iCloud and Fastmail refuse it over CalDAV.",
    )
    password_secret = fields.Text(readonly=True, groups="base.group_system")
    error = fields.Char("Connection failed", readonly=True)

    def _vault(self):
        return self.env["impact.calendar.credential"]._vault()

    def _check_owner(self):
        """Refuse a wizard the caller did not make, also on a sudo path (the uid stays): a
        row may hold someone's encrypted password until Connect."""
        for wizard in self.sudo():
            if wizard.create_uid.id != self.env.uid:
                raise AccessError(self.env._("This form belongs to another user."))

    def _compute_password(self):
        for wizard in self:
            wizard.password = False

    def _inverse_password(self):
        self._check_owner()
        for wizard in self:
            wizard.sudo().password_secret = self._vault().encrypt(wizard.password) if wizard.password else False
        # Write-only: what was typed does not stay in the cache either.
        self.invalidate_recordset(["password"])

    @api.onchange("server_preset")
    def _onchange_server_preset(self):
        # A preset fills the URL; any URL stays allowed.
        if self.server_preset in PRESETS:
            self.server_url = PRESETS[self.server_preset]

    def _take_password(self):
        """The typed password, taken off the row (in this transaction)."""
        wizard = self.sudo()
        secret = wizard.password_secret
        wizard.password_secret = False
        return self._vault().decrypt(secret) if secret else ""

    def action_connect(self):
        self.ensure_one()
        self._check_owner()
        user = self.env.user
        accounts = self.env["impact.calendar.account"]
        provider = providers.get(PROVIDER)
        try:
            password = self._take_password()  # first: every refusal below commits its removal
            user._impact_check_self()
            accounts._check_can_connect(user, PROVIDER)
            config = accounts._provider_config(PROVIDER)
        except UserError as exc:
            return self._failed(exc.args[0])
        except VaultKeyError:
            return self._failed(self.env._("Connection failed: enter the password again."))
        try:
            tokens, label = provider.check(config, self.server_url, (self.username or "").strip(), password)
        except ConnectError as exc:
            return self._failed(self.env._("Connection failed: %(reason)s", reason=str(exc)))
        except Exception as exc:  # pylint: disable=broad-except
            # Whatever the server did, the password must not stay on the row (a raise would
            # roll back its clearing); the reason is logged, not shown.
            _logger.info("CalDAV connect check failed for user %s: %s", user.id, type(exc).__name__)
            return self._failed(
                self.env._("Connection failed: the server could not be reached or gave an unexpected answer.")
            )
        accounts._connect(user, PROVIDER, tokens, label)
        self.sudo().unlink()
        return {"type": "ir.actions.client", "tag": "soft_reload"}

    def _failed(self, message):
        """The form again with the reason; the password is already off the row, and this
        transaction commits (the caller returns normally)."""
        self.sudo().error = message
        action = dialog_action(self.env._("Connect Apple iCloud / CalDAV"), self._name)
        action["res_id"] = self.id
        return action
