# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, models

from .. import compat, cron_wakeup

PUSH_ACTION = "impact_calendar_integration.ir_cron_push_bookings"


class IrCron(compat.CronNotifyOverride, models.Model):
    _inherit = "ir.cron"

    def _impact_calendar_notify(self):
        """Every booking commit wakes the push action: its wake-ups go through the connection
        the server process keeps (see ``cron_wakeup``), not a new one each. Other scheduled
        actions are woken as Odoo does it. Returns whether the wake-up was sent."""
        push_id = self._impact_calendar_push_action_id()
        return bool(push_id and self.ids == [push_id] and cron_wakeup.notify(self.env.cr.dbname))

    @api.model
    def _impact_calendar_push_action_id(self):
        """The push action's id, from the registry's cache: ``env.ref`` would also query the
        action's row, on every booking commit."""
        return self.env["ir.model.data"]._xmlid_to_res_id(PUSH_ACTION)
