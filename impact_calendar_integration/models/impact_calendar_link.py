# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models

from ..sync import outbox

DIRTY_EVENTS = "impact_calendar.dirty_event_ids"
DIRTY_USERS = "impact_calendar.dirty_user_ids"
BACKFILL_USERS = "impact_calendar.backfill_user_ids"

# A link is made for a class of a connected instructor once someone other than the organizer
# is booked and has not declined; ``{where}`` narrows the classes. One statement with the
# update of the existing links, so that a booking transaction pays one query for both.
INSERT_LINKS = """
    INSERT INTO impact_calendar_link
           (event_ref, event_id, user_id, account_id, dirty, change_seq, generation,
            state, attempts, create_uid, write_uid, create_date, write_date)
    SELECT e.id, e.id, a.user_id, a.id, true, 1, 0, 'pending', 0,
           %(uid)s, %(uid)s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
      FROM calendar_event e
      JOIN impact_calendar_account a ON a.user_id = e.user_id AND a.state = 'connected'
      JOIN res_users u ON u.id = e.user_id
     WHERE {where}
       AND NOT EXISTS (SELECT 1 FROM impact_calendar_link link
                        WHERE link.event_ref = e.id AND link.user_id = e.user_id)
       AND EXISTS (SELECT 1 FROM calendar_attendee att
                    WHERE att.event_id = e.id
                      AND att.partner_id IS DISTINCT FROM u.partner_id
                      AND att.state IS DISTINCT FROM 'declined')
    ON CONFLICT (event_ref, user_id) DO NOTHING
    RETURNING 1
"""
MARK_DIRTY = """
    UPDATE impact_calendar_link
       SET dirty = true, change_seq = change_seq + 1,
           state = CASE WHEN state = 'rejected' THEN 'pending' ELSE state END,
           next_try = CASE WHEN state = 'rejected' THEN NULL ELSE next_try END
     WHERE {where}
    RETURNING 1
"""
MARK_AND_INSERT = """
    WITH touched AS ({mark}), inserted AS ({insert})
    SELECT (SELECT count(*) FROM touched) + (SELECT count(*) FROM inserted)
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
    generation = fields.Integer(default=0, readonly=True)
    pushed_hash = fields.Char(readonly=True)
    dirty = fields.Boolean(default=True, index=True, readonly=True)
    change_seq = fields.Integer(default=1, readonly=True)
    state = fields.Selection(
        [
            ("pending", "Waiting"),
            ("synced", "In calendar"),
            ("retrying", "Retrying"),
            ("rejected", "Rejected"),
            ("paused", "Paused (reconnect)"),
        ],
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    attempts = fields.Integer(readonly=True)
    next_try = fields.Datetime(readonly=True)
    last_error = fields.Char(readonly=True)
    last_push_at = fields.Datetime(readonly=True)
    claimed_until = fields.Datetime(readonly=True)
    claim_token = fields.Char(readonly=True)
    create_sent = fields.Boolean(
        readonly=True,
        help="A create went out and its answer is not recorded yet: if the worker dies, the "
        "retried create may be answered with the event made from an older version.",
    )

    _sql_constraints = [
        ("event_user_uniq", "unique(event_ref, user_id)", "One link per event and instructor."),
    ]

    # -- listener side: called from booking writes, no network, bounded SQL at commit -----
    @api.model
    def _mark_events_dirty(self, event_ids):
        self._defer(DIRTY_EVENTS, event_ids)

    @api.model
    def _mark_users_dirty(self, user_ids, backfill=False):
        self._defer(BACKFILL_USERS if backfill else DIRTY_USERS, user_ids)

    @api.model
    def _defer(self, key, ids):
        """Collect ids for the transaction; one flush at commit does the SQL for all of them."""
        if not ids:
            return
        data = self.env.cr.precommit.data
        if not any(k in data for k in (DIRTY_EVENTS, DIRTY_USERS, BACKFILL_USERS)):
            self.env.cr.precommit.add(self._flush_dirty)
        data.setdefault(key, set()).update(ids)

    @api.model
    def _flush_dirty(self):
        data = self.env.cr.precommit.data
        event_ids = sorted(data.pop(DIRTY_EVENTS, ()))
        user_ids = sorted(data.pop(DIRTY_USERS, ()))
        backfill_ids = sorted(data.pop(BACKFILL_USERS, ()))
        touched = 0
        if event_ids:
            touched += self._sql_mark_events(event_ids)
        if user_ids or backfill_ids:
            touched += self._sql_mark_users(user_ids + backfill_ids, backfill_ids)
        if touched:
            self.env.ref("impact_calendar_integration.ir_cron_push_bookings").sudo()._trigger()
            self.env.flush_all()

    def _sql_mark_events(self, event_ids):
        """Dirty the links of these events (any organizer, old or new); add the missing ones."""
        return self._sql_mark_and_insert(
            "event_ref = ANY(%(events)s)", "e.id = ANY(%(events)s)", events=event_ids
        )

    def _sql_mark_users(self, user_ids, backfill_ids):
        """Dirty every link of these users; for backfill, add links for their future classes."""
        return self._sql_mark_and_insert(
            "user_id = ANY(%(users)s)",
            "e.user_id = ANY(%(backfill)s) AND e.active AND e.stop >= now() AT TIME ZONE 'UTC'",
            users=user_ids,
            backfill=backfill_ids,
        )

    def _sql_mark_and_insert(self, mark_where, insert_where, **params):
        # Both conditions are constants of this module; every value goes through a parameter.
        query = MARK_AND_INSERT.format(
            mark=MARK_DIRTY.format(where=mark_where), insert=INSERT_LINKS.format(where=insert_where)
        )
        self.env.cr.execute(query, dict(params, uid=self.env.uid))  # pylint: disable=sql-injection
        return self.env.cr.fetchone()[0]

    @api.model
    def _resume_account(self, account):
        self.flush_model()
        resumed = outbox.resume_account(self.env.cr, account.id)
        self.invalidate_model()
        return resumed

    # -- admin actions --------------------------------------------------------------------
    def action_retry(self):
        """Try failed or waiting links again now."""
        self.sudo().write({"next_try": False, "state": "pending", "dirty": True})
        self.env.ref("impact_calendar_integration.ir_cron_push_bookings").sudo()._trigger()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"message": self.env._("%(count)s link(s) queued.", count=len(self)), "type": "success"},
        }
