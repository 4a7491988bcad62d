# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The booking side's one statement per commit, planned once per database connection.

Every booking commit appends its changes to the change log and wakes the push action. Planning
that statement costs PostgreSQL more than running it (0.5 ms against 0.1 ms with the
resource_booking bridge's instructors), on each of a booking's requests. So the statement lives
in a PL/pgSQL function, whose plan PostgreSQL keeps for the connection (a generic plan: custom
plans would be made again on every call). The function's name carries a hash of its text: a
registry whose instructors query differs (the bridge installed or not) makes and calls its own,
and a server process whose registry is older keeps calling the one it knows. When the function
cannot be made (a database role without CREATE), the same statement is sent as such.
"""

import hashlib
import logging

import psycopg2

from odoo import api, models
from odoo.tools import SQL

from .. import compat, cron_wakeup
from ..sync import outbox

_logger = logging.getLogger(__name__)

FUNCTION_PREFIX = "impact_calendar_append_"

# Append class changes (a class's only when it can matter: it has a link, or one of its
# instructors has an account; deleted classes keep their ids in ``unnest``) and user changes,
# then wake the push action if any was appended or ``always``: a trigger at the database's now,
# unless the action is inactive, as ``ir.cron._trigger()`` does. ``OFFSET 0`` keeps each EXISTS
# a lookup by the class's id: a plan made once, for any number of classes, would otherwise hash
# the whole link table and every class's instructors on each call. ``{instructors}``:
# calendar.event._impact_calendar_instructors_query(); the other fields are the arguments.
APPEND = """
    WITH event_changes AS (
        INSERT INTO impact_calendar_change (event_ref, kind)
        SELECT ref, {event_kind} FROM unnest({event_refs}) AS ref
         WHERE EXISTS (SELECT 1 FROM impact_calendar_link link WHERE link.event_ref = ref OFFSET 0)
            OR EXISTS (SELECT 1 FROM ({instructors}) i
                         JOIN impact_calendar_account a ON a.user_id = i.user_id
                        WHERE i.event_id = ref OFFSET 0)
        RETURNING 1
    ), user_changes AS (
        INSERT INTO impact_calendar_change (event_ref, user_id, kind)
        SELECT * FROM unnest({refs}, {users}, {kinds})
        RETURNING 1
    )
    INSERT INTO ir_cron_trigger (cron_id, call_at, create_uid, create_date, write_uid, write_date)
    SELECT cron.id, now.utc, {uid}, now.utc, {uid}, now.utc
      FROM ir_cron cron, (SELECT statement_timestamp() AT TIME ZONE 'UTC' AS utc) now
     WHERE cron.id = {cron} AND cron.active
       AND ({always} OR EXISTS (SELECT 1 FROM event_changes) OR EXISTS (SELECT 1 FROM user_changes))
    RETURNING call_at
"""
# (argument, SQL type), in the function's order.
ARGUMENTS = (
    ("event_kind", "varchar"), ("event_refs", "integer[]"), ("refs", "integer[]"), ("users", "integer[]"),
    ("kinds", "varchar[]"), ("uid", "integer"), ("cron", "integer"), ("always", "boolean"),
)
# Whether the function exists, and whether this role may make it (no ERROR line when not).
CHECK = "SELECT to_regproc(%s) IS NOT NULL, has_schema_privilege(current_schema(), 'CREATE')"
FUNCTION = """
    CREATE FUNCTION {name}({arguments}) RETURNS timestamp
    LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $impact_calendar$
    DECLARE woken_at timestamp;
    BEGIN
        {statement} INTO woken_at;
        RETURN woken_at;
    END
    $impact_calendar$
"""


class ImpactCalendarLinkAppend(models.Model):
    _inherit = "impact.calendar.link"

    # The function this registry calls, set by _register_hook; None: send the statement.
    _impact_calendar_append_function = None

    def _register_hook(self):
        super()._register_hook()
        type(self)._impact_calendar_append_function = self._ensure_append_function()

    @api.model
    def _append_statement(self, placeholders):
        return APPEND.format(instructors=self._instructors_query(), **placeholders)

    @api.model
    def _ensure_append_function(self):
        """Make this registry's function unless it exists. Returns its name, or None."""
        statement = self._append_statement({arg: f"p_{arg}" for arg, _type in ARGUMENTS})
        name = FUNCTION_PREFIX + hashlib.sha256(statement.encode()).hexdigest()[:16]
        cr = self.env.cr
        try:
            with cr.savepoint(flush=False):
                # One server process at a time checks and makes it: another one loading its
                # registry meanwhile waits here, then finds the function.
                cr.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [FUNCTION_PREFIX])
                cr.execute(CHECK, [name])
                exists, may_create = cr.fetchone()
                if not exists and may_create:
                    cr.execute(FUNCTION.format(  # pylint: disable=sql-injection
                        name=name, statement=statement,
                        arguments=", ".join(f"p_{arg} {sql_type}" for arg, sql_type in ARGUMENTS),
                    ))
        except psycopg2.Error as error:
            exists, may_create = False, error
        if not exists and may_create is not True:
            _logger.warning("Booking changes are appended without a function (%s): %s", name,
                            may_create or "the database role may not create functions")
            return None
        return name

    @api.model
    def _append_and_wake(self, events=(), changes=(), always=False):
        """Append class changes ``events`` and (event_ref, user_id, kind) ``changes``, then wake
        the push action if any was appended (or ``always``): one statement. Odoo's ``_trigger()``
        would read the action and create the trigger through the ORM, on every booking commit."""
        if not (events or changes or always):
            return
        # The push action is a system record: flushing it and waking the cron threads need no
        # access right, so no sudo environment (each one lengthens the transaction's env scan).
        cron = self.env["ir.cron"].browse(self.env["ir.cron"]._impact_calendar_push_action_id())
        cron.flush_recordset(["active"])
        refs, users, kinds = zip(*changes) if changes else ((), (), ())
        args = {
            "event_kind": outbox.CHANGE_EVENT, "event_refs": list(events), "refs": list(refs),
            "users": list(users), "kinds": list(kinds), "uid": self.env.uid, "cron": cron.id or None,
            "always": always,
        }
        cr = self.env.cr
        function = self._impact_calendar_append_function
        if function:
            cr.execute(SQL("SELECT %s(%s)", SQL.identifier(function), SQL(", ").join(
                SQL("%s::%s", args[arg], SQL(sql_type)) for arg, sql_type in ARGUMENTS
            )))
        else:
            cr.execute(self._append_statement(  # pylint: disable=sql-injection
                {arg: f"%({arg})s::{sql_type}" for arg, sql_type in ARGUMENTS}
            ), args)
        woken_at = (cr.fetchone() or [None])[0]  # the trigger's time, None without one
        if woken_at:
            # A push run of this process that began before the trigger takes the change, or
            # wakes the cron threads once when it ends: waking every cron thread of the cluster
            # once per booking commit would only make them look for work.
            dbname = cr.dbname
            compat.notify_cron_after_commit(cron, unless=lambda: cron_wakeup.covered(dbname, woken_at))


def drop_append_functions(cr):
    """Drop every function this addon made (the uninstall hook)."""
    cr.execute(
        "SELECT oid::regprocedure::text FROM pg_proc WHERE left(proname, %s) = %s",
        [len(FUNCTION_PREFIX), FUNCTION_PREFIX],
    )
    for (signature,) in cr.fetchall():
        cr.execute(SQL("DROP FUNCTION %s", SQL(signature)))  # pylint: disable=sql-injection
