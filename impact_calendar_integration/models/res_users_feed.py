# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
# pylint: disable=consider-merging-classes-inherited
from odoo import api, fields, models

FEED_FIELDS = ["impact_calendar_feed_enabled", "impact_calendar_feed_url"]


# A file of its own on purpose: the feed stands apart from the accounts code of res_users.py,
# which other branches change at the same time.
class ResUsers(models.Model):
    """Preferences > External: the private ICS feed (not a provider: no account, no push)."""

    _inherit = "res.users"

    impact_calendar_feed_enabled = fields.Boolean("Private calendar feed", compute="_compute_impact_calendar_feed")
    impact_calendar_feed_url = fields.Char("Feed URL", compute="_compute_impact_calendar_feed")

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + FEED_FIELDS

    @api.depends_context("uid")
    def _compute_impact_calendar_feed(self):
        # The URL is a password: the user themself only, not even managers (sudo keeps the uid),
        # and only in the session that made it (the database keeps its hash only).
        visible = self & self.env.user
        feeds = self.env["impact.calendar.feed"].sudo().search([("user_id", "in", visible.ids)])
        by_user = {feed.user_id.id: feed for feed in feeds}
        for user in self:
            feed = by_user.get(user.id)
            user.impact_calendar_feed_enabled = bool(feed)
            user.impact_calendar_feed_url = feed._url() if feed else False

    def action_impact_calendar_feed_regenerate(self):
        """Turn the feed on, or give it a new URL: the old one stops working at once. The new
        URL shows in this session only (the web client reads the record again after a button)."""
        self._impact_check_self()
        self.env["impact.calendar.feed"]._rotate(self)
        self.invalidate_recordset(FEED_FIELDS)
        return True

    def action_impact_calendar_feed_disable(self):
        self._impact_check_self()
        self.env["impact.calendar.feed"]._disable(self)
        self.invalidate_recordset(FEED_FIELDS)
        return True
