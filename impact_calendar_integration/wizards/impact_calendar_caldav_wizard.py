# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import UserError

from ..sync import providers
from ..sync.outcomes import ConnectError
from ..sync.providers import caldav

PRESETS = caldav.PRESETS
PROVIDER = caldav.PROVIDER.name


class ImpactCalendarCaldavWizard(models.TransientModel):
    """Connect an Apple iCloud, Fastmail, Nextcloud or other CalDAV calendar.

    The password is write-only: what the form sends is kept Fernet-encrypted until Connect and
    reads back empty; once connected it lives only in the account's encrypted credential.
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

    def _vault(self):
        return self.env["impact.calendar.credential"]._vault()

    def _compute_password(self):
        for wizard in self:
            wizard.password = False

    def _inverse_password(self):
        for wizard in self:
            wizard.sudo().password_secret = self._vault().encrypt(wizard.password) if wizard.password else False
        # Write-only: what was typed does not stay in the cache either.
        self.invalidate_recordset(["password"])

    @api.onchange("server_preset")
    def _onchange_server_preset(self):
        # A preset fills the URL; any URL stays allowed.
        if self.server_preset in PRESETS:
            self.server_url = PRESETS[self.server_preset]

    def action_connect(self):
        self.ensure_one()
        user = self.env.user
        user._impact_check_self()
        accounts = self.env["impact.calendar.account"]
        password = self._vault().decrypt(self.sudo().password_secret) if self.sudo().password_secret else ""
        provider = providers.get(PROVIDER)
        try:
            accounts._check_can_connect(user, PROVIDER)
            config = accounts._provider_config(PROVIDER)
            tokens, label = provider.check(config, self.server_url, (self.username or "").strip(), password)
        except ConnectError as exc:
            raise UserError(self.env._("Connection failed: %(reason)s", reason=str(exc))) from None
        accounts._connect(user, PROVIDER, tokens, label)
        self.sudo().password_secret = False
        return {"type": "ir.actions.client", "tag": "soft_reload"}
