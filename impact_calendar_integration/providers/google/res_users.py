# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
# pylint: disable=consider-merging-classes-inherited
from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def action_impact_calendar_connect_google(self):
        return self._impact_start_url("google")
