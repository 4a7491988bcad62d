# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..sync import outbox, providers
from ..sync.config import config_problems
from ..sync.vault import VaultKeyError

_logger = logging.getLogger(__name__)

PROVIDERS = providers.choices()
PARAM = "impact_calendar.%s"
DISCONNECT_GRACE = 24 * 3600  # seconds a disconnect may spend removing classes before erasing


class ImpactCalendarAccount(models.Model):
    """One user's connection to their external calendar (at most one per user)."""

    _name = "impact.calendar.account"
    _description = "External Calendar Connection"
    _rec_name = "email"
    _order = "user_id"

    user_id = fields.Many2one(
        "res.users", required=True, ondelete="cascade", index=True, readonly=True
    )
    provider = fields.Selection(PROVIDERS, required=True, readonly=True)
    email = fields.Char("Account", readonly=True)
    state = fields.Selection(
        [
            ("connected", "Connected"),
            ("needs_reconnect", "Needs reconnect"),
            ("disconnecting", "Disconnecting"),
        ],
        default="connected",
        required=True,
        readonly=True,
    )
    connected_at = fields.Datetime("Connected since", readonly=True)
    last_push_at = fields.Datetime("Last successful push", readonly=True)
    last_error = fields.Char(readonly=True)
    disconnect_deadline = fields.Datetime(
        readonly=True,
        help="A disconnect that asked to remove the classes erases the tokens by then, whatever "
        "could not be removed.",
    )
    link_ids = fields.One2many("impact.calendar.link", "account_id", readonly=True)
    pending_count = fields.Integer("Waiting", compute="_compute_link_counts")
    failed_count = fields.Integer("Failed", compute="_compute_link_counts")
    synced_count = fields.Integer("In calendar", compute="_compute_link_counts")
    native_sync_conflict = fields.Boolean(compute="_compute_native_sync_conflict")

    _sql_constraints = [
        ("user_uniq", "unique(user_id)", "A user connects one external calendar at a time."),
    ]

    @api.depends("link_ids.state", "link_ids.dirty", "link_ids.external_id")
    def _compute_link_counts(self):
        groups = self.env["impact.calendar.link"].sudo()._read_group(
            [("account_id", "in", self.ids)],
            ["account_id", "state", "dirty"],
            ["__count"],
        )
        counts = {}
        for account, state, dirty, count in groups:
            bucket = counts.setdefault(account.id, {"pending": 0, "failed": 0, "synced": 0})
            if state == "rejected" or (state == "retrying" and dirty):
                bucket["failed"] += count
            elif dirty:
                bucket["pending"] += count
            elif state == "synced":
                bucket["synced"] += count
        for account in self:
            bucket = counts.get(account.id, {})
            account.pending_count = bucket.get("pending", 0)
            account.failed_count = bucket.get("failed", 0)
            account.synced_count = bucket.get("synced", 0)

    def _compute_native_sync_conflict(self):
        for account in self:
            account.native_sync_conflict = account.user_id._impact_native_sync_active(
                account.provider
            )

    # -- settings -----------------------------------------------------------------
    @api.model
    def _provider_config(self, provider):
        """The provider's settings; UserError when incomplete or unsafe."""
        entry = providers.get(provider)
        config = entry.config(self.env["ir.config_parameter"].sudo().get_param)
        # Providers without OAuth (CalDAV) have no client id: each user brings a password.
        if entry.start and not (config.client_id and config.client_secret):
            raise UserError(
                self.env._(
                    "%(provider)s is not configured yet: ask an administrator to enter the "
                    "client id and secret in Settings > External Calendar.",
                    provider=entry.label,
                )
            )
        problems = config_problems(config)
        if problems:
            # Never hand a token to an endpoint that is not https: say so and push nothing.
            raise UserError(self.env._("Unsafe calendar endpoint: %(problems)s", problems="; ".join(problems)))
        return config

    def _provider(self):
        self.ensure_one()
        return providers.get(self.provider)

    @api.model
    def _redirect_uri(self, provider):
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        return f"{base.rstrip('/')}/impact_calendar/oauth/{provider}/callback"

    # -- tokens and clients ---------------------------------------------------------
    def _credential(self):
        self.ensure_one()
        return self.env["impact.calendar.credential"].sudo().search(
            [("account_id", "=", self.id)], limit=1
        )

    def _store_tokens(self, tokens):
        self.ensure_one()
        credential = self._credential() or self.env["impact.calendar.credential"].sudo().create(
            {"account_id": self.id}
        )
        credential._write_tokens(tokens)

    def _client(self):
        """The provider client acting for this account; persists refreshed/rotated tokens."""
        self.ensure_one()
        tokens = self._credential()._read_tokens()
        config = self._provider_config(self.provider)
        return self._provider().client(config, tokens, on_tokens=self._store_tokens)

    # -- lifecycle --------------------------------------------------------------------
    @api.model
    def _check_can_connect(self, user, provider):
        """Refuse a second provider before any flow starts: tokens obtained and then dropped
        would leave a live grant at the provider."""
        account = self.sudo().search([("user_id", "=", user.id)], limit=1)
        if account and account.provider != provider:
            raise UserError(
                self.env._("Disconnect %(current)s before connecting another calendar.", current=account.email)
            )
        return account

    @api.model
    def _connect(self, user, provider, tokens, email):
        """Called by the OAuth callback once the provider gave us tokens."""
        account = self._check_can_connect(user, provider)
        values = {
            "provider": provider,
            "email": email,
            "state": "connected",
            "last_error": False,
            "connected_at": fields.Datetime.now(),
        }
        if account:
            # Another mailbox replaces the old one: its grant goes. For the same mailbox the
            # grant is shared, and Google's revocation would kill the new token with the old.
            same = (account.email or "").lower() == (email or "").lower()
            old_tokens = None if same else account._readable_tokens()
            account.write(values)
        else:
            old_tokens = None
            account = self.sudo().create(dict(values, user_id=user.id))
        account._store_tokens(tokens)
        if old_tokens:
            account._revoke(old_tokens)
        links = self.env["impact.calendar.link"].sudo()
        links._mark_users_dirty(user.ids, outbox.CHANGE_RETRY)  # resumes what was paused
        links._mark_users_dirty(user.ids, outbox.CHANGE_BACKFILL)
        user.sudo().impact_calendar_notice_text = False
        return account

    def _mark_needs_reconnect(self, message):
        self.sudo().write({"state": "needs_reconnect", "last_error": message})
        _logger.info("Calendar account %s needs reconnect: %s", self.ids, message)

    def _check_owner_or_manager(self):
        manager = self.env.user.has_group(
            "impact_calendar_integration.group_calendar_integration_manager"
        )
        for account in self:
            if account.user_id != self.env.user and not manager:
                raise AccessError(self.env._("You can only manage your own calendar connection."))

    def action_resync(self):
        """Push every booked class again, whether or not we think the provider has it."""
        self._check_owner_or_manager()
        self.env["impact.calendar.link"].sudo()._mark_users_dirty(
            self.sudo().user_id.ids, outbox.CHANGE_RESYNC
        )
        return True

    def action_disconnect(self):
        self._check_owner_or_manager()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Disconnect external calendar"),
            "res_model": "impact.calendar.disconnect",
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    def _disconnect(self, keep_events):
        """Disconnect: remove our future events first (unless kept), then revoke and erase."""
        self._check_owner_or_manager()
        for account in self.sudo():
            if keep_events or account.state == "needs_reconnect" or not account.synced_count:
                account._revoke_and_erase()
                continue
            # The cron removes our future events, then erases; by the deadline in any case.
            account.write({
                "state": "disconnecting",
                "disconnect_deadline": fields.Datetime.now() + timedelta(seconds=DISCONNECT_GRACE),
            })
            self.env["impact.calendar.link"]._mark_users_dirty(account.user_id.ids)

    def _readable_tokens(self):
        """The stored tokens, or None when the key that encrypted them is gone."""
        self.ensure_one()
        credential = self._credential()
        try:
            return credential._read_tokens() if credential else None
        except VaultKeyError:
            _logger.info("Calendar account %s: tokens unreadable, nothing to revoke", self.id)
            return None

    def _revoke(self, tokens):
        """Revoke a grant at the provider where it offers it (else erasing it is all)."""
        self.ensure_one()
        provider = self._provider()
        if not (provider.revoke and tokens):
            return
        try:
            config = self._provider_config(self.provider)  # never a token to an unsafe endpoint
        except UserError:
            return
        provider.revoke(config, tokens)

    def _revoke_and_erase(self):
        """Revoke at the provider where it offers it, then forget tokens and links."""
        for account in self.sudo():
            account._revoke(account._readable_tokens())
            credential = account._credential()
            account.link_ids.unlink()
            credential.unlink()
            account.unlink()

    def _finish_disconnect_if_done(self):
        """A disconnecting account whose removals are done, or past its deadline, is revoked
        and erased. A removal the provider rejected does not hold it; the user is told."""
        now = fields.Datetime.now()
        for account in self.sudo().filtered(lambda a: a.state == "disconnecting"):
            links = account.link_ids
            waiting = links.filtered(lambda link: link.dirty and link.state != outbox.REJECTED)
            if waiting and account.disconnect_deadline and account.disconnect_deadline > now:
                continue
            left = len(links.filtered("external_id"))
            notice = self.env._("Your external calendar is disconnected.")
            if left:
                notice += " " + self.env._(
                    "%(count)s class(es) could not be removed from %(account)s: delete them there.",
                    count=left,
                    account=account.email,
                )
            user = account.user_id
            account._revoke_and_erase()
            user.sudo().impact_calendar_notice_text = notice

    @api.autovacuum
    def _gc_expired_disconnects(self):
        """Even with the push action stopped, no token outlives a disconnect's deadline."""
        self.sudo().search([
            ("state", "=", "disconnecting"), ("disconnect_deadline", "<", fields.Datetime.now()),
        ])._finish_disconnect_if_done()
