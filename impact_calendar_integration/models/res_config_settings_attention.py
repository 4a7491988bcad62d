# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
# pylint: disable=consider-merging-classes-inherited  # apart on purpose: the attention feature in files of its own
from odoo import fields, models

from ..sync.attention import DEFAULT_HOURS


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    impact_calendar_attention_hours = fields.Integer(
        "Tell the instructor after (hours)", config_parameter="impact_calendar.attention_hours",
        default=int(DEFAULT_HOURS),
        help="A connection whose classes have failed to push for this long needs attention: the "
        "instructor gets an activity saying what to do, managers see it under Connections. A "
        "revoked access or a refused password needs attention at once.",
    )
