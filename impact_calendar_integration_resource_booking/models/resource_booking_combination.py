# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models


class ResourceBookingCombination(models.Model):
    _inherit = "resource.booking.combination"

    def write(self, vals):
        result = super().write(vals)
        if "resource_ids" in vals:
            # Resources added or removed change the teachers of every scheduled booking.
            self._impact_calendar_mark_meetings_dirty()
        return result

    def _impact_calendar_mark_meetings_dirty(self):
        bookings = self.sudo().with_context(active_test=False).booking_ids
        self.env["impact.calendar.link"]._mark_events_dirty(bookings.meeting_id.ids)
