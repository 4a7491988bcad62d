# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models


class ImpactCalendarDisconnect(models.TransientModel):
    """Asks, before disconnecting, whether our future events stay in the external calendar."""

    _name = "impact.calendar.disconnect"
    _description = "Disconnect External Calendar"

    account_id = fields.Many2one("impact.calendar.account", required=True, ondelete="cascade")
    email = fields.Char(related="account_id.email", string="Connected account")
    keep_events = fields.Boolean(
        "Keep the classes already in my calendar",
        help="Off: the future classes this integration added are removed from your calendar first.",
    )

    def action_confirm(self):
        self.ensure_one()
        self.account_id._disconnect(keep_events=self.keep_events)
        return {"type": "ir.actions.client", "tag": "soft_reload"}
