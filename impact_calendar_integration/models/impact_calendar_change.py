# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models

from ..sync import outbox


class ImpactCalendarChange(models.Model):
    """Change log: what the booking side appends, and the worker folds into the links.

    Insert-only for users' transactions, so a booking never writes a row that a worker writes.
    Plain integers, not many2one: a foreign key would lock the referenced booking rows.
    """

    _name = "impact.calendar.change"
    _description = "External Calendar Change Log"
    _log_access = False

    event_ref = fields.Integer("Odoo event id", readonly=True)
    user_id = fields.Integer("Instructor id", readonly=True)
    kind = fields.Selection(
        [
            (outbox.CHANGE_EVENT, "Class changed"),
            (outbox.CHANGE_USER, "Instructor changed"),
            (outbox.CHANGE_BACKFILL, "Instructor connected"),
            (outbox.CHANGE_RETRY, "Retry"),
            (outbox.CHANGE_RESYNC, "Resync"),
        ],
        required=True,
        readonly=True,
    )
