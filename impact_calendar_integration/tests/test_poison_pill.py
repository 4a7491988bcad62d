# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""One account's provider cannot stop the push for the others (issue 21, finding 3).

Two accounts in one round, the first one's links claimed first: whatever its provider answers
(a 429 asking to wait 3 million years, an answer its module does not expect, a body past the
size cap) or whatever our own code raises for it, the real cron entry point returns, the second
account's class is pushed in the same run, the first account shows an error and its links wait
a finite, clamped time before the next try.
"""

import dataclasses
import re
from datetime import timedelta
from unittest.mock import patch

from odoo.tests import tagged

from ..sync import policy
from ..sync.providers.google import GoogleCalendarClient
from ..sync.providers.microsoft import GraphCalendarClient
from .common import make_user
from .sync_common import SyncCase

SYNCHRONIZER_LOGGER = "odoo.addons.impact_calendar_integration.models.impact_calendar_synchronizer"
ACCOUNT = "odoo.addons.impact_calendar_integration.models.impact_calendar_account.ImpactCalendarAccount"
HUGE_RETRY_AFTER = "100000000000000"


class PoisonCases:
    """Provider-agnostic cases; mixed into one TestCase per provider below."""

    def setUp(self):
        super().setUp()
        self.other = make_user(self.env, f"other{id(self)}")
        self.other_email = f"{self.other.login}@example.com"
        self.other_account = self.connect(self.other, self.other_email)
        self.flush()
        self.synchronizer._drain()
        self.addCleanup(self.emulator.clear_faults)

    def book(self):
        """Two classes for the first account, then one for the other, committed in that order:
        the first account's links come first in the round."""
        poisoned = self.env["calendar.event"]
        for n in range(2):
            poisoned |= self.availability(students=self.students[:1], name=f"Poisoned {n}", start=self.start + timedelta(hours=n),
                                          stop=self.start + timedelta(hours=n, minutes=45))
        self.flush()
        healthy = self.availability(user=self.other, students=self.students[:1], name="Healthy class")
        self.flush()
        poisoned_links, healthy_links = self.links(poisoned), self.links(healthy)
        self.assertLess(max(poisoned_links.ids), min(healthy_links.ids), "the first account is pushed first")
        return poisoned_links, healthy_links

    def links(self, events):
        return self.env["impact.calendar.link"].sudo().search([("event_ref", "in", events.ids)])

    def db_now(self):
        self.env.cr.execute("SELECT now() AT TIME ZONE 'UTC'")
        return self.env.cr.fetchone()[0]

    def run_and_check(self, poisoned_links, healthy_links, min_wait=1, unexpected=False):
        """One run of the real cron entry point, then what every case expects. ``unexpected``:
        a failure no provider outcome describes, shown on the account itself (a classified one,
        throttling or a refused answer, is shown on each link, to the managers)."""
        self.synchronizer._cron_push(time_budget=120)  # must not raise
        links = self.env["impact.calendar.link"].sudo()
        links.invalidate_model()
        self.other_account.invalidate_recordset()
        self.account.invalidate_recordset()
        # The other account was pushed in the same run.
        self.assertEqual([self.title(event) for event in self.external_events(self.other_email).values()], ["Healthy class"])
        self.assertEqual(healthy_links.mapped("state"), ["synced"])
        self.assertFalse(self.other_account.last_error)
        # The first account shows why, and its links wait a finite, clamped time.
        if unexpected:
            self.assertTrue(self.account.last_error, "the failure is shown on the account")
        self.assertTrue(all(poisoned_links.mapped("last_error")), "each link says why it waits")
        self.assertEqual(self.account.state, "connected")
        now = self.db_now()
        for link in poisoned_links:
            self.assertTrue(link.dirty and link.state == "retrying", (link.state, link.last_error))
            self.assertFalse(link.claim_token, "no claim left behind")
            self.assertTrue(link.next_try, "not due at once: it would be claimed first on every run")
            wait = (link.next_try - now).total_seconds()
            self.assertTrue(min_wait <= wait <= policy.MAX_DELAY + 1, wait)
        self.assertFalse(links.search([("claim_token", "!=", False)]), "a run left a claim behind")
        return now

    # -- cases ---------------------------------------------------------------------------------------
    def test_huge_retry_after_is_clamped(self):
        poisoned, healthy = self.book()
        self.emulator.inject(self.batch_path, status=429, times=1, headers={"Retry-After": HUGE_RETRY_AFTER},
                             body=self.throttle_body())
        now = self.run_and_check(poisoned, healthy, min_wait=policy.MAX_DELAY - 60)
        self.assertTrue(all(link.next_try <= now + timedelta(seconds=policy.MAX_DELAY + 1) for link in poisoned))

    def test_unclassified_exception_stays_with_its_account(self):
        poisoned, healthy = self.book()
        original = self.client_class._push_chunk
        calls = []

        def push_chunk(client, chunk, *args, **kwargs):
            calls.append(len(chunk))
            if len(calls) == 1:
                raise KeyError("an answer the provider module did not expect")
            return original(client, chunk, *args, **kwargs)

        with patch.object(self.client_class, "_push_chunk", push_chunk), \
                self.assertLogs(SYNCHRONIZER_LOGGER, level="WARNING") as logs:
            self.run_and_check(poisoned, healthy, unexpected=True)
        # Raised inside a provider module: the server's answer, a warning, not an error.
        self.assertEqual([record.levelname for record in logs.records], ["WARNING"])
        self.assertEqual(calls[0], 2, "the first account's batch came first")

    def test_our_own_bug_stays_with_its_account_and_is_an_error(self):
        poisoned, healthy = self.book()
        synchronizer = type(self.synchronizer)
        original = synchronizer._plan
        account = self.account

        def plan(model, link, link_account, *args):
            if link_account == account:
                raise ZeroDivisionError("a bug of ours")
            return original(model, link, link_account, *args)

        with patch.object(synchronizer, "_plan", plan), self.assertLogs(SYNCHRONIZER_LOGGER, level="WARNING") as logs:
            self.run_and_check(poisoned, healthy, unexpected=True)
        self.assertEqual([record.levelname for record in logs.records], ["ERROR"])

    def test_answer_past_the_size_cap_is_refused(self):
        poisoned, healthy = self.book()
        cap = 64 * 1024
        original_config = type(self.env["impact.calendar.account"])._provider_config

        def provider_config(model, provider):
            return dataclasses.replace(original_config(model, provider), max_response_bytes=cap)

        emulator = self.emulator
        handle = emulator.handle
        padded = []

        def pad_first_batch(req):
            response = handle(req)
            if not padded and re.search(self.batch_path, req.path):
                # A valid answer (the work was done) padded past the cap with trailing blanks,
                # legal after a multipart's closing boundary and after a JSON document.
                padded.append(req.path)
                response.raw += b" " * (2 * cap)
            return response

        with patch(ACCOUNT + "._provider_config", provider_config), patch.object(emulator, "handle", pad_first_batch):
            self.run_and_check(poisoned, healthy)
        self.assertTrue(padded)
        self.assertIn(f"at most {cap}", " ".join(poisoned.mapped("last_error")))


@tagged("post_install", "-at_install")
class TestPoisonPillGoogle(PoisonCases, SyncCase):
    provider = "google"
    allow_inherited_tests_method = True
    client_class = GoogleCalendarClient
    batch_path = r"^/batch/calendar/v3$"

    def throttle_body(self):
        return {"error": {"code": 429, "message": "Rate Limit Exceeded", "errors": [{"reason": "rateLimitExceeded"}]}}


@tagged("post_install", "-at_install")
class TestPoisonPillMicrosoft(PoisonCases, SyncCase):
    provider = "microsoft"
    allow_inherited_tests_method = True
    client_class = GraphCalendarClient
    batch_path = r"^/v1\.0/\$batch$"

    def throttle_body(self):
        return {"error": {"code": "ApplicationThrottled", "message": "Too many requests"}}


# On 18.0 both classes answer to --test-tags /impact_calendar_integration:TestPoisonPill (19.0: their own names)
TestPoisonPillGoogle.test_class = "TestPoisonPill"
TestPoisonPillMicrosoft.test_class = "TestPoisonPill"
