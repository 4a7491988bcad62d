# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

from ..sync import pacing


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _dispatch(cls, endpoint):
        # The push worker of this process waits for a quiet moment (sync/pacing.py).
        with pacing.ACTIVITY.serving():
            return super()._dispatch(endpoint)
