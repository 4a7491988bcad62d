# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models


class CalendarAttendee(models.Model):
    _inherit = "calendar.attendee"

    # Odoo 18 does not index it; every booking write asks "is anyone booked into this class?".
    event_id = fields.Many2one(index=True)

    @api.model_create_multi
    def create(self, vals_list):
        attendees = super().create(vals_list)
        self.env["impact.calendar.link"]._mark_events_dirty(attendees.event_id.ids)
        return attendees

    def write(self, vals):
        result = super().write(vals)
        if {"state", "partner_id", "event_id"} & set(vals):
            self.env["impact.calendar.link"]._mark_events_dirty(self.event_id.ids)
        return result

    def unlink(self):
        self.env["impact.calendar.link"]._mark_events_dirty(self.event_id.ids)
        return super().unlink()
