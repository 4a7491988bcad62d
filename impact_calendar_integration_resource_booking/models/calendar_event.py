# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, models


class CalendarEvent(models.Model):
    _inherit = "calendar.event"

    @api.model
    def _impact_calendar_instructors_query(self):
        """A booking's meeting is taught by the users of its combination's user resources
        (active ones, as resource_booking invites them); other classes keep the default."""
        rel = self.env["resource.booking.combination"]._fields["resource_ids"]
        return f"""
            SELECT o.event_id, o.user_id FROM ({super()._impact_calendar_instructors_query()}) o
             WHERE NOT EXISTS (SELECT 1 FROM resource_booking rb WHERE rb.meeting_id = o.event_id)
            UNION ALL
            SELECT rb.meeting_id AS event_id, rr.user_id
              FROM resource_booking rb
              JOIN "{rel.relation}" rel ON rel."{rel.column1}" = rb.combination_id
              JOIN resource_resource rr ON rr.id = rel."{rel.column2}"
             WHERE rb.meeting_id IS NOT NULL AND rr.resource_type = 'user'
               AND rr.user_id IS NOT NULL AND rr.active
        """

    def _impact_calendar_instructors(self):
        self.ensure_one()
        # Archived bookings count as the SQL counts them: their meeting stays theirs.
        bookings = self.with_context(active_test=False).sudo().resource_booking_ids
        if not bookings:
            return super()._impact_calendar_instructors()
        resources = bookings.combination_id.resource_ids.filtered(
            lambda res: res.active and res.resource_type == "user"
        )
        return resources.user_id
