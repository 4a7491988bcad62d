# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Synchronizer: the cron worker that drains the outbox into the providers."""

import ast
import logging
import time
import uuid
from collections import defaultdict

import psycopg2.errors

from odoo import api, fields, models
from odoo.exceptions import UserError

from .. import compat
from ..sync import ids, outbox, payload, planner, policy
from ..sync.outcomes import Kind
from ..sync.providers.base import CREATE, DELETE, Operation
from ..sync.vault import VaultKeyError

_logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # links claimed per round: whole batches for both (2 Google of 50, 5 Graph of 20)
LEASE_SECONDS = 300  # a claim older than this is taken over (the worker died)
TIME_BUDGET = 240  # seconds per cron run; the cron is re-triggered for what remains
RECORD_ATTEMPTS = 3  # a recording that conflicts is recorded again, then its claims released


class ImpactCalendarSynchronizer(models.AbstractModel):
    _name = "impact.calendar.synchronizer"
    _description = "External Calendar Synchronizer"

    # -- cron entry point ------------------------------------------------------------------
    #
    # Transactions of a round: the writes (fold the change log and claim; settle and record)
    # run at READ COMMITTED, where a statement that meets a concurrent writer waits and then
    # applies to the row's newest version instead of failing to serialize; every one of them is
    # guarded by the claim token and ``change_seq``, so that is what we mean. The reads that
    # build the payload run at Odoo's REPEATABLE READ: one consistent picture of the class.
    # Booking transactions only append to the change log, so they never meet these writes.
    @api.model
    def _cron_push(self, time_budget=TIME_BUDGET):
        started = time.monotonic()
        done = 0
        woken = False
        while time.monotonic() - started < time_budget:
            try:
                pushed = self._push_round()
            except (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected):
                # Another worker's update (claims are already released): look again.
                self._rollback()
                _logger.info("Calendar push round hit a concurrent update; retrying")
                continue
            if not pushed and not outbox.has_changes(self.env.cr):
                break
            done += pushed
            remaining = outbox.count_due(self.env.cr)
            compat.cron_progress(self.env, pushed, done, remaining)
            if remaining > BATCH_SIZE and not woken:
                self._wake_workers()
                woken = True
        self._commit(read_committed=True)
        accounts = self.env["impact.calendar.account"].sudo()
        accounts.search([("state", "=", "disconnecting")])._finish_disconnect_if_done()
        self._schedule_next()
        return done

    @api.model
    def _push_round(self, limit=BATCH_SIZE):
        """Fold the change log, claim one batch, push it, record the results.
        Returns the number of links handled."""
        token = uuid.uuid4().hex
        links = self.env["impact.calendar.link"].sudo()
        self._commit(read_committed=True)
        links._absorb_changes()
        links.flush_model()
        claimed = outbox.claim(self.env.cr, token, limit=limit, lease=LEASE_SECONDS)
        # The lease must be visible to other workers before we talk to the network.
        self._commit()
        if not claimed:
            return 0
        seqs = dict(claimed)
        links = links.browse(list(seqs))
        links.invalidate_recordset()
        by_account = defaultdict(lambda: self.env["impact.calendar.link"].sudo())
        for link in links:
            by_account[link.account_id] |= link
        try:
            for account, account_links in by_account.items():
                self._push_account(account, account_links, token, seqs)
                self._commit()
        except Exception:
            # No claim outlives its round: what was not recorded is due again at once.
            self._release(token)
            raise
        # Results were written in SQL: drop the ORM's cached link values before reading them.
        self.env["impact.calendar.link"].invalidate_model()
        self._commit(read_committed=True)
        self.env["impact.calendar.account"].browse([a.id for a in by_account])._finish_disconnect_if_done()
        self._commit()
        return len(claimed)

    @api.model
    def _commit(self, read_committed=False):
        """End the transaction; ``read_committed``: the next one runs at READ COMMITTED."""
        # Tests run inside one transaction that must not be committed.
        if not compat.testing():
            self.env.cr.commit()  # pylint: disable=invalid-commit
            if read_committed:
                self.env.cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    @api.model
    def _rollback(self):
        if not compat.testing():
            self.env.cr.rollback()

    @api.model
    def _release(self, token):
        """Release what this round still holds after a failure, committed at once."""
        self._rollback()
        self._commit(read_committed=True)
        if outbox.release(self.env.cr, token):
            _logger.info("Calendar push: released claims whose results were not recorded")
        self._commit()

    @api.model
    def _workers(self):
        """Every active scheduled action running this push: the shipped one, and the copies an
        admin made of it to drain a backlog in parallel (claims skip what another holds)."""
        return self.env["ir.cron"].sudo().search([
            ("model_id.model", "=", self._name),
            ("code", "=", "model._cron_push()"),
            ("active", "=", True),
        ])

    @api.model
    def _wake_workers(self):
        """A backlog: ask the other workers to join instead of waiting for their interval."""
        for cron in self._workers():
            cron._trigger()

    @api.model
    def _schedule_next(self):
        due = outbox.next_due(self.env.cr)
        if due:
            cron = self.env.ref("impact_calendar_integration.ir_cron_push_bookings").sudo()
            cron._trigger(at=max(due, fields.Datetime.now()))

    # -- one account -------------------------------------------------------------------------
    def _push_account(self, account, links, token, seqs):
        """Plan (read), settle what needs no call (write), push, record the outcomes (write)."""
        cr = self.env.cr
        settle, ops, op_links = [], [], {}
        client = None
        if account.state == "needs_reconnect":
            settle = [(outbox.finish_paused, link, (account.last_error,)) for link in links]
        else:
            for link in links:
                op = self._operation_for(link, account, settle)
                if op:
                    ops.append(op)
                    op_links[op.key] = (link, op)
        reconnect = None
        if ops:
            try:
                client = account._client()
            except VaultKeyError as exc:
                reconnect = str(exc)
                settle += [(outbox.finish_paused, link, (reconnect,)) for link, _op in op_links.values()]
                ops = []
            except UserError as exc:
                # Settings are incomplete or unsafe: keep every change and try again later.
                settle += [
                    (outbox.finish_retry, link, (policy.MAX_DELAY, exc.args[0])) for link, _op in op_links.values()
                ]
                ops = []
        self._commit(read_committed=True)
        if reconnect:
            account._mark_needs_reconnect(reconnect)
        for finish, link, args in sorted(settle, key=lambda item: item[1].id):
            finish(cr, link.id, token, seqs[link.id], *args)
        if not ops:
            return
        # A worker that dies after the provider made an event leaves this mark behind, so that
        # the retried create's answer (the old event) is followed by an update.
        outbox.mark_create_sent(cr, [op.key for op in ops if op.action == CREATE])
        self._commit()
        outcomes = client.push(ops)
        # Tokens the provider rotated during the push are kept, whatever follows.
        self._commit(read_committed=True)
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                self._record(account, op_links, outcomes, token, seqs)
                return
            except (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected):
                # Recording is idempotent (guarded by the claim token): record it again.
                if attempt == RECORD_ATTEMPTS:
                    raise
                self._rollback()
                self._commit(read_committed=True)
                _logger.info("Calendar push: recording hit a concurrent update; recording again")

    def _operation_for(self, link, account, settle):
        """Plan the link: an Operation to send, or None after adding to ``settle`` what to
        record without any provider call."""
        try:
            snapshot = self._desired_snapshot(link, account)
            body = payload.build_body(account.provider, snapshot) if snapshot else None
        except payload.PayloadError as exc:
            settle.append((outbox.finish_rejected, link, (str(exc),)))
            return None
        if body is None and link.external_id and self._forget_instead_of_delete(link, account):
            settle.append((outbox.finish_done, link, (None, None, link.generation)))
            return None
        step = planner.plan(link.external_id, link.pushed_hash, body, body and payload.body_hash(body))
        if step.action == planner.NOTHING:
            settle.append((outbox.finish_done, link, (link.external_id, step.body_hash, link.generation)))
            return None
        client_id = None
        if step.action == CREATE:
            make_id = ids.deterministic_event_id if account.provider == "google" else ids.transaction_id
            client_id = make_id(self._namespace(), link.event_ref, link.user_id.id, link.generation)
        return Operation(
            key=link.id,
            action=step.action,
            body=step.body,
            external_id=link.external_id,
            client_id=client_id,
            meta={"hash": step.body_hash, "resent": step.action == CREATE and link.create_sent},
        )

    def _forget_instead_of_delete(self, link, account):
        """Past classes stay in the calendar when syncing stops (disconnect, group lost)."""
        if self._user_enabled(account) and account.state == "connected":
            return False
        event = link.event_id
        return bool(event) and event.stop and event.stop < fields.Datetime.now()

    def _record(self, account, op_links, outcomes, token, seqs):
        cr = self.env.cr
        pushed_any = False
        for key, (link, op) in sorted(op_links.items()):  # links are locked in id order
            outcome = outcomes[key]
            seq = seqs[link.id]
            kind = outcome.kind
            retried_create = op.action == CREATE and (
                outcome.status == 409 or link.attempts or op.meta.get("resent")
            )
            if kind is Kind.DONE and retried_create:
                # A retried create may be answered with the event an earlier try made from an
                # older version of the class (Google: 409 then GET; Graph: same transactionId).
                # Keep its id; the next round sends the current body as an update.
                external_id = outcome.external_id or op.external_id
                outbox.finish_created_unverified(cr, link.id, token, seq, external_id, link.generation)
                pushed_any = True
            elif kind is Kind.DONE or (kind is Kind.GONE and op.action == DELETE):
                external_id = None if op.action == DELETE else (outcome.external_id or op.external_id)
                outbox.finish_done(cr, link.id, token, seq, external_id, op.meta.get("hash"), link.generation)
                pushed_any = True
            elif kind is Kind.GONE:
                # Odoo is the truth: the event vanished at the provider (or its id is burned), recreate.
                outbox.finish_recreate(cr, link.id, token, seq, link.generation + 1, outcome.message)
            elif kind in (Kind.RATE_LIMITED, Kind.TRANSIENT):
                delay = policy.retry_delay(outcome, link.attempts + 1)
                outbox.finish_retry(cr, link.id, token, seq, delay, outcome.message or kind.value)
                if kind is Kind.RATE_LIMITED:
                    outbox.hold_account(cr, account.id, delay)
            elif kind is Kind.AUTH_REVOKED:
                account._mark_needs_reconnect(outcome.message or "access revoked")
                outbox.finish_paused(cr, link.id, token, seq, outcome.message)
            else:
                outbox.finish_rejected(cr, link.id, token, seq, outcome.message or kind.value)
                account.sudo().last_error = outcome.message
        if pushed_any:
            values = {"last_push_at": fields.Datetime.now()}
            if account.state == "connected":
                values["last_error"] = False
            account.sudo().write(values)


    # -- what the external calendar must show ------------------------------------------------
    @api.model
    def _namespace(self):
        return self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")

    def _user_enabled(self, account):
        user = account.user_id
        return (
            user.active
            and user.has_group("impact_calendar_integration.group_calendar_integration")
            and not account.native_sync_conflict
        )

    def _desired_snapshot(self, link, account):
        """The ClassSnapshot the external event must show, or None when it must not exist."""
        event = link.event_id.with_context(active_test=False).sudo()
        if not event or not event.active or event.user_id != link.user_id:
            return None
        if account.state != "connected" or not self._user_enabled(account):
            return None
        if not self._in_scope(event):
            return None
        return event._impact_calendar_snapshot(
            link.user_id, include_names=self._include_names(), marker=f"{self._namespace()}:{event.id}"
        )

    def _include_names(self):
        param = self.env["ir.config_parameter"].sudo().get_param("impact_calendar.include_student_names")
        return param in ("1", "True", "true")

    def _in_scope(self, event):
        raw = self.env["ir.config_parameter"].sudo().get_param("impact_calendar.event_domain") or "[]"
        try:
            domain = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            _logger.warning("impact_calendar.event_domain is not a valid domain: %r", raw)
            domain = []
        return not domain or bool(event.filtered_domain(domain))

    # -- helpers for tests and the Resync button -----------------------------------------------
    @api.model
    def _drain(self, rounds=20):
        """Run rounds until nothing is due (tests, the first-run demo)."""
        total = 0
        for _round in range(rounds):
            pushed = self._push_round()
            if not pushed:
                break
            total += pushed
        return total


