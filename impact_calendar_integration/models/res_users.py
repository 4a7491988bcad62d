# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from lxml import etree

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .. import compat
from ..sync import outbox, providers
from ..sync.config import DEDICATED, MAIN
from .impact_calendar_account import DESTINATION_CHOICES, provider_selection

GROUP = "impact_calendar_integration.group_calendar_integration"
MANAGER = "impact_calendar_integration.group_calendar_integration_manager"

PREFERENCE_FIELDS = [
    "impact_calendar_account_id",
    "impact_calendar_provider",
    "impact_calendar_email",
    "impact_calendar_state",
    "impact_calendar_connected_at",
    "impact_calendar_last_push_at",
    "impact_calendar_last_error",
    "impact_calendar_pending_count",
    "impact_calendar_failed_count",
    "impact_calendar_synced_count",
    "impact_calendar_native_conflict",
    "impact_calendar_notice",
    "impact_calendar_destination",
    "impact_calendar_destination_choice",
    "impact_calendar_destination_forced",
    "impact_calendar_calendar_name",
]

# Odoo's own sync per provider: its status method, and the token it syncs with.
class ResUsers(models.Model):
    _inherit = "res.users"

    impact_calendar_account_id = fields.Many2one(
        "impact.calendar.account", compute="_compute_impact_calendar", string="External calendar"
    )
    impact_calendar_provider = fields.Selection(provider_selection, compute="_compute_impact_calendar", string="Provider")
    impact_calendar_email = fields.Char(compute="_compute_impact_calendar", string="Connected account")
    impact_calendar_state = fields.Selection(
        [
            ("connected", "Connected"),
            ("needs_reconnect", "Needs reconnect"),
            ("disconnecting", "Disconnecting"),
        ],
        compute="_compute_impact_calendar",
        string="External calendar status",
    )
    impact_calendar_connected_at = fields.Datetime(compute="_compute_impact_calendar", string="Connected since")
    impact_calendar_last_push_at = fields.Datetime(compute="_compute_impact_calendar", string="Last successful push")
    impact_calendar_last_error = fields.Char(compute="_compute_impact_calendar", string="Last error")
    impact_calendar_pending_count = fields.Integer(compute="_compute_impact_calendar", string="Waiting to be pushed")
    impact_calendar_failed_count = fields.Integer(compute="_compute_impact_calendar", string="Failed")
    impact_calendar_synced_count = fields.Integer(compute="_compute_impact_calendar", string="Classes in calendar")
    impact_calendar_native_conflict = fields.Boolean(compute="_compute_impact_calendar")
    impact_calendar_notice = fields.Char("External calendar notice", compute="_compute_impact_calendar")
    impact_calendar_destination = fields.Selection(
        DESTINATION_CHOICES, compute="_compute_impact_calendar", string="Classes go to"
    )
    impact_calendar_destination_choice = fields.Selection(
        DESTINATION_CHOICES, string="Put my classes in",
        compute="_compute_impact_calendar_destination_choice", inverse="_inverse_impact_calendar_destination_choice",
        help="Where Connect sends your classes: a calendar of their own (only what Odoo created is "
        "reachable), or your main calendar. Reconnect with the other choice to move them.",
    )
    impact_calendar_destination_forced = fields.Boolean(compute="_compute_impact_calendar_destination_choice")
    impact_calendar_calendar_name = fields.Char(compute="_compute_impact_calendar_destination_choice", string="Calendar name")
    impact_calendar_destination_pref = fields.Selection(DESTINATION_CHOICES, groups="base.group_system", copy=False)
    impact_calendar_notice_text = fields.Char(
        groups="base.group_system", copy=False,
        help="Outcome of the last connection attempt, shown once in Preferences.",
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + PREFERENCE_FIELDS

    @property
    def SELF_WRITEABLE_FIELDS(self):
        return super().SELF_WRITEABLE_FIELDS + ["impact_calendar_destination_choice"]

    @api.depends_context("uid")
    def _compute_impact_calendar_destination_choice(self):
        accounts = self.env["impact.calendar.account"]
        default, forced = accounts._destination_settings()
        name = accounts._calendar_name()
        for user in self:
            # The choice is the user's own business: nothing shows on another user's record.
            own = user == self.env.user
            choice = default if forced else (user.sudo().impact_calendar_destination_pref or default)
            user.impact_calendar_destination_choice = choice if own else False
            # An account whose provider has no main calendar cannot switch: no button offers it.
            account = user.impact_calendar_account_id.sudo() if own else accounts  # one read for both computes
            fixed = bool(account) and not providers.get(account.provider).main_calendar
            user.impact_calendar_destination_forced = (forced or fixed) and own
            user.impact_calendar_calendar_name = name if own else False

    def _inverse_impact_calendar_destination_choice(self):
        for user in self:
            if user == self.env.user:  # a choice for oneself only; applied by the next Connect
                user.sudo().impact_calendar_destination_pref = user.impact_calendar_destination_choice

    @api.depends_context("uid")
    def _compute_impact_calendar(self):
        # A connection (address, status, errors) shows to the user themself and to managers
        # only, whoever reads the record and however (a sudo read keeps the real uid).
        viewer = self.env.user
        visible = self if viewer.has_group(MANAGER) else self & viewer
        accounts = self.env["impact.calendar.account"].sudo().search([("user_id", "in", visible.ids)])
        by_user = {account.user_id.id: account for account in accounts}
        for user in self:
            account = by_user.get(user.id, self.env["impact.calendar.account"].sudo())
            user.impact_calendar_account_id = account
            user.impact_calendar_provider = account.provider
            user.impact_calendar_email = account.email
            user.impact_calendar_state = account.state
            user.impact_calendar_connected_at = account.connected_at
            user.impact_calendar_last_push_at = account.last_push_at
            user.impact_calendar_last_error = account.last_error
            user.impact_calendar_pending_count = account.pending_count
            user.impact_calendar_failed_count = account.failed_count
            user.impact_calendar_synced_count = account.synced_count
            user.impact_calendar_native_conflict = bool(account) and account.native_sync_conflict
            user.impact_calendar_notice = user.sudo().impact_calendar_notice_text if user in visible else False
            user.impact_calendar_destination = account.destination

    def _impact_native_sync_active(self, provider):
        """Whether Odoo's own sync of this provider's service (``native_sync``) already syncs
        this user."""
        self.ensure_one()
        status_method, token_field = providers.get(provider).native_sync
        if not status_method or not hasattr(self, status_method):
            return False
        user = self.sudo()
        # The status is "sync_active" by default, also for a user who never connected: only a
        # token means events are sent (the owner's; since 19.0 never an attendee's).
        return bool(getattr(user, token_field, False)) and getattr(user, status_method)() == "sync_active"

    # -- Preferences form: a provider without a view fragment of its own gets generated buttons -
    @api.model
    def _get_view_cache_key(self, view_id=None, view_type="form", **options):
        # The generated buttons follow the provider registry: a provider discovered later shows.
        return super()._get_view_cache_key(view_id, view_type, **options) + (tuple(providers.REGISTRY),)

    @api.model
    def _get_view(self, view_id=None, view_type="form", **options):
        arch, view = super()._get_view(view_id, view_type, **options)
        connect = arch.xpath("//div[@name='impact_calendar_connect']") if view_type == "form" else []
        resync = arch.xpath("//button[@name='action_impact_calendar_resync']")
        if connect and resync:
            shown = set(arch.xpath("//button/@name"))
            for provider in providers.entries():
                # Only a consent flow needs nothing but a button; a form comes with its fragment.
                if provider.connect == providers.OAUTH and f"action_impact_calendar_connect_{provider.name}" not in shown:
                    context = repr({"impact_calendar_provider": provider.name})
                    etree.SubElement(connect[0], "button", {
                        "name": "action_impact_calendar_connect", "type": "object", "context": context,
                        "class": "btn btn-secondary me-2", "string": self.env._("Connect %s", provider.label),
                    })
                    resync[0].addprevious(etree.Element("button", {
                        "name": "action_impact_calendar_connect", "type": "object", "context": context,
                        "class": "btn btn-primary me-2", "string": self.env._("Reconnect"),
                        "invisible": f"impact_calendar_state != 'needs_reconnect' or impact_calendar_provider != '{provider.name}'",
                    }))
        return arch, view

    # -- Preferences buttons -------------------------------------------------------------
    def action_impact_calendar_connect(self):
        """Connect the provider the button names in its context (a generated button)."""
        self._impact_check_self()
        name = self.env.context.get("impact_calendar_provider")
        if name not in providers.REGISTRY or providers.get(name).connect != providers.OAUTH:
            raise UserError(self.env._("Unknown calendar service: %s", name))
        return self._impact_start_url(name)

    def _impact_check_self(self):
        self.ensure_one()
        if self != self.env.user or not self.env.user.has_group(GROUP):
            raise AccessError(self.env._("Only you can connect your own external calendar."))

    def _impact_start_url(self, provider, destination=None):
        self._impact_check_self()
        destination = destination or self.impact_calendar_destination_choice
        return {
            "type": "ir.actions.act_url",
            "url": f"/impact_calendar/oauth/{provider}/start?destination={destination}",
            "target": "self",
        }

    def action_impact_calendar_switch_destination(self):
        """Reconnect the same provider with the other destination: the classes move."""
        self._impact_check_self()
        account = self.impact_calendar_account_id
        other = MAIN if account.destination == DEDICATED else DEDICATED
        return self._impact_start_url(account.provider, other)

    def action_impact_calendar_disconnect(self):
        self._impact_check_self()
        return self.impact_calendar_account_id.action_disconnect()

    def action_impact_calendar_resync(self):
        self._impact_check_self()
        self.impact_calendar_account_id.action_resync()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("Every booked class will be pushed again in a moment."),
                "type": "success",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_impact_calendar_dismiss_notice(self):
        self._impact_check_self()
        self._impact_calendar_set_notice(False)
        return True

    def _impact_calendar_set_notice(self, text):
        """Show ``text`` once in Preferences (False clears it); the field is admin-only."""
        self.sudo().impact_calendar_notice_text = text

    @api.model
    def _impact_preferences_action(self):
        """Preferences of the current user in a full page: where the OAuth callback lands."""
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Preferences"),
            "res_model": "res.users",
            "res_id": self.env.user.id,
            "view_mode": "form",
            "views": [(self.env.ref("base.view_users_form_simple_modif").id, "form")],
            "target": "current",
            "context": {"create": False},
        }

    # -- listener: group or activity change starts or stops syncing -------------------------
    def write(self, vals):
        result = super().write(vals)
        if "active" in vals or compat.writes_user_groups(vals):
            self.env["impact.calendar.link"]._mark_users_dirty(self.ids, outbox.CHANGE_BACKFILL)
            # An archived user or one without the group keeps no token.
            self.env["impact.calendar.account"]._disconnect_departed(self)
        return result
