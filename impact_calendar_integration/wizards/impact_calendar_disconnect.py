# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models


class ImpactCalendarDisconnect(models.TransientModel):
    """Asks, before disconnecting, whether our future events stay in the external calendar."""

    _name = "impact.calendar.disconnect"
    _description = "Disconnect External Calendar"

    account_id = fields.Many2one("impact.calendar.account", required=True, ondelete="cascade")
    # Read with the user's own rights: a wizard made on someone else's account shows nothing.
    email = fields.Char(related="account_id.email", string="Connected account", compute_sudo=False)
    keep_events = fields.Boolean(
        "Keep the classes already in my calendar",
        help="Off: the future classes this integration added are removed from your calendar first.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        wizards = super().create(vals_list)
        wizards.account_id._check_owner_or_manager()
        return wizards

    def action_confirm(self):
        self.ensure_one()
        self.account_id._disconnect(keep_events=self.keep_events)
        return {"type": "ir.actions.client", "tag": "soft_reload"}
