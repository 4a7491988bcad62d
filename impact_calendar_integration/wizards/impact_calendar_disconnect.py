# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models
from odoo.exceptions import AccessError

from ..sync import providers


class ImpactCalendarDisconnect(models.TransientModel):
    """Asks, before disconnecting, whether our future events stay in the external calendar."""

    _name = "impact.calendar.disconnect"
    _description = "Disconnect External Calendar"

    account_id = fields.Many2one("impact.calendar.account", required=True, ondelete="cascade")
    # Read with the user's own rights: a wizard made on someone else's account shows nothing.
    email = fields.Char(related="account_id.email", string="Connected account", compute_sudo=False)
    revocation_note = fields.Text(compute="_compute_revocation_note", compute_sudo=False)
    keep_events = fields.Boolean(
        "Keep the classes already in my calendar",
        help="Off: the future classes this integration added are removed from your calendar first.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        wizards = super().create(vals_list)
        wizards.account_id._check_owner_or_manager()
        return wizards

    @api.depends("account_id.provider")
    def _compute_revocation_note(self):
        # What really happens to the grant: the provider entry declares it.
        for wizard in self:
            if not wizard.account_id.provider:
                wizard.revocation_note = False
                continue
            entry = providers.get(wizard.account_id.provider)
            kind = entry.revocation_kind()
            if kind == providers.REVOKED:
                note = self.env._("Odoo revokes its access at %(provider)s and erases its tokens.", provider=entry.label)
            elif kind == providers.USER_DELETES_PASSWORD:
                note = self.env._(
                    "Odoo erases the app-specific password it keeps, but cannot revoke it: delete it at "
                    "your provider (Apple: account.apple.com > Sign-In and Security > App-Specific "
                    "Passwords; Fastmail: Settings > Privacy & Security > Manage app passwords; "
                    "Nextcloud: Personal settings > Security)."
                )
            else:
                note = self.env._(
                    "Odoo erases its tokens, but %(provider)s offers no way for Odoo to revoke its "
                    "access: remove the app yourself at %(pages)s.",
                    provider=entry.label,
                    pages=self.env._(" or ").join(entry.consent_pages) or entry.label,
                )
            wizard.revocation_note = note

    def _check_owner(self):
        """Wizards are their creator's (record rule), also on a sudo path."""
        for wizard in self.sudo():
            if wizard.create_uid.id != self.env.uid:
                raise AccessError(self.env._("This form belongs to another user."))

    def action_confirm(self):
        self.ensure_one()
        self._check_owner()
        self.account_id._disconnect(keep_events=self.keep_events)
        return {"type": "ir.actions.client", "tag": "soft_reload"}
