# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import AccessError

from .. import compat
from ..sync import link_states, outbox

PENDING_CHANGES = "impact_calendar.pending_changes"
GC_DAYS = 30  # settled links with nothing at the provider, of classes over this long, go
KEEP_DAYS = 365  # settled links of classes over this long go, whatever the provider holds
MANAGER = "impact_calendar_integration.group_calendar_integration_manager"

# A link is made for a class and each of its connected instructors once someone other than its
# instructors is booked (calendar.event._impact_calendar_not_booked_states); ``{where}``
# narrows the classes (``e``) or the instructors (``i``). Run by the worker only.
INSERT_LINKS = """
    INSERT INTO impact_calendar_link
           (event_ref, event_id, user_id, account_id, dirty, change_seq, generation,
            state, attempts, create_uid, write_uid, create_date, write_date)
    SELECT e.id, e.id, a.user_id, a.id, true, 1, 0, %(pending)s, 0,
           %(uid)s, %(uid)s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
      FROM calendar_event e
      JOIN ({instructors}) i ON i.event_id = e.id
      JOIN impact_calendar_account a ON a.user_id = i.user_id AND a.state = 'connected'
     WHERE {where}
       AND NOT EXISTS (SELECT 1 FROM impact_calendar_link link
                        WHERE link.event_ref = e.id AND link.user_id = i.user_id)
       AND EXISTS (SELECT 1 FROM calendar_attendee att
                    WHERE att.event_id = e.id
                      AND (att.state IS NULL OR att.state <> ALL(%(not_booked)s))
                      AND NOT EXISTS (SELECT 1 FROM ({instructors}) t
                                        JOIN res_users tu ON tu.id = t.user_id
                                       WHERE t.event_id = e.id AND tu.partner_id = att.partner_id))
    ORDER BY e.id
    ON CONFLICT (event_ref, user_id) DO NOTHING
"""


class ImpactCalendarLink(models.Model):
    """Binder and outbox row: one (Odoo event, instructor) pair and what we pushed for it.

    Kept apart from ``calendar_event`` so that the cron never writes booking rows.
    """

    _name = "impact.calendar.link"
    _description = "External Calendar Sync Link"
    _order = "id desc"
    _rec_name = "event_ref"

    event_ref = fields.Integer("Odoo event id", required=True, index=True, readonly=True)
    event_id = fields.Many2one("calendar.event", ondelete="set null", readonly=True)
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", index=True, readonly=True)
    account_id = fields.Many2one(
        "impact.calendar.account", ondelete="cascade", index=True, readonly=True
    )
    provider = fields.Selection(related="account_id.provider")
    external_id = fields.Char(readonly=True, copy=False)
    external_calendar = fields.Char(
        readonly=True, copy=False,
        help="The calendar the external event is in: empty for the user's main calendar, else the "
        "id of the dedicated calendar the addon created.",
    )
    generation = fields.Integer(default=0, readonly=True)
    pushed_hash = fields.Char(readonly=True)
    dirty = fields.Boolean(default=True, readonly=True)  # partial index in init()
    change_seq = fields.Integer(default=1, readonly=True)
    state = fields.Selection(  # written by sync.link_states.apply only
        link_states.LABELS,
        default=link_states.INITIAL,
        required=True,
        readonly=True,
        index=True,
    )
    attempts = fields.Integer(readonly=True)
    next_try = fields.Datetime(readonly=True)
    last_error = fields.Char(readonly=True)
    first_failed_at = fields.Datetime(
        "Failing since", readonly=True, copy=False,
        help="When the first failure since the last successful push was recorded; kept across "
        "retries, cleared by a success.",
    )
    last_push_at = fields.Datetime(readonly=True)
    claimed_until = fields.Datetime(readonly=True)
    claim_token = fields.Char(readonly=True)
    claim_pid = fields.Integer(
        "Claiming connection", readonly=True,
        help="The PostgreSQL backend of the worker holding the claim: when it is gone (the worker "
        "died), the claim is taken over within seconds instead of at the end of its lease.",
    )
    wait_reason = fields.Selection(
        [(outbox.WAIT_BACKOFF, "Provider failure"), (outbox.WAIT_THROTTLE, "Throttled by the provider")],
        readonly=True,
        help="Why a retrying link waits: after a provider failure it is pushed again as soon as the "
        "account answers; a throttled account waits as long as the provider asked.",
    )
    create_sent = fields.Boolean(
        readonly=True,
        help="A create went out and its answer is not recorded yet: if the worker dies, the "
        "retried create may be answered with the event made from an older version.",
    )

    locals().update(compat.sql_constraints(  # models.Constraint on 19.0
        ("event_user_uniq", "unique(event_ref, user_id)", "One link per event and instructor."),
    ))

    def init(self):
        # Workers look for dirty links only, and few are dirty at a time: a partial index.
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS impact_calendar_link_dirty_idx
                   ON impact_calendar_link (next_try NULLS FIRST, id) WHERE dirty"""
        )

    @api.autovacuum
    def _gc_settled_links(self):
        """Drop settled links that no longer matter (Odoo's daily autovacuum runs this): nothing
        of ours at the provider and the class deleted or over for ``GC_DAYS``, or the class over
        for ``KEEP_DAYS`` (its event stays in the calendar; nobody edits a class that old)."""
        self.env.cr.execute(
            """DELETE FROM impact_calendar_link link
                WHERE NOT link.dirty AND link.claim_token IS NULL
                  AND NOT EXISTS (SELECT 1 FROM calendar_event e
                                   WHERE e.id = link.event_ref
                                     AND e.stop >= (now() AT TIME ZONE 'UTC')
                                                   - make_interval(days => CASE WHEN link.external_id IS NULL
                                                                                THEN %s ELSE %s END))""",
            (GC_DAYS, KEEP_DAYS),
        )
        return self.env.cr.rowcount

    # -- booking side: *mark* in the transaction, *append* at commit (see sync.link_states) --
    @api.model
    def _mark_events_dirty(self, event_ids):
        self._mark(outbox.CHANGE_EVENT, event_ids)

    @api.model
    def _mark_users_dirty(self, user_ids, kind=outbox.CHANGE_USER):
        """``kind``: CHANGE_USER, or CHANGE_BACKFILL (also the user's future classes),
        CHANGE_RETRY (also drop backoff and pause) or CHANGE_RESYNC (send everything again)."""
        self._mark(kind, user_ids)

    @api.model
    def _mark(self, kind, ids):
        """Collect ids for the transaction; at commit, one call appends them to the change log."""
        if not ids or self.env.context.get("impact_calendar_no_sync"):
            return
        data = compat.precommit_data(self.env.cr)
        if PENDING_CHANGES not in data:
            self.env.cr.precommit.add(self._append_changes)
        data.setdefault(PENDING_CHANGES, defaultdict(set))[kind].update(ids)

    @api.model
    def _append_changes(self):
        """Append the transaction's changes to the change log and wake the worker.

        Never writes a link: a booking cannot conflict with a push being recorded."""
        pending = compat.precommit_data(self.env.cr).pop(PENDING_CHANGES, {})
        events = sorted(pending.pop(outbox.CHANGE_EVENT, ()))
        changes = [
            (None, user_id, kind) for kind, user_ids in sorted(pending.items()) for user_id in sorted(user_ids)
        ]
        # One SQL statement (impact_calendar_link_append.py): nothing is left for the ORM to
        # flush after precommit.
        self._append_and_wake(events, changes)

    @api.model
    def _wake_push_action(self):
        """``ir.cron._trigger()`` of the push action, in one statement."""
        self._append_and_wake(always=True)

    # -- worker side: *fold* the change log into the links -----------------------------------
    @api.model
    def _fold_changes(self):
        """Turn committed changes into dirty links (and new ones). Returns the changes taken."""
        self.flush_model()
        cr = self.env.cr
        changes = outbox.take_changes(cr)
        if not changes:
            return 0
        by_kind = defaultdict(set)
        for event_ref, user_id, kind in changes:
            by_kind[kind].add(event_ref if kind == outbox.CHANGE_EVENT else user_id)
        retry_links = {(ref, uid) for ref, uid, kind in changes if kind == outbox.CHANGE_RETRY and ref}
        retry_users = {uid for ref, uid, kind in changes if kind == outbox.CHANGE_RETRY and not ref}
        resync = by_kind[outbox.CHANGE_RESYNC]
        backfill = by_kind[outbox.CHANGE_BACKFILL] | resync
        events = sorted(by_kind[outbox.CHANGE_EVENT])
        outbox.fold_events(cr, events)
        outbox.fold_users(cr, sorted(by_kind[outbox.CHANGE_USER] | backfill))
        outbox.fold_users(cr, sorted(retry_users | resync), retry=True)
        outbox.fold_users(cr, sorted(resync), retry=True, forget=True)
        outbox.fold_retries(cr, sorted(retry_links))
        if events:
            self._insert_links("e.id = ANY(%(events)s)", events=events)
        if backfill:
            self._insert_links(
                "i.user_id = ANY(%(users)s) AND e.active AND e.stop >= now() AT TIME ZONE 'UTC'",
                users=sorted(backfill),
            )
        self.invalidate_model()
        return len(changes)

    @api.model
    def _instructors_query(self):
        return self.env["calendar.event"]._impact_calendar_instructors_query()

    def _insert_links(self, where, **params):
        # ``where`` is a constant of this module and the instructors query code; every value
        # goes through a parameter.
        not_booked = list(self.env["calendar.event"]._impact_calendar_not_booked_states())
        self.env.cr.execute(  # pylint: disable=sql-injection
            INSERT_LINKS.format(where=where, instructors=self._instructors_query()),
            dict(params, uid=self.env.uid, pending=link_states.INITIAL, not_booked=not_booked),
        )

    # -- admin actions --------------------------------------------------------------------
    def action_retry(self):
        """Try failed or waiting links again now (managers only)."""
        if not self.env.user.has_group(MANAGER):
            raise AccessError(self.env._("Only calendar integration managers can retry pushes."))
        self.check_access("read")
        self._append_and_wake(
            changes=[(link.event_ref, link.user_id.id, outbox.CHANGE_RETRY) for link in self.sudo()], always=True
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"message": self.env._("%(count)s link(s) queued.", count=len(self)), "type": "success"},
        }
