# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The push action's wake-ups: Odoo's notification, through one kept connection."""

import os
import select
import time
from datetime import datetime, timedelta, timezone
from unittest.mock import patch

import psycopg2

from odoo import sql_db
from odoo.tests import TransactionCase, tagged

from .. import cron_wakeup


@tagged("post_install", "-at_install")
class TestCronWakeup(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.push = cls.env.ref("impact_calendar_integration.ir_cron_push_bookings")
        # A cron worker's side: LISTEN on the channel, in the postgres database, as Odoo's do.
        _dbname, info = sql_db.connection_info_for("postgres")
        cls.listener = psycopg2.connect(**info)
        cls.listener.autocommit = True
        cls.addClassCleanup(cls.listener.close)
        with cls.listener.cursor() as cr:
            cr.execute("LISTEN cron_trigger")

    def _heard(self, dbname=None):
        """The payloads for ``dbname`` (this database) the listener received within 5 seconds
        (the channel is the server's: other databases on the same PostgreSQL wake their workers
        too)."""
        dbname = dbname or self.env.cr.dbname
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            select.select([self.listener], [], [], 0.2)
            self.listener.poll()
            heard = [notify.payload for notify in self.listener.notifies if notify.payload == dbname]
            self.listener.notifies.clear()
            if heard:
                return heard
        return []

    def _drain(self):
        self.listener.poll()
        self.listener.notifies.clear()

    def _made_by_wake_up(self):
        """The push action's trigger rows that one ``_wake_push_action`` made, and how many
        times its postcommit work, run then, woke the cron threads."""
        triggers = self.env["ir.cron.trigger"].sudo()
        before = triggers.search([("cron_id", "=", self.push.id)])
        earlier = list(self.env.cr.postcommit._funcs)
        self.env["impact.calendar.link"]._wake_push_action()
        queued = [func for func in self.env.cr.postcommit._funcs if func not in earlier]
        self.env.cr.postcommit._funcs.clear()  # nothing is committed in a test
        with patch.object(type(self.env["ir.cron"]), "_notifydb") as notifydb:
            for func in queued:
                func()
        return triggers.search([("cron_id", "=", self.push.id)]) - before, notifydb.call_count

    def _db_now(self):
        return self.env["impact.calendar.synchronizer"]._db_now()

    def test_a_booking_commit_wakes_the_push_action_once(self):
        now = self._db_now()
        made, notified = self._made_by_wake_up()
        self.assertEqual(len(made), 1)
        self.assertEqual(notified, 1)
        self.assertLessEqual(abs((made.call_at - now).total_seconds()), 2)

    def test_an_inactive_push_action_is_not_woken(self):
        self.push.active = False
        self.assertEqual(self._made_by_wake_up(), (self.env["ir.cron.trigger"], 0))

    def test_a_run_of_this_process_under_way_wakes_the_workers_once_when_it_ends(self):
        """Commits made while a push run of this process is under way wake no cron thread of the
        cluster: their triggers are made all the same, and the run wakes the threads once when
        it ends, since Odoo's scheduler does not look for triggers after a run by itself."""
        self._drain()
        with cron_wakeup.running(self.env.cr.dbname, self._db_now() - timedelta(seconds=1)):
            made, notified = self._made_by_wake_up()
            made_too, notified_too = self._made_by_wake_up()
        self.assertEqual((len(made | made_too), notified + notified_too), (2, 0))
        self.assertEqual(self._heard(), [self.env.cr.dbname])

    def test_a_run_nothing_was_left_to_wakes_no_one_when_it_ends(self):
        with patch.object(cron_wakeup, "notify") as notify:
            with cron_wakeup.running(self.env.cr.dbname, self._db_now()):
                pass
        notify.assert_not_called()

    def test_a_run_begun_after_the_trigger_leaves_the_wake_up_to_it(self):
        """The scheduler may drop a trigger made before the run it started: that one wakes."""
        with cron_wakeup.running(self.env.cr.dbname, self._db_now() + timedelta(seconds=5)):
            made, notified = self._made_by_wake_up()
        self.assertEqual((len(made), notified), (1, 1))

    def test_once_the_run_is_over_commits_wake_the_workers_again(self):
        with cron_wakeup.running(self.env.cr.dbname, self._db_now() - timedelta(seconds=1)):
            pass
        made, notified = self._made_by_wake_up()
        self.assertEqual((len(made), notified), (1, 1))

    def _kept_pid(self):
        return cron_wakeup._kept[os.getpid()].get_backend_pid()

    def test_wake_ups_reach_the_workers_through_one_connection(self):
        self.push._notifydb()
        self.assertEqual(self._heard(), [self.env.cr.dbname])
        pid = self._kept_pid()
        self.push._notifydb()
        self.assertEqual(self._heard(), [self.env.cr.dbname])
        self.assertEqual(self._kept_pid(), pid, "the second wake-up made a new connection")

    def test_a_lost_connection_is_made_again(self):
        self.push._notifydb()
        self._heard()
        lost = self._kept_pid()
        with self.listener.cursor() as cr:
            cr.execute("SELECT pg_terminate_backend(%s)", (lost,))
        time.sleep(0.2)  # the kept connection only learns of it at its next use
        self.push._notifydb()
        self.assertEqual(self._heard(), [self.env.cr.dbname])
        self.assertNotEqual(self._kept_pid(), lost)

    def test_without_the_connection_odoo_wakes_the_workers(self):
        with patch.object(cron_wakeup, "_connection", side_effect=psycopg2.OperationalError("down")):
            self.push._notifydb()
        self.assertEqual(self._heard(), [self.env.cr.dbname])

    def test_other_scheduled_actions_are_woken_as_odoo_does(self):
        other = self.env["ir.cron"].search([("id", "!=", self.push.id)], limit=1)
        with patch.object(cron_wakeup, "notify") as notify:
            other._notifydb()
            self.push._notifydb()
        notify.assert_called_once_with(self.env.cr.dbname)  # the push action's only
        self.assertEqual(self._heard(), [self.env.cr.dbname])  # the other's, Odoo's way

    def test_a_future_due_time_wakes_the_workers_then_and_a_later_one_does_not_hide_it(self):
        """Odoo's cron threads look at a future trigger only at their next poll (a minute): the
        process wakes them at the due time itself. A later due time set afterwards does not
        replace the nearer one; a nearer one set after a later one gets its own wake-up."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        dbname = f"{self.env.cr.dbname}-wakeup-test"  # its own timers; Odoo's workers ignore it
        key = (os.getpid(), dbname)
        self.addCleanup(lambda: [timer.cancel() for _at, timer in cron_wakeup._timers.pop(key, ())])
        cron_wakeup.notify_at(dbname, now + timedelta(hours=1))
        cron_wakeup.notify_at(dbname, now)  # nearer: woken now, whatever is set for later
        self.assertEqual(self._heard(dbname), [dbname])
        cron_wakeup.notify_at(dbname, now + timedelta(hours=2))
        pending = [at for at, _timer in cron_wakeup._timers[key]]
        self.assertIn(now + timedelta(hours=1), pending)
        self.assertNotIn(now + timedelta(hours=2), pending, "the pending nearer wake-up covers the later one")
