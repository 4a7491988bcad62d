# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

from .. import cron_wakeup


class IrCron(models.Model):
    _inherit = "ir.cron"

    def _notifydb(self):
        """Every booking commit wakes the push action: its wake-ups go through the connection
        the server process keeps (see ``cron_wakeup``), not a new one each. Other scheduled
        actions are woken as Odoo does it."""
        push = self.env.ref("impact_calendar_integration.ir_cron_push_bookings", raise_if_not_found=False)
        if push and self.ids == push.ids and cron_wakeup.notify(self.env.cr.dbname):
            return
        super()._notifydb()
