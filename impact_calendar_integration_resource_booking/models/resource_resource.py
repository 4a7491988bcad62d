# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

# A resource's fields that decide whether, and as whom, it teaches.
INSTRUCTOR_FIELDS = {"user_id", "resource_type", "active"}


class ResourceResource(models.Model):
    _inherit = "resource.resource"

    def write(self, vals):
        result = super().write(vals)
        if INSTRUCTOR_FIELDS & set(vals):
            self._impact_calendar_combinations()._impact_calendar_mark_meetings_dirty()
        return result

    def unlink(self):
        self._impact_calendar_combinations()._impact_calendar_mark_meetings_dirty()
        return super().unlink()

    def _impact_calendar_combinations(self):
        return (
            self.env["resource.booking.combination"]
            .sudo()
            .with_context(active_test=False)
            .search([("resource_ids", "in", self.ids)])
        )
