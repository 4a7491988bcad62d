#!/usr/bin/env python3
"""The booking side's one statement per commit: sent as such, or through the addon's function.

    .venv-ci/bin/python benchmarks/append_statement.py [--db bench_rpc_on] [--repeat 400]

Needs a database where the addon is installed and its registry has loaded once (it makes its
function then): ``rpc_overhead.py``'s ON database, which has the resource_booking bridge too.
Over one connection, as a server's, each statement is run ``--repeat`` times on the newest class
and rolled back; printed: the median round trip of ``SELECT 1``, of the statement sent as such
(PostgreSQL plans it every time) and of the same statement through the function (its plan kept
for the connection), and whether the kept (generic) plan hashes a whole table instead of looking
each class up. Nothing is committed. Timings are printed, never asserted.
"""

import argparse
import statistics
import time

import psycopg2

PREFIX = "impact_calendar_append_"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", default="bench_rpc_on")
    parser.add_argument("--repeat", type=int, default=400)
    args = parser.parse_args()
    cnx = psycopg2.connect(host="127.0.0.1", port=5432, user="odoo", password="odoo", dbname=args.db)
    cr = cnx.cursor()
    cr.execute("""SELECT proname, prosrc, proargnames,
                         ARRAY(SELECT format_type(t, NULL) FROM unnest(proargtypes) WITH ORDINALITY AS a(t, n) ORDER BY n)
                    FROM pg_proc WHERE left(proname, %s) = %s ORDER BY oid DESC LIMIT 1""",
               [len(PREFIX), PREFIX])
    name, source, names, types = cr.fetchone()  # the newest: the one the current registry made
    arguments = [(arg.removeprefix("p_"), sql_type) for arg, sql_type in zip(names, types)]  # as the function has them
    body = source[source.index("WITH"):source.rindex("INTO woken_at")]
    cr.execute("SELECT res_id FROM ir_model_data WHERE module = 'impact_calendar_integration'"
               " AND name = 'ir_cron_push_bookings'")
    cron = cr.fetchone()[0]
    cr.execute("SELECT max(id) FROM calendar_event")
    values = {"event_kind": "event", "event_refs": [cr.fetchone()[0]], "refs": [], "users": [], "kinds": [],
              "uid": 2, "cron": cron, "always": False}
    statement, generic = body, body
    for position, (arg, sql_type) in enumerate(arguments, 1):
        statement = statement.replace(f"p_{arg}", f"%({arg})s::{sql_type}")
        generic = generic.replace(f"p_{arg}", f"${position}")
    call = f"SELECT {name}(" + ", ".join(f"%({arg})s::{sql_type}" for arg, sql_type in arguments) + ")"

    def median_ms(sql):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            cr.execute(sql, values)
            times.append(time.perf_counter() - started)
            cnx.rollback()
        return statistics.median(times) * 1000

    print(f"append_statement: {args.db}, function {name}, {args.repeat} runs each, rolled back")
    for _round in range(2):
        print(f"   SELECT 1 {median_ms('SELECT 1'):.3f} ms | statement sent as such {median_ms(statement):.3f} ms"
              f" | through the function {median_ms(call):.3f} ms")
    cr.execute("SET plan_cache_mode = force_generic_plan")
    cr.execute(f"PREPARE kept ({', '.join(types)}) AS {generic}")
    cr.execute("EXPLAIN (ANALYZE, SUMMARY) EXECUTE kept('event', %(event_refs)s, '{}', '{}', '{}', 2, %(cron)s, false)",
               values)
    plan = [row[0] for row in cr.fetchall()]
    cnx.rollback()
    print(f"   the kept plan: {'hashes a whole table' if any('hashed' in line for line in plan) else 'looks each class up'}; "
          f"{plan[-1].strip()}")


if __name__ == "__main__":
    main()
