# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The push worker's transactions: where a round commits, and at which isolation level.

The writes of a round (fold the change log and claim; settle and record) run at READ
COMMITTED, where a statement that meets a concurrent writer waits and then applies to the row's
newest version instead of failing to serialize; every one of them is guarded by the claim token
and ``change_seq``, so that is what we mean. The reads that build the payload run at Odoo's
REPEATABLE READ: one consistent picture of the class. Booking transactions only append to the
change log, so they never meet these writes.
"""

import logging

from odoo import api, models

from .. import compat
from ..sync import outbox

_logger = logging.getLogger(__name__)


class ImpactCalendarSynchronizer(models.AbstractModel):
    _inherit = "impact.calendar.synchronizer"

    @api.model
    def _commit(self, read_committed=False):
        """End the transaction; ``read_committed``: the next one runs at READ COMMITTED."""
        # Tests run inside one transaction that must not be committed.
        if not compat.testing():
            self.env.cr.commit()  # pylint: disable=invalid-commit
            if read_committed:
                self.env.cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    @api.model
    def _rollback(self):
        if not compat.testing():
            self.env.cr.rollback()

    @api.model
    def _release(self, token):
        """Release what this round still holds after a failure, committed at once."""
        self._rollback()
        self._commit(read_committed=True)
        if outbox.release(self.env.cr, token):
            _logger.info("Calendar push: released claims whose results were not recorded")
        self._commit()
