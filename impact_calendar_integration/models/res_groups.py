# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import Command, api, models

from .. import compat


class ResGroups(models.Model):
    _inherit = "res.groups"

    def write(self, vals):
        result = super().write(vals)
        # Users taken out of a group from the group's side (or a group no longer implied):
        # whoever lost Calendar Integration keeps no token.
        if compat.GROUP_USERS in vals or "implied_ids" in vals:
            self.env["impact.calendar.account"]._disconnect_departed()
        return result

    # Called from the XML data: the fields they write are named differently on 18.0 and 19.0.
    @api.model
    def _impact_calendar_set_category(self, group_ids, category_id, privilege_xmlid):
        compat.set_groups_category(
            self.browse(group_ids), self.env["ir.module.category"].browse(category_id), privilege_xmlid
        )

    @api.model
    def _impact_calendar_grant(self, model_name, record_ids, commands):
        """Apply ``commands`` to the groups of ``record_ids`` (res.users or ir.actions.*)."""
        self.env[model_name].browse(record_ids).write({compat.groups_field(model_name): commands})

    @api.model
    def _impact_calendar_add_users(self, group_id, user_ids):
        # From the group's side, as the data always did: no res.users.write (and its hooks).
        self.browse(group_id).write({compat.GROUP_USERS: [Command.link(user_id) for user_id in user_ids]})
