# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import uuid
from collections import namedtuple
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .. import compat
from ..sync import outbox, providers
from ..sync.outcomes import Kind
from ..sync.config import DEDICATED, DEFAULT_CALENDAR_NAME, DESTINATIONS, MAIN
from ..sync.vault import VaultKeyError

_logger = logging.getLogger(__name__)


def provider_selection(_model):
    """Every registered provider: the registry is read at each use, not frozen at import."""
    return providers.choices()


PARAM = "impact_calendar.%s"
GROUP = "impact_calendar_integration.group_calendar_integration"
DISCONNECT_GRACE = 24 * 3600  # seconds a disconnect may spend removing classes before erasing
DESTINATION_CHOICES = [(DEDICATED, "A dedicated calendar"), (MAIN, "My main calendar")]
# The dedicated calendar, and the create in flight, of a mailbox the account no longer uses.
NO_DEDICATED_CALENDAR = {
    "calendar_id": False, "calendar_create_guard": False, "calendar_create_sent_at": False, "calendar_create_pid": False,
}
# What _claim_calendar_create found: the calendar's id (False: none yet); the guard to send its
# create with (None: the create is not ours to send now); whether that create is a resend.
CalendarClaim = namedtuple("CalendarClaim", "calendar_id guard resent")


def dialog_action(name, res_model, context=None):
    """The action that opens a wizard's form in a dialog."""
    return {
        "type": "ir.actions.act_window",
        "name": name,
        "res_model": res_model,
        "view_mode": "form",
        "views": [(False, "form")],
        "target": "new",
        "context": context or {},
    }


class ImpactCalendarAccount(models.Model):
    """One user's connection to their external calendar (at most one per user)."""

    _name = "impact.calendar.account"
    _description = "External Calendar Connection"
    _rec_name = "email"
    _order = "user_id"

    user_id = fields.Many2one(
        "res.users", required=True, ondelete="cascade", index=True, readonly=True
    )
    provider = fields.Selection(provider_selection, required=True, readonly=True)
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
    destination = fields.Selection(
        DESTINATION_CHOICES, readonly=True,
        help="Where the classes go: a calendar the addon creates and owns, or the user's main calendar.",
    )  # no default: rows from before this field are main-calendar accounts (see init)
    calendar_id = fields.Char(
        "Dedicated calendar id", readonly=True, copy=False,
        help="The calendar the addon created at the provider; kept after a switch to the main "
        "calendar so that switching back reuses it.",
    )
    calendar_create_guard = fields.Char(readonly=True, copy=False)
    calendar_create_sent_at = fields.Datetime(
        readonly=True, copy=False,
        help="A calendar create went out and its answer is not recorded yet.",
    )
    calendar_create_pid = fields.Integer(
        readonly=True, copy=False,
        help="The PostgreSQL backend of the worker sending the calendar create: when it is gone, "
        "nobody waits for that call.",
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

    locals().update(compat.sql_constraints(  # models.Constraint on 19.0
        ("user_uniq", "unique(user_id)", "A user connects one external calendar at a time."),
    ))

    def init(self):
        # Accounts connected before destinations existed push into the main calendar.
        self.env.cr.execute("UPDATE impact_calendar_account SET destination = %s WHERE destination IS NULL", (MAIN,))

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
        # Providers connected by a form have no client id: each user brings a password.
        if entry.connect == providers.OAUTH and not (config.client_id and config.client_secret):
            raise UserError(
                self.env._(
                    "%(provider)s is not configured yet: ask an administrator to enter the "
                    "client id and secret in Settings > External Calendar.",
                    provider=entry.label,
                )
            )
        problems = entry.config_problems(config)
        if problems:
            # Never hand a token to an endpoint that is not https: say so and push nothing.
            raise UserError(self.env._("Unsafe calendar endpoint: %(problems)s", problems="; ".join(problems)))
        return config

    def _provider(self):
        self.ensure_one()
        return providers.get(self.provider)

    @api.model
    def _destination_settings(self):
        """(default destination, forced?) from the system parameters."""
        get = self.env["ir.config_parameter"].sudo().get_param
        default = get("impact_calendar.default_destination") or DEDICATED
        if default not in DESTINATIONS:
            default = DEDICATED
        return default, get("impact_calendar.force_destination") in ("1", "True", "true")

    @api.model
    def _choose_destination(self, requested=None):
        """The destination a connection gets: the requested one unless an admin forced one."""
        default, forced = self._destination_settings()
        if forced or requested not in DESTINATIONS:
            return default
        return requested

    @api.model
    def _destination_for(self, entry, requested=None):
        """A provider without a dedicated calendar pushes where its client was set up (for the
        engine, the main calendar); one without a main calendar always gets the dedicated one."""
        if not entry.dedicated_calendar:
            return MAIN
        return self._choose_destination(requested) if entry.main_calendar else DEDICATED

    def _adopt_connect_calendars(self):
        """Accounts whose connect made their calendar (kept in the tokens, ``connect_calendar``)
        before calendars were made through ``create_calendar``: that calendar becomes the
        dedicated one, and the classes already in it stay there (no move). Run by the 1.0.2
        migration; an account whose tokens cannot be read is left as it is."""
        for account in self.sudo().search([("calendar_id", "=", False)]):
            entry = providers.REGISTRY.get(account.provider)
            tokens = account._readable_tokens() if entry and entry.connect_calendar else None
            calendar_id = tokens and entry.connect_calendar(tokens)
            if not calendar_id:
                continue
            account.write({"calendar_id": calendar_id, "destination": DEDICATED})
            self.env.cr.execute(
                """UPDATE impact_calendar_link SET external_calendar = %s
                    WHERE account_id = %s AND external_id IS NOT NULL AND external_calendar IS NULL""",
                (calendar_id, account.id),
            )
            self.env["impact.calendar.link"].invalidate_model(["external_calendar"])

    @api.model
    def _calendar_name(self):
        name = self.env["ir.config_parameter"].sudo().get_param("impact_calendar.dedicated_calendar_name")
        return (name or "").strip() or DEFAULT_CALENDAR_NAME

    def _target_calendar(self):
        """The calendar classes must be in: None for the main calendar, else the dedicated one's
        id (False while it is not created yet)."""
        self.ensure_one()
        return self.calendar_id or False if self.destination == DEDICATED else None

    # -- what the external calendar must show ------------------------------------------------
    def _syncs_user(self):
        """Whether the account's user is one whose classes are pushed."""
        self.ensure_one()
        user = self.user_id
        return user.active and user.has_group(GROUP) and not self.native_sync_conflict

    def _forgets_instead_of_deleting(self, link):
        """Whether a class that must leave the calendar is only forgotten: past classes stay in
        the calendar when syncing stops (disconnect, group lost). A disconnect deletes the
        dedicated calendar in one call: nothing to do per class."""
        self.ensure_one()
        if self.state == "disconnecting" and self.calendar_id and link.external_calendar == self.calendar_id:
            return True
        if self._syncs_user() and self.state == "connected":
            return False
        event = link.event_id
        return bool(event) and event.stop and event.stop < fields.Datetime.now()

    # -- the dedicated calendar's create guard -----------------------------------------------
    #
    # The only writers of ``calendar_id`` and ``calendar_create_*`` besides a reconnect to
    # another mailbox (which forgets them: NO_DEDICATED_CALENDAR). In SQL, between the
    # synchronizer's commits: the claim is committed before the create goes out.
    #
    # Crash safety: a guard, a "create sent" time and the sender's database connection
    # (``calendar_create_pid``) are committed before the call. Another worker waits only while
    # that call may still be in flight: its sender's connection is alive and the lease has not run
    # out. A sender whose call ended (failed, or its answer was lost) clears the time but keeps the
    # guard; one that died leaves both, and its connection is gone. Either way the next run sends
    # the create again at once, as a resend with the same guard, so that a provider able to find
    # the first try's calendar returns it.
    def _claim_calendar_create(self, lease):
        """Lock the account and claim the create of its dedicated calendar. Returns a
        CalendarClaim: the calendar's id if it exists; else, unless another worker's create may
        still be in flight (``lease``: seconds), the guard to send it with, recorded as sent by
        this connection."""
        self.ensure_one()
        cr = self.env.cr
        cr.execute("SELECT pg_stat_clear_snapshot()")  # whose connection is alive now
        cr.execute(
            """SELECT calendar_id, calendar_create_guard, calendar_create_sent_at,
                      calendar_create_pid IS NOT NULL AND calendar_create_pid <> pg_backend_pid()
                      AND calendar_create_pid IN (SELECT pid FROM pg_stat_activity)
                 FROM impact_calendar_account WHERE id = %s FOR UPDATE""",
            (self.id,),
        )
        calendar_id, guard, sent_at, sender_alive = cr.fetchone()
        if calendar_id:
            return CalendarClaim(calendar_id, None, False)
        if sent_at and sender_alive and sent_at > fields.Datetime.now() - timedelta(seconds=lease):
            return CalendarClaim(False, None, False)
        claim = CalendarClaim(False, guard or uuid.uuid4().hex, bool(guard))
        cr.execute(
            """UPDATE impact_calendar_account SET calendar_create_guard = %s,
                      calendar_create_sent_at = (now() AT TIME ZONE 'UTC'),
                      calendar_create_pid = pg_backend_pid() WHERE id = %s""",
            (claim.guard, self.id),
        )
        return claim

    def _calendar_create_failed(self, refused):
        """The create call has ended without a calendar: nobody waits for it. ``refused``:
        nothing was made, the next try is not a resend; else (failed, or its answer lost) the
        next try resends with the guard."""
        self.ensure_one()
        self.env.cr.execute(
            """UPDATE impact_calendar_account SET calendar_create_sent_at = NULL, calendar_create_pid = NULL,
                      calendar_create_guard = CASE WHEN %s THEN NULL ELSE calendar_create_guard END
                WHERE id = %s""",
            (refused, self.id),
        )
        self.invalidate_recordset()

    def _calendar_created(self, calendar_id):
        self.ensure_one()
        self.env.cr.execute(
            """UPDATE impact_calendar_account SET calendar_id = %s, calendar_create_guard = NULL,
                      calendar_create_sent_at = NULL, calendar_create_pid = NULL WHERE id = %s""",
            (calendar_id, self.id),
        )
        self.invalidate_recordset()

    def _calendar_lost(self, calendar_id):
        """The user deleted ``calendar_id`` at the provider: the next round makes a new one."""
        self.ensure_one()
        self.env.cr.execute(
            "UPDATE impact_calendar_account SET calendar_id = NULL WHERE id = %s AND calendar_id = %s",
            (self.id, calendar_id),
        )
        self.invalidate_recordset()

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

    def _client(self, calendar_id=None):
        """The provider client acting for this account (events into ``calendar_id``, None: the
        main calendar); persists refreshed/rotated tokens."""
        self.ensure_one()
        tokens = self._credential()._read_tokens()
        config = self._provider_config(self.provider)
        return self._provider().client(config, tokens, on_tokens=self._store_tokens, calendar_id=calendar_id)

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
    def _connect(self, user, provider, tokens, email, destination=None):
        """Called by the OAuth callback once the provider gave us tokens. A reconnect with the
        other ``destination`` is a switch: every future class moves at the next pushes."""
        account = self._check_can_connect(user, provider)
        values = {
            "provider": provider,
            "email": email,
            "state": "connected",
            "last_error": False,
            "connected_at": fields.Datetime.now(),
            # A provider without a dedicated calendar of ours pushes into the calendar its client
            # was given at connect: for the engine that is the main one.
            "destination": self._destination_for(providers.get(provider), destination),
        }
        if account:
            # Another mailbox replaces the old one: its grant goes. For the same mailbox the
            # grant is shared, and revoking the old token may kill the new one with it.
            same = (account.email or "").lower() == (email or "").lower()
            old_tokens = None if same else account._readable_tokens()
            if not same:
                # The dedicated calendar belongs to the old mailbox; the same one reuses it.
                values.update(NO_DEDICATED_CALENDAR)
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
        user._impact_calendar_set_notice(False)
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
        return dialog_action(
            self.env._("Disconnect external calendar"), "impact.calendar.disconnect", {"default_account_id": self.id}
        )

    def _disconnect(self, keep_events):
        """Disconnect: remove our future events first (unless kept), then revoke and erase."""
        self._check_owner_or_manager()
        self._start_disconnect(keep_events)

    def _start_disconnect(self, keep_events):
        """What a confirmed disconnect does, whoever asked (no access check)."""
        for account in self.sudo():
            if keep_events or account.state == "needs_reconnect" or not (account.synced_count or account.calendar_id):
                account._revoke_and_erase()
                continue
            # The cron removes our future events, then erases; by the deadline in any case.
            account.write({
                "state": "disconnecting",
                "disconnect_deadline": fields.Datetime.now() + timedelta(seconds=DISCONNECT_GRACE),
            })
            self.env["impact.calendar.link"]._mark_users_dirty(account.user_id.ids)

    @api.model
    def _disconnect_departed(self, users=None):
        """Disconnect the accounts of ``users`` (None: every user) who are archived or lost the
        group: no token outlives its user's right to it. As a disconnect that does not keep
        the classes (what losing the group always did): the future classes are removed, then
        the grant is revoked where the provider allows it and the tokens are erased, by the
        disconnect deadline at the latest."""
        domain = [("state", "!=", "disconnecting")]
        if users is not None:
            domain.append(("user_id", "in", users.ids))
        accounts = self.sudo().with_context(active_test=False).search(domain)
        departed = accounts.filtered(
            lambda account: not account.user_id.active or not account.user_id.has_group(GROUP)
        )
        if departed:
            _logger.info("Calendar accounts %s: their users left, disconnecting", departed.ids)
            departed._start_disconnect(keep_events=False)
        return departed

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
            before_deadline = account.disconnect_deadline and account.disconnect_deadline > now
            if waiting and before_deadline:
                continue
            calendar_left = account.calendar_id and not account._delete_dedicated_calendar()
            if calendar_left and before_deadline:
                continue  # the provider did not answer: try again at the next run
            left = len(links.filtered("external_id"))
            notice = self.env._("Your external calendar is disconnected.")
            if calendar_left:
                notice += " " + self.env._(
                    "The calendar “%(name)s” could not be deleted from %(account)s: delete it there.",
                    name=account._calendar_name(),
                    account=account.email,
                )
            if left:
                notice += " " + self.env._(
                    "%(count)s class(es) could not be removed from %(account)s: delete them there.",
                    count=left,
                    account=account.email,
                )
            user = account.user_id
            account._revoke_and_erase()
            user._impact_calendar_set_notice(notice)

    def _delete_dedicated_calendar(self):
        """Delete our calendar with every class in it, in one call. True when it is gone."""
        self.ensure_one()
        try:
            outcome = self._client().delete_calendar(self.calendar_id)
        except Exception as exc:  # pylint: disable=broad-except
            # Unreadable tokens or unsafe settings: the deadline erases the tokens anyway.
            _logger.info("Calendar account %s: cannot delete its calendar: %s", self.id, exc)
            return False
        if outcome.kind not in (Kind.DONE, Kind.GONE):
            _logger.info("Calendar account %s: calendar delete failed: %s", self.id, outcome.message)
            return False
        outbox.forget_calendar(self.env.cr, self.id, self.calendar_id)
        self.calendar_id = False
        return True

    @api.autovacuum
    def _gc_departed_users(self):
        """Daily safety net for what the res.users and res.groups hooks cannot see (a group
        left through an implied group, SQL)."""
        self._disconnect_departed()

    @api.autovacuum
    def _gc_expired_disconnects(self):
        """Even with the push action stopped, no token outlives a disconnect's deadline."""
        self.sudo().search([
            ("state", "=", "disconnecting"), ("disconnect_deadline", "<", fields.Datetime.now()),
        ])._finish_disconnect_if_done()
