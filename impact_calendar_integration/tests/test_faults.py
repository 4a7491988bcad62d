# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Fault suite: provider faults, bad input and RPC security, on every provider.

Every case drives the real cron entry point (``_cron_push``) against the loopback emulators,
lets time pass between runs (clears ``next_try``), and ends by comparing the instructor's
external calendar with the desired state computed from Odoo: one event per booked class with
the right title, roster count and times, nothing else, and no link left dirty (except the
paused ones a case expects). ``tearDownClass`` logs the table case → outcome, with the number
of cases tried and of lost changes (target 0).

Run: ``--test-tags /impact_calendar_integration:TestFaults`` on 18.0 (every provider class
answers to that name); 19.0 matches the class's own name, so name them there
(``:TestFaultsGoogle,/impact_calendar_integration:TestFaultsMicrosoft,...``). Add
``--log-level=test`` or ``info`` to see the table.
"""

import collections
import contextlib
import dataclasses
import json
import logging
import re
import time
from datetime import date, datetime, timedelta
from unittest.mock import patch

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..compat import rpc_call_kw
from ..models.res_users import PREFERENCE_FIELDS
from ..sync.vault import Vault
from .common import GROUP, make_user
from .emulators.common import Response
from .pushing import push_delete
from .sync_common import SyncCase

_logger = logging.getLogger(__name__)
ALL_RESULTS = []  # (provider, case, outcome, lost) of every class run so far

ACCOUNT = "odoo.addons.impact_calendar_integration.models.impact_calendar_account.ImpactCalendarAccount"
USER_FIELDS = ["name", "login", "email", *PREFERENCE_FIELDS]
MAX_RUNS = 12  # cron runs a case may take to converge
PROXY_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"
BOOKED = re.compile(r"(\d+) students? booked")
#: loggers whose DEBUG output is captured (not printed) while looking for leaked tokens
CAPTURED_LOGGERS = (
    "odoo.addons.impact_calendar_integration",
    "googleapiclient",
    "google",
    "google_auth_httplib2",
    "httplib2",
    "msal",
    "urllib3",
    "requests",
)


class _Crash(BaseException):
    """The worker dies: everything since the savepoint is rolled back. Not an Exception: the
    worker's per-account isolation must not mistake a death for an account's failure."""


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # pylint: disable=broad-except
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.records.append(f"{record.name} {record.levelname} {text}")


class FaultCases:
    """Provider-agnostic fault cases; mixed into one TestCase per provider below."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.results = []

    @classmethod
    def tearDownClass(cls):
        rows = cls.results
        lost = sum(r[2] for r in rows if isinstance(r[2], int))
        width = max([len(r[0]) for r in rows] + [4])
        lines = [
            "",
            f"Fault suite ({cls.provider}): {len(rows)} cases tried, {lost} lost changes (target 0)",
            f"  {'case':<{width}} | lost | outcome",
            f"  {'-' * width}-+------+--------",
        ]
        lines += [f"  {case:<{width}} | {lost_:>4} | {outcome}" for case, outcome, lost_ in rows]
        ALL_RESULTS.extend((cls.provider, *row) for row in rows)
        lines.append(
            f"All providers so far: {len(ALL_RESULTS)} cases tried, "
            f"{sum(r[3] for r in ALL_RESULTS if isinstance(r[3], int))} lost changes"
        )
        _logger.info("\n".join(lines))
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self._case = None
        self._reconnects = 0
        self.addCleanup(self._reset_emulator)

    # -- bookkeeping -------------------------------------------------------------------------------
    def begin(self, case):
        self._case = case
        self._recorded = False

        def unfinished():
            if not self._recorded:
                type(self).results.append((case, "FAILED (see the traceback above)", "?"))

        self.addCleanup(unfinished)

    def finish(self, outcome, accounts=None, paused=0):
        """Check convergence on every account, record the case, and fail if anything was lost."""
        accounts = accounts or [self.account]
        mismatches = []
        for account in accounts:
            mismatches += self.mismatches(account)
        links = self.env["impact.calendar.link"].sudo().search([("account_id", "in", [a.id for a in accounts])])
        waiting = links.filtered(lambda link: link.dirty and link.state != "paused")
        stuck = links.filtered(lambda link: link.claim_token)
        paused_links = links.filtered(lambda link: link.state == "paused" and link.dirty)
        lost = len(mismatches)
        note = outcome
        if mismatches or waiting or stuck or len(paused_links) != paused:
            note = (
                f"NOT CONVERGED: {len(mismatches)} mismatch(es), {len(waiting)} waiting, "
                f"{len(stuck)} stuck claim(s), {len(paused_links)} paused (expected {paused})"
            )
        type(self).results.append((self._case, note, lost))
        self._recorded = True
        self.assertEqual(mismatches, [], "external calendar differs from Odoo")
        self.assertFalse(waiting, f"links left dirty: {[(l.event_ref, l.state, l.last_error) for l in waiting]}")
        self.assertFalse(stuck, "a claim was left behind")
        self.assertEqual(len(paused_links), paused, "paused links")

    def _reset_emulator(self):
        self.side.reset()

    # -- world ---------------------------------------------------------------------------------------
    def classes(self, count, user=None, students=1, prefix="Class", **values):
        events = self.env["calendar.event"]
        for n in range(count):
            events |= self.availability(
                user=user, students=self.students[:students], name=f"{prefix} {n}",
                start=self.start + timedelta(hours=n), stop=self.start + timedelta(hours=n, minutes=45), **values,
            )
        return events

    def run_cron(self):
        """Commit, then one run of the real cron entry point (which must never raise)."""
        self.flush()
        return self.synchronizer._cron_push(time_budget=120)

    def let_time_pass(self):
        """Whatever waits for a retry (backoff, Retry-After, a held account) becomes due."""
        self.env["impact.calendar.link"].flush_model()
        self.env.cr.execute("UPDATE impact_calendar_link SET next_try = NULL WHERE dirty AND next_try IS NOT NULL")
        self.env["impact.calendar.link"].invalidate_model()
        self.side.let_time_pass()

    def drive(self, max_runs=MAX_RUNS, on_run=None):
        """Run the cron, letting time pass between runs, until nothing is due; returns the runs."""
        links = self.env["impact.calendar.link"].sudo()
        for run in range(1, max_runs + 1):
            self.run_cron()
            if on_run:
                on_run(run)
            links.invalidate_model()
            self.assertFalse(links.search([("claim_token", "!=", False)]), "a cron run left a claim behind")
            if not links.search([("dirty", "=", True), ("state", "not in", ("paused", "rejected"))]):
                return run
            self.let_time_pass()
        return max_runs

    def links_of(self, events):
        return self.env["impact.calendar.link"].sudo().search([("event_ref", "in", events.ids)])

    def db_now(self):
        """The database's clock: in a test, now() is the start of the enclosing transaction."""
        self.env.cr.execute("SELECT now() AT TIME ZONE 'UTC'")
        return self.env.cr.fetchone()[0]

    def crash_after(self, action):
        """Run ``action`` until the provider has answered a push, then the worker dies before
        recording it: Odoo forgets what it wrote since its last commit, and keeps what it had
        committed (its claims, the marks of the creates it sent)."""
        self.flush()
        savepoints = [self.env.cr.savepoint()]

        def commit(_synchronizer, read_committed=False):
            savepoints[-1].close(rollback=False)
            savepoints.append(self.env.cr.savepoint())

        def die(*_args, **_kwargs):
            raise _Crash()

        synchronizer = type(self.env["impact.calendar.synchronizer"])
        with contextlib.suppress(_Crash), patch.object(synchronizer, "_commit", commit), \
                patch.object(synchronizer, "_record_results", die):
            try:
                action()
            finally:
                savepoints[-1].close(rollback=True)
        self.env.invalidate_all()
        # The dead worker's leases run out before anyone retries.
        self.env.cr.execute("UPDATE impact_calendar_link SET claimed_until = NULL, claim_token = NULL")

    def reconnect(self, user=None, email=None):
        self._reconnects += 1
        return self.connect(user or self.instructor, email or self.email)

    # -- desired state vs external calendar ---------------------------------------------------------
    def desired(self, account):
        """{event id: (title, roster count, times)} the account's calendar must show."""
        account = account.sudo()
        if not account.exists() or account.state != "connected":
            return None  # nothing to compare: the account is paused or gone
        user = account.user_id.with_context(active_test=False)
        if not user.active or not user.has_group(GROUP):
            return {}
        wanted = {}
        for event in self.env["calendar.event"].sudo().search([("user_id", "=", user.id)]):
            roster = event.attendee_ids.filtered(
                lambda att: att.partner_id != user.partner_id and att.state != "declined"
            )
            if roster:
                wanted[event.id] = (event.name, len(roster), self.odoo_times(event))
        return wanted

    @staticmethod
    def odoo_times(event):
        if event.allday:
            start = event.start_date or event.start.date()
            stop = event.stop_date or (event.stop and event.stop.date()) or start
            return ("date", start.isoformat(), (max(stop, start) + timedelta(days=1)).isoformat())
        stop = max(event.stop or event.start, event.start)
        return ("utc", event.start.isoformat(), stop.isoformat())

    def actual(self, email):
        """{event id: [(title, roster count, times), ...]} of our events in the calendar."""
        found = {}
        for external in self.external_events(email).values():
            ref = self.side.event_ref(external)
            match = BOOKED.search(self.text(external))
            count = int(match.group(1)) if match else -1
            found.setdefault(ref, []).append((self.title(external), count, self.side.times(external)))
        return found

    def mismatches(self, account):
        wanted = self.desired(account)
        if wanted is None:
            return []
        found = self.actual(account.email)
        problems = []
        for ref in sorted(set(wanted) | set(found)):
            want = [wanted[ref]] if ref in wanted else []
            have = found.get(ref, [])
            if want != have:
                problems.append((account.email, ref, want, have))
        return problems

    # -- fault helpers -----------------------------------------------------------------------------------
    def short_timeout(self, seconds=1.0):
        original = type(self.env["impact.calendar.account"])._provider_config

        def provider_config(model, provider):
            return dataclasses.replace(original(model, provider), timeout=seconds)

        return patch(ACCOUNT + "._provider_config", provider_config)

    @staticmethod
    def response(status, body=None, raw=None, content_type="application/json", headers=None):
        return Response(status, body=body, raw=raw, content_type=content_type, headers=headers)

    # ================================================================================================
    # Provider faults
    # ================================================================================================
    def test_f01_server_error_bursts(self):
        self.begin("500/503 bursts (whole batch and single parts)")
        self.classes(6)
        self.emulator.inject(self.side.batch_path, status=503, times=2, body=self.side.error_body(503))
        self.emulator.inject(self.side.create_path, method=self.side.create_method, status=500, times=3, body=self.side.error_body(500))
        self.emulator.inject(self.side.create_path, method=self.side.create_method, status=503, times=2, body=self.side.error_body(503))
        runs = self.drive()
        self.finish(f"converged after {runs} cron runs (retried with backoff)")

    def test_f02_timeouts(self):
        self.begin("timeouts (answer late after the work was done; every call slow)")
        first = self.classes(3)
        with self.short_timeout(1.0):
            # The provider does the work, but the answer comes after the client gave up.
            self.emulator.inject(self.side.batch_path, after_handling=True, delay=2.0, times=1)
            self.run_cron()
            time.sleep(1.2)  # the late answer is thrown away
            first_states = sorted(set(self.links_of(first).mapped("state")))
            # Then every call is slow for a while.
            self.emulator.latency = 1.5
            first[0].write({"name": "Class 0 (renamed)"})
            self.classes(2, prefix="Late")
            self.run_cron()
            time.sleep(2.0)  # let the slow handler threads finish
            self.emulator.latency = 0.0
            self.let_time_pass()
            runs = self.drive()
        self.finish(f"timed out ({'/'.join(first_states)} after the late answer), retried, no duplicate; "
                    f"converged after {runs} more runs")

    def test_f03_dropped_connections(self):
        self.begin("dropped connections (before and after the provider acted)")
        kept = self.classes(3)
        self.run_cron()
        kept[0].write({"location": "Room 7"})
        kept[1].write({"partner_ids": [Command.unlink(self.students[0].id)]})  # → delete
        self.classes(3, prefix="New")
        self.emulator.inject(self.side.batch_path, drop=True, times=1)
        self.emulator.inject(self.side.batch_path, drop=True, after_handling=True, times=2)
        runs = self.drive()
        self.finish(f"converged after {runs} runs; creates not duplicated, delete done once")

    def test_f04_429_storm_with_retry_after(self):
        self.begin("429 storm with Retry-After")
        self.classes(5)
        self.emulator.inject(self.side.batch_path, status=429, times=4, headers={"Retry-After": "30"}, body=self.side.throttle_body())
        self.run_cron()
        links = self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id)])
        now = self.db_now()
        waits = [(link.next_try - now).total_seconds() for link in links]
        self.assertTrue(all(20 <= wait <= 40 for wait in waits), waits)
        self.assertTrue(all(link.dirty and link.state == "retrying" for link in links))
        cron = self.env.ref("impact_calendar_integration.ir_cron_push_bookings")
        triggers = self.env["ir.cron.trigger"].sudo().search([("cron_id", "=", cron.id), ("call_at", ">", now + timedelta(seconds=20))])
        self.assertTrue(triggers, "the next run is scheduled at Retry-After")
        self.assertEqual(self.run_cron(), 0, "nothing is sent before Retry-After")
        runs = self.drive()
        self.finish(f"waited Retry-After (30 s, cron re-triggered), converged after {runs} more runs")

    def test_f05_429_storm_without_retry_after(self):
        self.begin("429 / quota storm without Retry-After (real per-user quota)")
        self.classes(12)
        self.side.throttle_quota(3)
        self.run_cron()
        links = self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id)])
        retrying = links.filtered(lambda link: link.state == "retrying")
        self.assertEqual(dict(collections.Counter(links.mapped("state"))), {"synced": 3, "retrying": 9}, "3 a minute went through")
        now = self.db_now()
        self.assertTrue(all(link.next_try and link.next_try > now for link in retrying), "backoff without Retry-After")
        runs = self.drive()
        self.finish(f"backed off, {len(retrying)} throttled first, converged after {runs} more runs")

    def test_f06_invalid_grant_in_the_middle_of_a_batch(self):
        self.begin("invalid_grant in the middle of a batch")
        total = self.side.mid_batch_total
        events = self.classes(total)
        self.side.revoke_mid_batch(self.email)
        self.run_cron()
        self.account.invalidate_recordset()
        self.assertEqual(self.account.state, "needs_reconnect")
        self.assertTrue(self.account.last_error, "the user is told why")
        links = self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id)])
        paused = links.filtered(lambda link: link.state == "paused")
        synced = links.filtered(lambda link: link.state == "synced")
        landed = len(self.external_events())
        self.assertEqual((landed, len(synced), len(paused)), self.side.mid_batch_outcome, "(landed, synced, paused)")
        self.assertEqual(len(paused) + len(synced), total)
        self.assertTrue(all(paused.mapped("dirty")), "paused changes are kept")
        self.assertEqual(self.run_cron(), 0, "a paused account sends nothing")
        # While paused the classes keep changing; nothing of it may be lost.
        paused[0].event_id.write({"name": "Renamed while paused"})
        events[-1].write({"partner_ids": [Command.link(self.students[1].id)]})
        self.run_cron()
        self.reconnect()
        runs = self.drive()
        self.finish(f"{landed} landed, {len(synced)} confirmed, {len(paused)} paused (needs reconnect); "
                    f"after reconnect converged in {runs} runs, no duplicate")

    def test_f07_batch_where_some_parts_fail(self):
        self.begin("batch where some parts fail (5xx, 429, gone on update and delete)")
        old = self.classes(3, prefix="Old")
        self.run_cron()
        # The instructor deleted two of our events in their calendar: the update gets 404/410
        # (recreated), the delete too (done).
        client = self.account._client()
        for event in old[:2]:
            self.assertTrue(push_delete(client, self.link(event).external_id).ok)
        old[0].write({"name": "Old 0 renamed"})
        old[1].write({"partner_ids": [Command.unlink(self.students[0].id)]})
        old[2].write({"location": "Room 2"})
        self.classes(5)
        self.emulator.inject(self.side.create_path, method=self.side.create_method, status=500, times=1, body=self.side.error_body(500))
        self.emulator.inject(self.side.create_path, method=self.side.create_method, status=429, times=1, body=self.side.throttle_body(), headers={"Retry-After": "5"})
        self.emulator.inject(self.side.item_path(self.link(old[2]).external_id), method=self.side.update_method, status=503, times=1, body=self.side.error_body(503))
        self.run_cron()
        states = sorted(self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id)]).mapped("state"))
        self.assertIn("retrying", states)
        runs = self.drive()
        self.finish(f"each part got its own outcome ({', '.join(sorted(set(states)))}); converged after {runs} more runs")

    def test_f08_worker_killed_between_answer_and_commit(self):
        self.begin("worker killed between the provider's answer and the commit")
        kept = self.classes(3, prefix="Kept")
        self.run_cron()
        kept[0].write({"name": "Kept 0 renamed"})
        kept[1].write({"partner_ids": [Command.unlink(self.students[0].id)]})
        self.classes(2, prefix="Fresh")
        self.crash_after(self.run_cron)  # the provider holds the results, Odoo forgets them
        links = self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id)])
        self.assertEqual(len(links.filtered("dirty")), 4, "Odoo still thinks the 4 changes are to be pushed")
        self.assertEqual(len(self.external_events()), 4, "the provider already applied them")
        runs = self.drive()
        self.assertEqual(len(self.external_events()), 4, "exactly one external event per booked class")
        self.finish(f"re-pushed after the crash: no duplicate, delete settled, converged in {runs} runs")

    def test_f09_worker_killed_then_class_changed_before_retry(self):
        self.begin("worker killed after creating; class edited before the retry")
        fresh = self.classes(3, prefix="Fresh")
        self.crash_after(self.run_cron)
        self.assertEqual(len(self.external_events()), 3)
        fresh[0].write({"name": "Fresh 0 renamed after the crash"})
        fresh[1].write({"partner_ids": [Command.link(self.students[1].id)]})
        runs = self.drive()
        self.finish(f"replayed create confirmed, then updated to the current version ({runs} runs)")

    # ================================================================================================
    # Bad input
    # ================================================================================================
    def test_b01_event_without_end(self):
        self.begin("event without end (all-day, no end date; no start date)")
        no_end = self.availability(students=self.students[:1], name="No end", allday=True,
                                   start=date(2027, 2, 10), stop=date(2027, 2, 10),
                                   start_date=date(2027, 2, 10), stop_date=date(2027, 2, 10))
        no_dates = self.availability(students=self.students[:1], name="No dates", allday=True,
                                     start=date(2027, 2, 12), stop=date(2027, 2, 13),
                                     start_date=date(2027, 2, 12), stop_date=date(2027, 2, 13))
        self.flush()
        self.env.cr.execute("UPDATE calendar_event SET stop_date = NULL WHERE id = %s", (no_end.id,))
        self.env.cr.execute("UPDATE calendar_event SET start_date = NULL, stop_date = NULL WHERE id = %s", (no_dates.id,))
        self.env.invalidate_all()
        runs = self.drive()
        self.finish(f"pushed as single-day / datetime-derived all-day events ({runs} runs)")

    def test_b02_zero_and_multi_day_durations(self):
        self.begin("zero and multi-day durations")
        zero = self.availability(students=self.students[:1], name="Zero", start=self.start, stop=self.start)
        self.flush()
        # Odoo may recompute a zero duration: force the stored row to start == stop.
        self.env.cr.execute("UPDATE calendar_event SET stop = start, duration = 0 WHERE id = %s", (zero.id,))
        self.env.invalidate_all()
        self.env["impact.calendar.link"]._mark_events_dirty(zero.ids)
        self.availability(students=self.students[:2], name="Retreat", start=self.start,
                          stop=self.start + timedelta(days=3, hours=5))
        self.availability(students=self.students[:1], name="Evening", start=self.start + timedelta(hours=5),
                          stop=self.start + timedelta(hours=6))
        runs = self.drive()
        self.finish(f"zero-length and 3-day events pushed with exact UTC instants ({runs} runs)")

    def test_b03_all_day_across_dst(self):
        self.begin("all-day events across DST (EU 2027-03-28, US 2027-11-07)")
        for name, first, last in (("EU DST", date(2027, 3, 27), date(2027, 3, 29)),
                                  ("US DST", date(2027, 11, 6), date(2027, 11, 8)),
                                  ("One day on DST", date(2027, 3, 28), date(2027, 3, 28))):
            self.availability(students=self.students[:1], name=name, allday=True, start=first, stop=last,
                              start_date=first, stop_date=last)
        runs = self.drive()
        dates = sorted(self.side.times(e)[1:] for e in self.external_events().values())
        self.assertIn(("2027-03-27", "2027-03-30"), dates)
        self.finish(f"dates exact, exclusive end, no shift across DST ({runs} runs)")

    def test_b04_long_description_and_location(self):
        self.begin("10,000-character description (and location)")
        long_text = ("Lorem ipsum dolor sit amet, é ü 🏺 " * 400)[:10000]
        event = self.availability(students=self.students[:1], name="Long", description=f"<p>{long_text}</p>",
                                  location=long_text)
        runs = self.drive()
        external = self.only_event()
        self.assertNotIn("Lorem", self.text(external), "Odoo's own description is never sent")
        self.assertEqual(len(self.side.location(external)), 10000)
        event.write({"description": "<p>short</p>"})
        self.assertEqual(self.run_cron(), 0, "a description change costs no call")
        self.finish(f"pushed; 10k description kept private, 10k location verbatim ({runs} runs)")

    def test_b05_titles_with_html_and_emoji(self):
        self.begin("titles with HTML and emoji")
        names = [
            '<b>Yoga</b> & <script>alert("x")</script>',
            "Pottery 🏺🧘‍♀️ — café ✓ 𝄞",
            "&lt;not escaped&gt; \"quotes\" 'single' \\ back\\slash",
            "  leading and trailing spaces  ",
        ]
        for name in names:
            self.availability(students=self.students[:1], name=name)
        runs = self.drive()
        self.assertEqual(sorted(self.title(e) for e in self.external_events().values()), sorted(names))
        self.finish(f"titles verbatim, nothing escaped or mangled ({runs} runs)")

    def test_b06_unknown_timezones(self):
        self.begin("unknown time zones (instructor, student)")
        event = self.availability(students=self.students[:2], name="Somewhere", start=datetime(2027, 3, 28, 0, 30),
                                  stop=datetime(2027, 3, 28, 2, 30))
        self.flush()
        self.env.cr.execute("UPDATE res_partner SET tz = 'Mars/Olympus_Mons' WHERE id IN %s",
                            (tuple([self.instructor.partner_id.id, self.students[0].id]),))
        self.env.invalidate_all()
        event.write({"location": "Room 1"})
        runs = self.drive()
        self.assertEqual(self.side.times(self.only_event())[1], "2027-03-28T00:30:00")
        self.finish(f"pushed in UTC, zones ignored ({runs} runs)")

    def test_b07_partners_deleted_while_booked(self):
        self.begin("partners deleted while booked")
        gone_a, gone_b = self.env["res.partner"].create([{"name": "Leaving A"}, {"name": "Leaving B"}])
        both = self.availability(name="Both", partner_ids=[Command.set([self.instructor.partner_id.id, gone_a.id, gone_b.id])])
        self.availability(name="Only A", partner_ids=[Command.set([self.instructor.partner_id.id, gone_a.id])])
        self.drive()
        self.assertEqual(len(self.external_events()), 2)
        gone_a.unlink()
        self.drive()
        self.assertEqual([self.title(e) for e in self.external_events().values()], ["Both"])
        self.assertIn("1 student booked", self.text(self.only_event()))
        gone_b.unlink()
        runs = self.drive()
        self.assertFalse(self.external_events())
        self.assertTrue(both.exists())
        self.finish(f"roster shrank, emptied classes removed ({runs} runs for the last step)")

    def test_b08_instructor_archived(self):
        self.begin("instructor archived (then restored)")
        self.classes(3)
        self.drive()
        self.assertEqual(len(self.external_events()), 3)
        self.instructor.action_archive()
        self.drive()
        self.assertFalse(self.external_events(), "an archived instructor's future classes are removed")
        self.assertEqual(self.mismatches(self.account), [])
        # An archived user keeps no token (issue 21): unarchiving does not reconnect.
        self.assertFalse(self.account.exists())
        self.instructor.action_unarchive()
        runs = self.drive()
        self.assertFalse(self.external_events())
        self.finish(f"removed and disconnected while archived; unarchived, reconnects to sync ({runs} runs)")

    def test_b09_vault_key_changed(self):
        self.begin("account whose key changed (vault) → reconnect, others unaffected")
        other = make_user(self.env, f"other{id(self)}")
        other_email = f"{other.login}@example.com"
        other_account = self.connect(other, other_email)
        mine = self.classes(2)
        self.classes(2, user=other, prefix="Other")
        self.drive()
        # This account's secret was written under an old key.
        credential = self.account._credential()
        plain = json.dumps({k: v for k, v in vars(credential._read_tokens()).items() if v is not None})
        credential.sudo().secret = Vault("an old key").encrypt(plain)
        mine[0].write({"name": "Changed after the key rotation"})
        self.classes(1, user=other, prefix="Other new")
        runs = self.drive()
        self.account.invalidate_recordset()
        self.assertEqual(self.account.state, "needs_reconnect")
        self.assertIn("reconnect", self.account.last_error)
        self.assertEqual(other_account.state, "connected")
        self.assertEqual(self.mismatches(other_account), [], "the other account went on")
        self.assertTrue(self.link(mine[0]).dirty)
        error = self.link(mine[0]).last_error
        self.reconnect()
        runs += self.drive()
        self.finish(f"paused ('{error[:45]}…'), reconnected; "
                    f"other account unaffected ({runs} runs)", accounts=[self.account, other_account])

    def test_b10_vault_key_changed_then_disconnect(self):
        self.begin("disconnect an account whose key changed")
        self.classes(1)
        self.drive()
        self.env["impact.calendar.credential"].sudo().search([("account_id", "=", self.account.id)]).secret = "fernet1:garbage"
        self.classes(1, prefix="After")
        self.drive()
        self.assertEqual(self.account.state, "needs_reconnect")
        wizard = self.env["impact.calendar.disconnect"].with_user(self.instructor).create(
            {"account_id": self.account.id, "keep_events": True})
        wizard.action_confirm()
        self.assertFalse(self.account.exists(), "erased even though its tokens were unreadable")
        self.assertEqual(self.run_cron(), 0)
        type(self).results.append((self._case, "account erased without crash (nothing to revoke)", 0))
        self._recorded = True

    def test_b11_malformed_provider_responses(self):
        self.begin("malformed provider responses (proxy HTML, truncated, no id)")
        self.classes(3)

        def truncated(_req, real):
            answer = real()
            answer.raw = answer.raw[: len(answer.raw) // 2]
            return answer

        def proxy_page_ok(_req, real):
            if not self.side.write_answers_checked:
                real()  # a 2xx is all a PUT answers: the page stands in for the answer after the server acted
            return self.response(200, raw=PROXY_PAGE, content_type="text/html")

        self.emulator.inject(self.side.batch_path, answer=proxy_page_ok)
        self.emulator.inject(self.side.batch_path, answer=truncated)
        self.emulator.inject(self.side.batch_path, answer=lambda req, real: self.response(502, raw=PROXY_PAGE, content_type="text/html"))
        self.run_cron()
        self.let_time_pass()
        self.run_cron()
        self.let_time_pass()
        self.run_cron()
        self.let_time_pass()
        # A create answered 2xx without what names the event (provider did create it).
        self.emulator.inject(self.side.create_path, method=self.side.create_method,
                             answer=lambda _req, real: self.side.without_id(real()))
        self.classes(1, prefix="Lonely")
        runs = self.drive()
        rejected = self.env["impact.calendar.link"].sudo().search([("account_id", "=", self.account.id), ("state", "=", "rejected")])
        self.assertFalse(rejected, "garbage from the provider never rejects a class")
        self.finish(f"retried as transient, no duplicate, nothing rejected ({runs} runs)")

    def test_b12_provider_refuses_a_payload(self):
        self.begin("provider refuses one class (400): clear error, next edit pushes it")
        events = self.classes(3)
        self.emulator.inject(self.side.create_path, method=self.side.create_method, status=400, times=1,
                             body=self.side.error_body(400, "Invalid value for field 'summary'"))
        self.drive()
        links = self.links_of(events)
        rejected = links.filtered(lambda link: link.state == "rejected")
        self.assertEqual(len(rejected), 1)
        self.assertIn("Invalid value", rejected.last_error)
        self.assertEqual(len(self.external_events()), 2)
        self.account.invalidate_recordset()
        self.assertEqual(self.account.failed_count, 1, "the failure is visible in Preferences")
        rejected.event_id.write({"name": rejected.event_id.name + " (fixed)"})
        runs = self.drive()
        self.finish(f"rejected with the provider's message, pushed after the next edit ({runs} runs)")

    # ================================================================================================
    # Security (RPC)
    # ================================================================================================
    def rpc(self, user, model, method, *args, **kwargs):
        """What /web/dataset/call_kw does for ``user``."""
        env = self.env(user=user.id, su=False)
        return rpc_call_kw(env[model], method, list(args), kwargs)

    def all_tokens(self, *accounts):
        tokens = set()
        for account in accounts:
            stored = account._credential()._read_tokens()
            tokens |= {stored.access_token, stored.refresh_token, stored.password}
            if stored.msal_cache:
                cache = json.loads(stored.msal_cache)
                for kind in ("AccessToken", "RefreshToken", "IdToken"):
                    tokens |= {entry.get("secret") for entry in (cache.get(kind) or {}).values()}
        tokens |= self.side.secrets()
        return {token for token in tokens if token and len(token) >= 12}

    def test_s01_rpc_cannot_read_tokens(self):
        self.begin("RPC: read another user's (or any) tokens")
        other = make_user(self.env, f"victim{id(self)}")
        victim = self.connect(other, f"{other.login}@example.com")
        self.availability(user=other, students=self.students[:1], name="Victim class")
        self.drive()
        credential = victim._credential()
        admin = self.env.ref("base.user_admin")
        manager = make_user(self.env, f"mgr{id(self)}", manager=True)
        refused = 0
        for user in (self.instructor, manager, admin):
            for method, args, kwargs in (
                ("search_read", ([],), {"fields": ["secret"]}),
                ("read", ([credential.id],), {"fields": ["secret", "account_id"]}),
                ("search_count", ([],), {}),
                ("read_group", ([], ["secret"], ["account_id"]), {}),
                ("write", ([credential.id], {"secret": "x"}), {}),
                ("create", ({"account_id": victim.id, "secret": "x"},), {}),
            ):
                with self.assertRaises(AccessError, msg=f"{user.login} {method} on credentials"):
                    self.rpc(user, "impact.calendar.credential", method, *args, **kwargs)
                refused += 1
        for user in (self.instructor, admin):
            # refused either for lack of the export right or of read access
            try:
                self.rpc(user, "impact.calendar.credential", "export_data", [credential.id], ["secret"])
            except (AccessError, UserError):
                refused += 1
            else:
                self.fail(f"{user.login} exported credentials")
        for method in ("_credential", "_client", "_read_tokens", "_store_tokens"):
            with self.assertRaises(AccessError):
                self.rpc(self.instructor, "impact.calendar.account", method, [victim.id])
            refused += 1
        with self.assertRaises(AccessError):
            self.rpc(self.instructor, "impact.calendar.account", "read", [victim.id], fields=["email"])
        refused += 1
        with self.assertRaises(AccessError):
            self.rpc(self.instructor, "ir.config_parameter", "get_param", "impact_calendar.google_client_secret")
        refused += 1
        own = self.rpc(self.instructor, "impact.calendar.account", "search_read", [], fields=["user_id"])
        self.assertEqual([row["id"] for row in own], self.account.ids, "a user sees only their own account")
        # Nothing any user may read carries a token: accounts, links, own and other users' records.
        tokens = self.all_tokens(victim, self.account)
        readable = [
            self.rpc(self.instructor, "res.users", "read", [other.id, self.instructor.id], fields=USER_FIELDS),
            self.rpc(self.instructor, "impact.calendar.account", "search_read", [], fields=[]),
            self.rpc(self.instructor, "impact.calendar.link", "search_read", [], fields=[]),
            self.rpc(manager, "impact.calendar.account", "search_read", [], fields=[]),
            self.rpc(manager, "impact.calendar.link", "search_read", [], fields=[]),
            self.rpc(admin, "res.users", "read", [other.id], fields=USER_FIELDS),
        ]
        dump = json.dumps(readable, default=str)
        self.assertFalse([t for t in tokens if t in dump], "a token is readable through RPC")
        self.assertIn(victim.email, json.dumps(readable[3], default=str), "managers do see statuses")
        type(self).results.append((self._case, f"{refused} RPC calls refused (AccessError); no token in any readable field", 0))
        self._recorded = True

    def test_s02_rpc_cannot_connect_as_another_user(self):
        self.begin("RPC: connect (or act) as another user")
        other = make_user(self.env, f"target{id(self)}")
        target = self.connect(other, f"{other.login}@example.com")
        outsider = make_user(self.env, f"outsider{id(self)}", integration=False)
        own_class = self.classes(1)
        self.flush()
        refused = 0
        attempts = [
            (self.instructor, "impact.calendar.account", "create",
             ({"user_id": other.id, "provider": self.provider, "email": "evil@example.com"},), {}),
            (self.instructor, "impact.calendar.account", "create",
             ({"user_id": self.instructor.id, "provider": self.provider, "email": "mine@example.com"},), {}),
            (self.instructor, "impact.calendar.account", "_connect",
             (other.id, self.provider, {}, "evil@example.com"), {}),
            (self.instructor, "impact.calendar.account", "write", ([target.id], {"user_id": self.instructor.id}), {}),
            (self.instructor, "impact.calendar.account", "write", ([self.account.id], {"user_id": other.id}), {}),
            (self.instructor, "impact.calendar.account", "action_resync", ([target.id],), {}),
            (self.instructor, "impact.calendar.account", "action_disconnect", ([target.id],), {}),
            (self.instructor, "impact.calendar.account", "unlink", ([target.id],), {}),
            (self.instructor, "res.users", "action_impact_calendar_connect_google", ([other.id],), {}),
            (self.instructor, "res.users", "action_impact_calendar_connect_microsoft", ([other.id],), {}),
            (self.instructor, "res.users", "action_impact_calendar_disconnect", ([other.id],), {}),
            (self.instructor, "res.users", "action_impact_calendar_resync", ([other.id],), {}),
            (self.instructor, "impact.calendar.link", "write", (self.link(own_class).ids, {"user_id": other.id}), {}),
            (outsider, "res.users", "action_impact_calendar_connect_google", ([outsider.id],), {}),
            (outsider, "impact.calendar.account", "search_read", ([],), {}),
        ]
        for user, model, method, args, kwargs in attempts:
            with self.assertRaises(AccessError, msg=f"{user.login}: {model}.{method}{args}"):
                self.rpc(user, model, method, *args, **kwargs)
            refused += 1
        # The disconnect wizard pointed at someone else's account.
        with self.assertRaises(AccessError):
            wizard = self.rpc(self.instructor, "impact.calendar.disconnect", "create",
                              {"account_id": target.id, "keep_events": False})
            self.rpc(self.instructor, "impact.calendar.disconnect", "action_confirm", [wizard])
        refused += 1
        target.invalidate_recordset()
        self.assertEqual((target.user_id, target.state), (other, "connected"), "the target account is untouched")
        self.assertEqual(self.account.user_id, self.instructor)
        type(self).results.append((self._case, f"{refused} attempts refused (AccessError); accounts untouched", 0))
        self._recorded = True

    def test_s03_tokens_never_in_logs_or_errors(self):
        self.begin("tokens absent from logs and error messages")
        other = make_user(self.env, f"keyless{id(self)}")
        keyless = self.connect(other, f"{other.login}@example.com")
        self.classes(4)
        self.availability(user=other, students=self.students[:1], name="Keyless")
        self.drive()
        tokens = self.all_tokens(self.account, keyless)
        outcomes = []
        original_push = self.side.client_class.push

        def push(client, operations):
            result = original_push(client, operations)
            outcomes.extend(result.values())
            return result

        capture = _Capture()
        saved = []
        for name in CAPTURED_LOGGERS:
            logger = logging.getLogger(name)
            saved.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            logger.addHandler(capture)
        root = logging.getLogger()
        root.addHandler(capture)
        try:
            with patch.object(self.side.client_class, "push", push):
                events = self.env["calendar.event"].search([("user_id", "=", self.instructor.id)])
                # 5xx with the provider's message, a throttle, then a revoked consent mid-way.
                self.emulator.inject(self.side.batch_path, status=500, times=1, body=self.side.error_body(500))
                events[0].write({"name": "Step 1"})
                self.run_cron()
                self.let_time_pass()
                self.emulator.inject(self.side.batch_path, status=429, times=1, body=self.side.throttle_body())
                self.run_cron()
                self.let_time_pass()
                self.side.consent_dies(self.email)
                events[1].write({"name": "Step 2"})
                self.run_cron()
                self.assertEqual(self.account.state, "needs_reconnect")
                # Another account's key changed.
                keyless._credential().sudo().secret = Vault("old key").encrypt(json.dumps({"access_token": "x" * 20}))
                other_event = self.env["calendar.event"].search([("user_id", "=", other.id)])
                other_event.write({"name": "Keyless renamed"})
                self.run_cron()
                self.assertEqual(keyless.state, "needs_reconnect")
                tokens |= self.all_tokens(self.account)
                self.reconnect()
                self.reconnect(other, f"{other.login}@example.com")
                runs = self.drive()
                tokens |= self.all_tokens(self.account, keyless)
        finally:
            root.removeHandler(capture)
            for logger, level, propagate in saved:
                logger.removeHandler(capture)
                logger.setLevel(level)
                logger.propagate = propagate
        links = self.env["impact.calendar.link"].sudo().search([("user_id", "in", [self.instructor.id, other.id])])
        users = (self.instructor | other).with_context(active_test=False)
        texts = {
            "log": "\n".join(capture.records),
            "outcome messages": "\n".join(str(o.message) for o in outcomes),
            "link errors": "\n".join(str(e) for e in links.mapped("last_error")),
            "account errors": "\n".join(str(e) for e in (self.account | keyless).mapped("last_error")),
            "preferences": "\n".join(str(v) for u in users for v in (u.impact_calendar_last_error, u.impact_calendar_notice)),
        }
        self.assertTrue(capture.records and outcomes, "the failing pushes were observed")
        self.assertTrue(any(o.message for o in outcomes))
        leaks = {where: [t[:8] + "…" for t in tokens if t in text] for where, text in texts.items()}
        leaks = {where: found for where, found in leaks.items() if found}
        self.assertFalse(leaks, f"tokens found in {leaks}")
        self.finish(
            f"{len(tokens)} tokens/secrets checked against {len(capture.records)} DEBUG+ log records and "
            f"{len(outcomes)} outcomes: none found; converged after reconnect ({runs} runs)",
            accounts=[self.account, keyless],
        )


@tagged("post_install", "-at_install")
class TestFaultsGoogle(FaultCases, SyncCase):
    provider = "google"
    allow_inherited_tests_method = True


@tagged("post_install", "-at_install")
class TestFaultsMicrosoft(FaultCases, SyncCase):
    provider = "microsoft"
    allow_inherited_tests_method = True


@tagged("post_install", "-at_install")
class TestFaultsCaldav(FaultCases, SyncCase):
    provider = "caldav"
    destination = "dedicated"  # a CalDAV account has only the calendar it makes
    allow_inherited_tests_method = True


# On 18.0 every provider class answers to --test-tags /impact_calendar_integration:TestFaults
TestFaultsGoogle.test_class = "TestFaults"
TestFaultsMicrosoft.test_class = "TestFaults"
TestFaultsCaldav.test_class = "TestFaults"
