# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
# pylint: disable=consider-merging-classes-inherited  # apart on purpose: the attention feature in files of its own
from odoo import api, fields, models

from .impact_calendar_account_attention import ATTENTION_REASONS

MANAGER = "impact_calendar_integration.group_calendar_integration_manager"
ATTENTION_FIELDS = ["impact_calendar_attention_reason", "impact_calendar_attention_message"]


class ResUsers(models.Model):
    _inherit = "res.users"

    impact_calendar_attention_reason = fields.Selection(
        ATTENTION_REASONS, compute="_compute_impact_calendar_attention", string="External calendar needs attention"
    )
    impact_calendar_attention_message = fields.Char(
        compute="_compute_impact_calendar_attention", string="What to do"
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + ATTENTION_FIELDS

    @api.depends_context("uid")
    def _compute_impact_calendar_attention(self):
        # As the rest of the connection: for the user themself and managers only.
        viewer = self.env.user
        visible = self if viewer.has_group(MANAGER) else self & viewer
        accounts = self.env["impact.calendar.account"].sudo().search(
            [("user_id", "in", visible.ids), ("needs_attention", "=", True)]
        )
        by_user = {account.user_id.id: account for account in accounts}
        for user in self:
            account = by_user.get(user.id)
            user.impact_calendar_attention_reason = account.attention_reason if account else False
            user.impact_calendar_attention_message = account.attention_message if account else False
