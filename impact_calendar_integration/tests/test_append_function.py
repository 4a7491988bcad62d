# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The booking side's statement: the registry's function, or the same statement sent as such."""

from datetime import timedelta
from unittest.mock import patch

from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from .. import uninstall_hook
from ..models import impact_calendar_link_append as append
from ..sync import outbox
from .common import add_students, connect_offline, create_class, make_user


@tagged("post_install", "-at_install")
class TestAppendFunction(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.links = cls.env["impact.calendar.link"]
        cls.push = cls.env.ref("impact_calendar_integration.ir_cron_push_bookings")
        cls.teacher = make_user(cls.env, "append_teacher")
        connect_offline(cls.teacher)
        cls.outsider = make_user(cls.env, "append_outsider", integration=False)
        add_students(cls, "Append Student", 2, days=3)
        cls.taught = create_class(cls.env, cls.teacher, cls.students, cls.start, timedelta(hours=1), name="Taught")
        cls.untaught = create_class(cls.env, cls.outsider, cls.students, cls.start, timedelta(hours=1), name="Untaught")
        cls.function = cls.links._impact_calendar_append_function

    def _proc(self):
        """(name, settings, source) of the registry's function, or None."""
        self.env.cr.execute("SELECT proname, proconfig, prosrc FROM pg_proc WHERE oid = to_regproc(%s)", [self.function])
        return self.env.cr.fetchone()

    def _append(self, function, **kwargs):
        """(change rows, push triggers made) of one ``_append_and_wake(**kwargs)``, through
        ``function`` (None: the statement sent as such)."""
        cr = self.env.cr
        cr.execute("SELECT coalesce(max(id), 0) FROM impact_calendar_change")
        last = cr.fetchone()[0]
        cr.execute("SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [self.push.id])
        triggers = cr.fetchone()[0]
        with patch.object(type(self.links), "_impact_calendar_append_function", function):
            self.links._append_and_wake(**kwargs)
        cr.postcommit.clear()  # nothing is committed in a test
        cr.execute("SELECT event_ref, user_id, kind FROM impact_calendar_change WHERE id > %s ORDER BY id", [last])
        rows = cr.fetchall()
        cr.execute("SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s", [self.push.id])
        return rows, cr.fetchone()[0] - triggers

    def test_the_registry_made_its_function_with_a_kept_plan(self):
        self.assertTrue(self.function.startswith(append.FUNCTION_PREFIX))
        _name, settings, source = self._proc()
        self.assertEqual(settings, ["plan_cache_mode=force_generic_plan"])
        self.assertIn("impact_calendar_account", source)

    def test_its_plan_looks_each_class_up(self):
        """The kept plan is made for any number of classes: each EXISTS must stay a lookup by
        the class's id, never a hash of the whole link table or of every class's instructors."""
        cr = self.env.cr
        statement = self.links._append_statement({arg: f"${n}" for n, (arg, _type) in enumerate(append.ARGUMENTS, 1)})
        types = ", ".join(sql_type for _arg, sql_type in append.ARGUMENTS)
        cr.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cr.execute(f"PREPARE impact_calendar_append_plan ({types}) AS {statement}")  # pylint: disable=sql-injection
        self.addCleanup(cr.execute, "DEALLOCATE impact_calendar_append_plan")
        cr.execute("EXPLAIN EXECUTE impact_calendar_append_plan('event', '{1}', '{}', '{}', '{}', 1, 1, false)")
        plan = "\n".join(row[0] for row in cr.fetchall())
        self.assertIn("SubPlan", plan)
        self.assertNotIn("hashed", plan)

    def test_the_function_and_the_statement_append_alike(self):
        user = (None, self.teacher.id, outbox.CHANGE_USER)
        cases = [
            ({"events": [self.taught.id, self.untaught.id]}, [(self.taught.id, None, outbox.CHANGE_EVENT)], 1),
            ({"events": [self.untaught.id]}, [], 0),
            ({"changes": [user]}, [user], 1),
            ({"events": [self.untaught.id], "changes": [user]}, [user], 1),
            ({"always": True}, [], 1),
        ]
        for function in (self.function, None):
            for kwargs, rows, triggers in cases:
                with self.subTest(function=function, **kwargs):
                    self.assertEqual(self._append(function, **kwargs), (rows, triggers))
            with self.subTest(function=function, push_action="inactive"):
                self.push.active = False
                self.assertEqual(self._append(function, events=[self.taught.id]),
                                 ([(self.taught.id, None, outbox.CHANGE_EVENT)], 0))
                self.push.active = True

    def test_a_class_with_a_link_counts_whoever_teaches_it(self):
        self.env.cr.execute(
            "INSERT INTO impact_calendar_link (event_ref, user_id, state, dirty) VALUES (%s, %s, 'synced', false)",
            [self.untaught.id, self.teacher.id],
        )
        for function in (self.function, None):
            with self.subTest(function=function):
                self.assertEqual(self._append(function, events=[self.untaught.id]),
                                 ([(self.untaught.id, None, outbox.CHANGE_EVENT)], 1))

    def test_the_function_is_made_once(self):
        self.assertEqual(self.links._ensure_append_function(), self.function)
        self.env.cr.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", [self.function])
        self.assertEqual(self.env.cr.fetchone()[0], 1)

    def _made_instead(self, **patches):
        """What ``_ensure_append_function`` returns and logs for a function of another name."""
        with patch.object(append, "FUNCTION_PREFIX", "impact_calendar_append_test_"), \
                patch.multiple(append, **patches), mute_logger("odoo.sql_db"), \
                self.assertLogs(append.__name__, "WARNING") as logs:
            made = self.links._ensure_append_function()
        self.env.cr.execute("SELECT 1")  # the transaction goes on
        self.assertEqual(self.env.cr.fetchone(), (1,))
        return made, logs.output

    def test_a_role_that_may_not_make_it_sends_the_statement(self):
        made, logs = self._made_instead(CHECK="SELECT false, false FROM (SELECT %s) name")
        self.assertIsNone(made)
        self.assertIn("may not create functions", logs[0])

    def test_a_function_that_cannot_be_made_leaves_the_statement(self):
        broken = "CREATE FUNCTION {name}({arguments}) RETURNS no_such_type LANGUAGE sql AS $f$ SELECT 1 $f$"
        made, logs = self._made_instead(FUNCTION=broken)
        self.assertIsNone(made)
        self.assertIn("no_such_type", logs[0])

    def test_uninstalling_drops_the_functions(self):
        uninstall_hook(self.env)
        self.assertIsNone(self._proc())
