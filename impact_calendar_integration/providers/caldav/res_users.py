# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
# pylint: disable=consider-merging-classes-inherited
from odoo import models

from ...models.impact_calendar_account import dialog_action


class ResUsers(models.Model):
    _inherit = "res.users"

    def action_impact_calendar_connect_caldav(self):
        """CalDAV has no consent page: a form asks for the server and an app-specific password."""
        self._impact_check_self()
        return dialog_action(self.env._("Connect Apple iCloud / CalDAV"), "impact.calendar.caldav.wizard")
