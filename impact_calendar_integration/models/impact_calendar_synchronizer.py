# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Synchronizer: the cron worker that drains the outbox into the providers."""

import logging
import threading
import uuid
from collections import defaultdict

import psycopg2.errors

from odoo import api, fields, models
from odoo.exceptions import UserError

from .. import compat, cron_wakeup
from ..sync import engine, outbox, pacing, payload, policy
from ..sync.outcomes import Kind
from ..sync.providers.base import CREATE
from ..sync.vault import VaultKeyError

_logger = logging.getLogger(__name__)

BATCH_SIZE = 100  # links claimed per round: a multiple of every provider's batch size (whole batches)
LEASE_SECONDS = 300  # a claim older than this is taken over (the worker died)
TIME_BUDGET = 240  # seconds per cron run; the cron is re-triggered for what remains
RECORD_ATTEMPTS = 3  # a recording that conflicts is recorded again, then its claims released
# The gaps this process's runs keep (sync/pacing.py); tests put an unpaced one in its place.
PACER = pacing.RunPacer()
_PROVIDERS_PACKAGE = __name__.rsplit(".", 2)[0] + ".sync.providers"
CALENDAR_WAIT = 10  # seconds classes wait while another worker creates their calendar


class ImpactCalendarSynchronizer(models.AbstractModel):
    _name = "impact.calendar.synchronizer"
    _description = "External Calendar Synchronizer"

    # -- cron entry point ------------------------------------------------------------------
    # (its transactions: impact_calendar_synchronizer_transactions.py)
    @api.model
    def _cron_push(self, time_budget=TIME_BUDGET):
        run_started = self._db_now()  # before any wait: see _drop_spent_triggers
        # This process's booking commits leave their wake-up to this run (cron_wakeup.covered).
        with cron_wakeup.running(self.env.cr.dbname, run_started):
            return self._run_push(run_started, time_budget)

    @api.model
    def _run_push(self, run_started, time_budget):
        pacer = PACER
        cpu_started = pacer.thread_clock()
        self._keep_run_gap()
        started = pacer.clock()
        done = 0
        woken = False
        while pacer.clock() - started < time_budget:
            try:
                pushed = self._push_round()
            except (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected):
                # Another worker's update (claims are already released): look again.
                self._rollback()
                _logger.info("Calendar push round hit a concurrent update; retrying")
                continue
            except Exception:  # pylint: disable=broad-except
                # Accounts fail on their own (_push_isolated); this is the round itself (claims
                # are already released). Odoo's scheduler must not see it: after a few failures
                # it would switch the push off for every account.
                self._rollback()
                _logger.exception("Calendar push round failed; the next run tries again")
                break
            done += pushed
            remaining = outbox.count_due(self.env.cr)
            compat.cron_progress(self.env, pushed, done, remaining)
            if not pushed or (pushed < BATCH_SIZE and not remaining):
                # Caught up. Changes committed since the round began have woken the worker
                # themselves; in a burst this run takes them after its gap, instead of ending and
                # being scheduled again for them. A round that found nothing ends the run and
                # leaves the last push's gap as it was: a change made after it goes out at once.
                if not pushed or not self._burst_goes_on(started, cpu_started):
                    break
                cpu_started = pacer.thread_clock()
                continue
            if remaining > BATCH_SIZE and not woken:
                self._wake_workers()
                woken = True
        self._commit(read_committed=True)
        accounts = self.env["impact.calendar.account"].sudo()
        accounts.search([("state", "=", "disconnecting")])._finish_disconnect_if_done()
        self._drop_spent_triggers(run_started)
        self._schedule_next()
        self._commit()
        return done

    @api.model
    def _db_now(self):
        self.env.cr.execute("SELECT statement_timestamp() AT TIME ZONE 'UTC'")
        return self.env.cr.fetchone()[0]

    @api.model
    def _pace_key(self):
        return self.env.cr.dbname, threading.get_ident()

    @api.model
    def _keep_run_gap(self):
        self._commit()  # no transaction stays open across the wait
        PACER.wait_gap(self._pace_key())

    @api.model
    def _burst_goes_on(self, started, cpu_started):
        """Once caught up: whether this run waits its gap and pushes what came meanwhile
        (``RunPacer.burst_goes_on``)."""
        if not PACER.burst_goes_on(self._pace_key(), started, cpu_started):
            return False
        self._keep_run_gap()
        return outbox.has_changes(self.env.cr)  # a new snapshot: what was committed meanwhile

    @api.model
    def _drop_spent_triggers(self, run_started):
        """Drop the wake-ups whose changes this run took: with the change log empty, every
        trigger committed so far is spent. In one statement (one snapshot), so that a booking
        committed after it keeps its trigger. Only triggers made since this run began
        (``run_started``: the database's clock, after the scheduler's own transaction began),
        which the scheduler's own clean-up leaves alone: no two transactions delete one row."""
        cron = self.env.ref("impact_calendar_integration.ir_cron_push_bookings", raise_if_not_found=False)
        if not cron:
            return
        compat.drop_cron_triggers(self.env.cr, cron.id, run_started, while_empty="impact_calendar_change")

    @api.model
    def _push_round(self, limit=BATCH_SIZE):
        """Fold the change log, claim one batch, push it, record the results.
        Returns the number of links handled."""
        token = uuid.uuid4().hex
        links = self.env["impact.calendar.link"].sudo()
        self._commit(read_committed=True)
        links._fold_changes()
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
                self._push_isolated(account, account_links, token, seqs)
        except Exception:
            # No claim outlives its round: what was not recorded is due again at once.
            self._release(token)
            raise
        # Results were written in SQL: drop the ORM's cached link values before reading them.
        self.env["impact.calendar.link"].invalidate_model()
        self._commit(read_committed=True)
        accounts = self.env["impact.calendar.account"].browse([a.id for a in by_account])
        accounts._finish_disconnect_if_done()
        accounts._update_attention()
        self._commit()
        return len(claimed)

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
        """A trigger at the earliest due time, and a wake-up of this process's cron workers then:
        Odoo's cron threads look at future triggers only once a minute."""
        due = outbox.next_due(self.env.cr, lease=LEASE_SECONDS)
        if due:
            cron = self.env.ref("impact_calendar_integration.ir_cron_push_bookings").sudo()
            at = max(due, fields.Datetime.now())
            cron._trigger(at=at)
            if not compat.testing():
                dbname = self.env.cr.dbname
                self.env.cr.postcommit.add(lambda: cron_wakeup.notify_at(dbname, at))

    # -- one account -------------------------------------------------------------------------
    def _push_isolated(self, account, links, token, seqs):
        """Push one account of the round; whatever it raises stays with it. A concurrent
        update (serialization failure, deadlock) ends the round, whose caller retries it; any
        other exception is rolled back and recorded on the account, its links wait a backoff,
        and the round goes on with the next account."""
        try:
            self._push_account(account, links, token, seqs)
            self._commit()
        except (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected):
            raise
        except Exception as exc:  # pylint: disable=broad-except
            self._rollback()
            self._commit(read_committed=True)
            self._account_failed(account, links, token, seqs, exc)
            self._commit()

    def _account_failed(self, account, links, token, seqs, exc):
        """Record an account's unexpected failure: its links still held wait a backoff (not due
        at once, or they would be claimed first on every run, ahead of every other account),
        and the account shows a short error until a push succeeds."""
        from_provider = _raised_by_provider(exc)
        if from_provider:
            # A provider's answer that its module does not classify: the server's fault, not ours.
            _logger.warning(
                "Calendar push: account %s: the provider's answer could not be handled; retrying later",
                account.id, exc_info=True,
            )
            message = self.env._("The calendar service sent an answer that could not be handled; it will be tried again later.")
        else:
            _logger.exception("Calendar push: account %s failed unexpectedly; retrying later", account.id)
            message = self.env._(
                "Sending to this calendar failed unexpectedly; it will be tried again later. "
                "If this persists, tell your administrator."
            )
        links = links.exists()
        links.invalidate_recordset()
        for link in links.sorted("id"):
            outbox.record(self.env.cr, link.id, token, seqs[link.id], engine.failed(self._link_state(link), message))
        account.sudo().last_error = message

    def _push_account(self, account, links, token, seqs):
        """Plan (read), settle what needs no call (write), push, record the outcomes (write)."""
        settle, ops, op_links = [], [], {}
        client = None
        if account.state == "needs_reconnect":
            settle = [(link, engine.paused(account.last_error)) for link in links]
        else:
            target = account._target_calendar()
            rules = self.env["calendar.event"]._impact_calendar_desired_rules(account)
            for link in links:
                step = self._plan(link, account, target, rules)
                if isinstance(step, engine.Transition):
                    settle.append((link, step))
                else:
                    ops.append(step)
                    op_links[step.key] = link
        reconnect = None
        if ops:
            try:
                client = account._client()
            except VaultKeyError as exc:
                reconnect = str(exc)
                settle += [(link, engine.paused(reconnect)) for link in op_links.values()]
                ops = []
            except UserError as exc:
                # Settings are incomplete or unsafe: keep every change and try again later.
                settle += [(link, engine.waiting(policy.MAX_DELAY, exc.args[0])) for link in op_links.values()]
                ops = []
        self._commit(read_committed=True)
        if reconnect:
            account._mark_needs_reconnect(reconnect)
        self._apply(account, settle, token, seqs)
        if any(op.meta.get("calendar") is False for op in ops):
            ops = self._into_dedicated_calendar(account, client, ops, op_links, token, seqs)
        if not ops:
            return
        # A worker that dies after the provider made an event leaves this mark behind, so that
        # the retried create's answer (the old event) is followed by an update.
        outbox.mark_create_sent(self.env.cr, [op.key for op in ops if op.action == CREATE])
        self._commit()
        outcomes = {}
        by_calendar = defaultdict(list)
        for op in ops:
            by_calendar[op.meta.get("calendar")].append(op)
        for calendar_id, calendar_ops in by_calendar.items():
            client.calendar_id = calendar_id
            outcomes.update(client.push(calendar_ops))
        overrides = self._check_lost_calendars(account, client, ops, outcomes, op_links)
        # Tokens the provider rotated during the push are kept, whatever follows.
        self._commit(read_committed=True)
        self._record_results(account, ops, op_links, outcomes, token, seqs, overrides)
        self._note_account_health(account, list(outcomes.values()))

    def _note_account_health(self, account, outcomes):
        """Recovery: an account that answers again has its links waiting on a transient
        failure's backoff pushed at once; one that failed transiently keeps a link due within
        ``engine.PROBE_DELAY``, which sees the outage end whatever the other links' backoff."""
        self._commit(read_committed=True)
        if engine.answered_again(outcomes):
            if outbox.resume_account(self.env.cr, account.id):
                _logger.info("Calendar push: account %s answers again; its waiting changes are due", account.id)
        elif engine.failed_transiently(outcomes):
            outbox.keep_probe(self.env.cr, account.id, engine.PROBE_DELAY)

    # -- the dedicated calendar ----------------------------------------------------------------
    def _into_dedicated_calendar(self, account, client, ops, op_links, token, seqs):
        """Ops waiting for the dedicated calendar get its id, once it exists (made here if
        need be); if it cannot be made now, their links wait. Returns the ops to send."""
        calendar_id, waiting = self._ensure_calendar(account, client)
        if calendar_id:
            for op in ops:
                if op.meta.get("calendar") is False:
                    op.meta["calendar"] = calendar_id
            return ops
        self._apply(account, [(op_links[op.key], waiting) for op in ops if op.meta.get("calendar") is False], token, seqs)
        self._commit()
        return [op for op in ops if op.meta.get("calendar") is not False]

    def _ensure_calendar(self, account, client):
        """(calendar id, None), or (False, the Transition of the classes waiting for it). The
        account's create guard (``_claim_calendar_create``) makes a crashed or concurrent
        create safe."""
        claim = account._claim_calendar_create(LEASE_SECONDS)
        self._commit()
        if claim.calendar_id:
            return claim.calendar_id, None
        if not claim.guard:
            return False, engine.waiting(CALENDAR_WAIT, self.env._("The calendar is being created."))
        name = account._calendar_name()
        outcome = client.create_calendar(name, claim.guard, resent=claim.resent)
        self._commit(read_committed=True)
        account.invalidate_recordset()
        if not outcome.ok:
            account._calendar_create_failed(refused=outcome.kind in (Kind.REJECTED, Kind.AUTH_REVOKED, Kind.GONE))
            self._commit()
            return False, engine.calendar_failed(outcome)
        account._calendar_created(outcome.external_id)
        if claim.resent and not account._provider().calendar_create_idempotent:
            # The lost try may have made a calendar we can neither find nor use: say so.
            self._notify(account, self.env._(
                "An interrupted attempt may have left an empty calendar “%(name)s” in %(account)s; "
                "you can delete it. Your classes are in the newest one.",
                name=name, account=account.email,
            ))
        self._commit()
        return outcome.external_id, None

    def _check_lost_calendars(self, account, client, ops, outcomes, op_links):
        """Odoo is the truth: a dedicated calendar the user deleted is forgotten, with every
        class in it; the next round makes a new calendar and pushes them again. Returns the
        Transitions that replace the outcomes of ops into a lost calendar."""
        suspects = {op.meta["calendar"] for op in ops if engine.calendar_suspect(op, outcomes[op.key])}
        lost = set()
        for calendar_id in suspects:
            if client.get_calendar(calendar_id).kind is Kind.GONE:
                lost.add(calendar_id)
        if not lost:
            return {}
        self._commit(read_committed=True)
        for calendar_id in lost:
            account._calendar_lost(calendar_id)
            outbox.forget_calendar(self.env.cr, account.id, calendar_id)
        if account.state == "connected":
            self._notify(account, self.env._(
                "Your calendar “%(name)s” was deleted in %(account)s: a new one is created and your "
                "classes are pushed into it again.",
                name=account._calendar_name(), account=account.email,
            ))
        message = self.env._("The calendar was deleted at the provider.")
        return {
            op.key: engine.moved_out(self._link_state(op_links[op.key]), message)
            for op in ops
            if op.meta.get("calendar") in lost
        }

    @api.model
    def _notify(self, account, text):
        account.user_id._impact_calendar_set_notice(text)

    def _record_results(self, account, ops, op_links, outcomes, token, seqs, overrides=None):
        """Settle every outcome with the engine and record it; a conflict records it again."""
        overrides = overrides or {}
        current_body = account._provider().create_sends_current_body
        results = [
            (
                op_links[op.key],
                overrides.get(op.key) or engine.settle(
                    op, outcomes[op.key], self._link_state(op_links[op.key]), create_sends_current_body=current_body,
                ),
            )
            for op in ops
        ]
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                self._apply(account, results, token, seqs)
                return
            except (psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected):
                # Recording is idempotent (guarded by the claim token): record it again.
                if attempt == RECORD_ATTEMPTS:
                    raise
                self._rollback()
                self._commit(read_committed=True)
                _logger.info("Calendar push: recording hit a concurrent update; recording again")

    @staticmethod
    def _link_state(link):
        return engine.LinkState(
            external_id=link.external_id or None,
            pushed_hash=link.pushed_hash or None,
            generation=link.generation,
            attempts=link.attempts,
            create_sent=link.create_sent,
            calendar=link.external_calendar or None,
        )

    def _plan(self, link, account, target=None, rules=None):
        """What to do for one link: an Operation to send or a Transition to record.
        ``target``: the calendar the class goes to (``account._target_calendar()``); ``rules``:
        the account's DesiredRules, read once per round."""
        provider = account._provider()
        rules = rules or self.env["calendar.event"]._impact_calendar_desired_rules(account)
        try:
            snapshot = link.event_id._impact_calendar_desired_snapshot(link.user_id, account, rules)
            body = provider.build_body(snapshot) if snapshot else None
        except payload.PayloadError as exc:
            return engine.rejected(str(exc))
        namespace = rules.namespace
        state = self._link_state(link)
        cleanup_body = None
        if body is None and engine.maybe_created(state):
            snapshot = engine.placeholder(link.event_ref, f"{namespace}:{link.event_ref}", fields.Datetime.now())
            cleanup_body = provider.build_body(snapshot)
        return engine.plan(
            link.id,
            state,
            body,
            client_id_for=lambda generation: provider.client_id(namespace, link.event_ref, link.user_id.id, generation),
            forget=body is None and bool(link.external_id) and account._forgets_instead_of_deleting(link),
            calendar=target,
            cleanup_body=cleanup_body,
        )

    def _apply(self, account, results, token, seqs):
        """Record (link, Transition) pairs in link order (locks in id order), then what they
        mean for the account."""
        for link, transition in sorted(results, key=lambda item: item[0].id):
            outbox.record(self.env.cr, link.id, token, seqs[link.id], transition)
            if transition.hold:
                outbox.hold_account(self.env.cr, account.id, transition.hold)
        transitions = [transition for _link, transition in results]
        reconnect = next((t.reconnect for t in transitions if t.reconnect), None)
        if reconnect:
            account._mark_needs_reconnect(reconnect)
        error = next((t.account_error for t in transitions if t.account_error), None)
        if error:
            account.sudo().last_error = error
        if any(t.pushed for t in transitions):
            values = {"last_push_at": fields.Datetime.now()}
            if account.state == "connected" and not error:
                values["last_error"] = False
            account.sudo().write(values)

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


def _raised_by_provider(exc):
    """Whether ``exc`` was raised while a provider module was handling a call (a server's answer
    it did not expect), rather than in the synchronizer or the ORM."""
    frames = _traceback_frames(exc.__traceback__)
    return any(frame.f_globals.get("__name__", "").startswith(_PROVIDERS_PACKAGE) for frame in frames)


def _traceback_frames(tb):
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames
