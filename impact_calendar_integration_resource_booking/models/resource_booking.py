# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import Command, models

# Writes that may change who teaches a booking's meeting.
INSTRUCTOR_FIELDS = {"combination_id", "meeting_id", "active"}


class ResourceBooking(models.Model):
    _inherit = "resource.booking"

    def write(self, vals):
        touched = INSTRUCTOR_FIELDS & set(vals)
        # Only a new combination needs the former teachers. Reading the combination forces its
        # pending recompute, and so resource_booking's scheduling check, once more: the meeting
        # is written with ``meeting_id`` on every booking that is scheduled.
        before = (
            {booking: booking._impact_calendar_teacher_partners() for booking in self}
            if "combination_id" in vals else {}
        )
        meetings = self.meeting_id.ids if touched else []
        result = super().write(vals)
        for booking, old_teachers in before.items():
            booking._impact_calendar_drop_former_teachers(old_teachers)
        if touched:
            # resource_booking rewrites the meeting only when it resyncs it: mark it anyway.
            self.env["impact.calendar.link"]._mark_events_dirty(meetings + self.meeting_id.ids)
        return result

    def _impact_calendar_teacher_partners(self):
        resources = self.combination_id.resource_ids.filtered(lambda res: res.resource_type == "user")
        return resources.user_id.partner_id

    def _impact_calendar_drop_former_teachers(self, old_teachers):
        """resource_booking only adds the new combination's users to the meeting: the former
        teacher would stay an attendee, counted as a student in the new teacher's roster."""
        gone = old_teachers - self._impact_calendar_teacher_partners() - self.partner_ids
        if gone and self.meeting_id:
            self.meeting_id.write({"partner_ids": [Command.unlink(partner.id) for partner in gone]})
