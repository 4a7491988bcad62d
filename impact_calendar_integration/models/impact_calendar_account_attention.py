# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A connection that keeps failing tells its user: the attention state, its reason and an
activity assigned to the instructor, set and cleared by the worker (``sync.attention``)."""

import logging

from odoo import api, fields, models
from odoo.tools import format_datetime, plaintext2html

from ..sync import attention, outbox
from ..sync.config import DEDICATED

_logger = logging.getLogger(__name__)

THRESHOLD_PARAM = "impact_calendar.attention_hours"
ACTIVITY_TYPE = "impact_calendar_integration.mail_activity_type_calendar_attention"
ATTENTION_REASONS = [
    (attention.RECONNECT, "Reconnect"),
    (attention.PASSWORD, "Password refused"),
    (attention.CALENDAR_DELETED, "Calendar deleted"),
    (attention.FAILING, "Provider keeps failing"),
]


class ImpactCalendarAccount(models.Model):
    _name = "impact.calendar.account"
    _inherit = ["impact.calendar.account", "mail.thread", "mail.activity.mixin"]
    # Nobody writes an account through the ORM (every field is read-only, no write ACL): who may
    # read it (its user, managers) may discuss it and schedule activities on it.
    _mail_post_access = "read"

    attention_reason = fields.Selection(
        ATTENTION_REASONS, "Attention", readonly=True, copy=False,
        help="Why the connection needs its user: set when it is paused for a reconnect, or when a "
        "class has failed to push for longer than the threshold in Settings; cleared by itself "
        "once pushes succeed again.",
    )
    needs_attention = fields.Boolean("Needs attention", compute="_compute_needs_attention", store=True, index=True)
    attention_since = fields.Datetime("Needs attention since", readonly=True, copy=False)
    attention_message = fields.Char("What to do", compute="_compute_attention_message")

    @api.depends("attention_reason")
    def _compute_needs_attention(self):
        for account in self:
            account.needs_attention = bool(account.attention_reason)

    @api.depends("attention_reason", "email", "last_error")
    @api.depends_context("uid")
    def _compute_attention_message(self):
        for account in self:
            account.attention_message = account._attention_text() if account.attention_reason else False

    @api.model_create_multi
    def create(self, vals_list):
        # A connection is made by code for its user: no "created" note, no follower of our own.
        accounts = super(
            ImpactCalendarAccount, self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True)
        ).create(vals_list)
        return accounts.with_env(self.env)

    # -- evaluation ---------------------------------------------------------------------------
    @api.model
    def _attention_threshold_hours(self):
        return attention.threshold_hours(self.env["ir.config_parameter"].sudo().get_param(THRESHOLD_PARAM))

    def _failing_since(self):
        """{account id: the oldest ``first_failed_at`` of its links being retried}. Paused links
        do not count: a paused account says so itself, a reconnected one resumes them."""
        if not self.ids:
            return {}
        self.env["impact.calendar.link"].flush_model(["account_id", "state", "first_failed_at"])
        self.env.cr.execute(
            """SELECT account_id, min(first_failed_at) FROM impact_calendar_link
                WHERE account_id = ANY(%s) AND state = %s AND first_failed_at IS NOT NULL
                GROUP BY account_id""",
            (self.ids, outbox.RETRYING),
        )
        return dict(self.env.cr.fetchall())

    def _update_attention(self):
        """Set or clear the attention state of these accounts, and their user's activity: one
        when attention starts (its text follows the reason), marked done when it clears. Called
        by the worker after each round for the accounts it pushed, and hourly for all (a link
        waiting out a long backoff crosses the threshold between two pushes)."""
        accounts = self.sudo().exists()
        if not accounts:
            return
        cutoff = attention.failing_cutoff(fields.Datetime.now(), self._attention_threshold_hours())
        failing = accounts._failing_since()
        for account in accounts:
            reason = None
            if account.state != "disconnecting":
                reason = attention.assess(
                    paused=account.state == "needs_reconnect",
                    revocation=account._provider().revocation_kind(),
                    failing_since=failing.get(account.id),
                    cutoff=cutoff,
                    calendar_missing=account.destination == DEDICATED and not account.calendar_id,
                )
            if (reason or False) == account.attention_reason or not account._attention_change(reason):
                continue
            if reason:
                _logger.info("Calendar account %s needs attention: %s", account.id, reason)
                account._attention_activity_show()
            else:
                _logger.info("Calendar account %s no longer needs attention", account.id)
                account._attention_activity_close()

    def _attention_change(self, reason):
        """Record the new reason (None: no attention) unless another worker just did: one
        statement at READ COMMITTED, so that of two workers evaluating the account at once only
        one makes the change, and only that one creates or closes the activity."""
        self.ensure_one()
        self.flush_recordset()
        self.env.cr.execute(
            """UPDATE impact_calendar_account
                  SET attention_reason = %(reason)s, needs_attention = %(reason)s IS NOT NULL,
                      attention_since = CASE WHEN %(reason)s IS NULL THEN NULL
                                             ELSE coalesce(attention_since, now() AT TIME ZONE 'UTC') END,
                      write_date = now() AT TIME ZONE 'UTC', write_uid = %(uid)s
                WHERE id = %(id)s AND attention_reason IS DISTINCT FROM %(reason)s""",
            {"reason": reason, "id": self.id, "uid": self.env.uid},
        )
        self.invalidate_recordset(["attention_reason", "needs_attention", "attention_since", "write_date", "write_uid"])
        return self.env.cr.rowcount == 1

    @api.model
    def _cron_update_attention(self):
        """Hourly: accounts whose links crossed the threshold while waiting for a retry."""
        # Every account: one per instructor, and a disconnecting one may have a state to clear.
        self.sudo().search([])._update_attention()  # pylint: disable=no-search-all

    # -- what the user is told ------------------------------------------------------------
    def _attention_text(self):
        """What happened and what to do, in the user's words (their language and time zone)."""
        self.ensure_one()
        account = self.with_context(lang=self.user_id.lang or self.env.context.get("lang")).sudo()
        reason = account.attention_reason
        if reason == attention.RECONNECT:
            return account.env._(
                "Odoo can no longer reach your calendar %(account)s: the access was revoked or has "
                "expired. Open Preferences > External and click Reconnect; your classes are kept and "
                "pushed as soon as you do.",
                account=account.email,
            )
        if reason == attention.PASSWORD:
            return account.env._(
                "The calendar server refuses the password of %(account)s (it was changed or revoked). "
                "Make a new app-specific password and connect again from Preferences > External; "
                "your classes are kept and pushed as soon as you do.",
                account=account.email,
            )
        if reason == attention.CALENDAR_DELETED:
            return account.env._(
                "The calendar “%(name)s” was deleted in %(account)s and cannot be created again: "
                "Odoo keeps trying. Check that the account still works, or disconnect and connect "
                "again from Preferences > External.",
                name=account._calendar_name(), account=account.email,
            )
        since = account._attention_failing_since_text()
        return account.env._(
            "Your classes cannot be sent to %(account)s since %(since)s: Odoo keeps trying. The "
            "calendar service answers: %(error)s. If this goes on, tell your administrator.",
            account=account.email, since=since, error=account._attention_error(),
        )

    def _attention_failing_since_text(self):
        since = self._failing_since().get(self.id) or self.attention_since
        return format_datetime(self.env, since, tz=self.user_id.tz) if since else "?"

    def _attention_error(self):
        """The provider's last words on a failing link of this account (else the account's)."""
        link = self.env["impact.calendar.link"].sudo().search(
            [("account_id", "=", self.id), ("state", "=", outbox.RETRYING), ("first_failed_at", "!=", False)],
            order="first_failed_at, id", limit=1,
        )
        return link.last_error or self.last_error or self.env._("no answer")

    def _attention_activity_type(self):
        return self.env.ref(ACTIVITY_TYPE, raise_if_not_found=False)

    def _attention_activities(self):
        activity_type = self._attention_activity_type()
        if not activity_type:
            return self.env["mail.activity"]
        return self.env["mail.activity"].sudo().search([
            ("res_model", "=", self._name), ("res_id", "in", self.ids), ("activity_type_id", "=", activity_type.id),
        ])

    def _attention_activity_show(self):
        """One activity per attention spell, assigned to the instructor: created when attention
        starts, its text updated when the reason changes (never a second one on a retry)."""
        self.ensure_one()
        activity_type = self._attention_activity_type()
        if not activity_type or not self.user_id.active:
            return
        text = self._attention_text()
        summary = self.with_context(lang=self.user_id.lang).env._("Your external calendar needs you")
        activities = self._attention_activities()
        if activities:
            activities.write({"note": plaintext2html(text), "summary": summary})
            return
        self.sudo().activity_schedule(
            ACTIVITY_TYPE, summary=summary, note=plaintext2html(text), user_id=self.user_id.id,
        )

    def _attention_activity_close(self):
        activities = self._attention_activities()
        if activities:
            activities.action_feedback(feedback=self.env._("Solved: the calendar receives the classes again."))

    # -- hooks ------------------------------------------------------------------------------
    @api.model
    def _connect(self, user, provider, tokens, email, destination=None):
        account = super()._connect(user, provider, tokens, email, destination)
        account._update_attention()  # a reconnect answers "reconnect" at once
        return account
