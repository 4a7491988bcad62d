# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The database holds the link uniqueness the worker relies on (``ON CONFLICT (event_ref,
user_id)``), whichever way the series declares it (``_sql_constraints`` / ``models.Constraint``)."""

import psycopg2

from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from .common import connect_offline, make_user


@tagged("post_install", "-at_install")
class TestSchema(TransactionCase):
    def test_link_unique_constraint_exists(self):
        self.env.cr.execute(
            """SELECT pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid = 'impact_calendar_link'::regclass AND contype = 'u'
                  AND conname = 'impact_calendar_link_event_user_uniq'"""
        )
        self.assertEqual(self.env.cr.fetchall(), [("UNIQUE (event_ref, user_id)",)])

    def test_duplicate_link_is_refused(self):
        instructor = make_user(self.env, "schema.instructor")
        account = connect_offline(instructor)
        event = self.env["calendar.event"].create({
            "name": "Schema class", "user_id": instructor.id,
            "start": "2030-01-07 10:00:00", "stop": "2030-01-07 11:00:00",
        })
        insert = """
            INSERT INTO impact_calendar_link (event_ref, event_id, user_id, account_id, dirty,
                                              change_seq, generation, state, attempts)
            VALUES (%s, %s, %s, %s, true, 1, 0, 'pending', 0)
        """
        params = (event.id, event.id, instructor.id, account.id)
        self.env.cr.execute(insert, params)
        with self.assertRaises(psycopg2.errors.UniqueViolation), mute_logger("odoo.sql_db"), \
                self.env.cr.savepoint():
            self.env.cr.execute(insert, params)
