# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models


class ResPartner(models.Model):
    _inherit = "res.partner"

    def unlink(self):
        # Attendees of a deleted partner vanish by SQL cascade, behind the ORM's back.
        attendees = self.env["calendar.attendee"].sudo().search([("partner_id", "in", self.ids)])
        self.env["impact.calendar.link"]._mark_events_dirty(attendees.event_id.ids)
        return super().unlink()
