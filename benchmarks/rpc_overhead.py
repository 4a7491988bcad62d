#!/usr/bin/env python3
"""Booking overhead as a browser sees it: JSON-RPC round trips against twin Odoo servers (18.0 or 19.0).

    python3 benchmarks/rpc_overhead.py [--series 18.0|19.0] [--reset] [--runs 3] [--blocks 4] [--block 20]
                                       [--cases instructor admin coordinator booking portal] [--profile]

Two databases with the same content (an instructor user, a coordinator user, 12 students as
res.partner, 60 past classes): ``bench_rpc_off`` has only ``calendar`` installed;
``bench_rpc_on`` has the addon installed and the instructor connected to a Google emulator
started by this script on 127.0.0.1. With the ``booking`` or ``portal`` case, both also have OCA
``resource_booking`` (from ``tools/odoo_env.oca_addons(series)``) and the ON one the bridge addon
``impact_calendar_integration_resource_booking``; the instructor is then the user resource of a
combination that a booking type open around the clock offers. Two ``odoo-bin`` servers (threaded:
``--workers=0 --max-cron-threads=1``) serve them on 127.0.0.1:8271 (OFF) and 127.0.0.1:8272 (ON),
each with ``--db-filter`` on its database.

Who books (``--cases``, all by default), each with its own session (``/web/session/authenticate``,
cookie kept in a ``requests.Session``) and its own ratio:

- ``instructor``: the instructor, into her own class;
- ``admin``: the administrator, for the instructor (organizer = the instructor);
- ``coordinator``: an internal user outside the integration group, for the instructor;
- ``booking``: the coordinator (a resource_booking manager) through OCA resource_booking:
  ``resource.booking`` with the instructor's combination, which makes the meeting;
- ``portal``: a student confirms a pending booking on resource_booking's portal page
  (``GET /my/bookings/<id>/confirm`` with the booking's access token, not logged in). The
  coordinator creates that booking and reads its portal link first; only the confirmation is
  timed.

A booking of the first four cases is three JSON-RPC ``/web/dataset/call_kw`` calls, each timed
with ``time.perf_counter()`` around the HTTP round trip:

1. ``create`` of a class (``calendar.event``: organized by the instructor, ``partner_ids`` = the
   instructor's partner + 2 students; ``resource.booking``: the 2 students, the combination);
2. ``write`` adding a third student (``Command.link``);
3. ``write`` removing one of the first two (``Command.unlink``).

Blocks of ``--block`` bookings alternate between the servers (OFF, ON, then ON, OFF, ...), case
after case within a block, so that machine noise hits both alike. Every run starts both servers
afresh, both with the run's own ``PYTHONHASHSEED``, and warms them up: one server process is faster
or slower than its twin by a few per cent for reasons of its own (string hashes, memory layout), and
a new pair per run makes that part of each run's sample instead of a bias shared by all runs. Two
modes, ``--runs`` runs each:

- ``paused``: the push action (``impact_calendar_integration.ir_cron_push_bookings``) is
  inactive in the ON database: the booking hook's own cost. NB: Odoo's ``ir.cron._trigger()``
  skips the trigger row and its NOTIFY for an inactive cron, so this mode does not pay them.
- ``live``: the push action is active: every booking commit inserts an ``ir_cron_trigger`` row,
  NOTIFYs the cron thread, which pushes the class to the emulator in the same process.

Printed: per case, medians per op type (and per whole booking) for OFF and ON, the ON/OFF ratio
of every run and its spread (min-max over the runs); target <= 1.03. The server's own request log
line (``query_count query_time remaining_time`` of Odoo's werkzeug logger; the case is in the
query string) gives the SQL queries and SQL/Python ms per request on both sides. ``--profile``
then restarts the ON server with timing wrappers (nothing in the addon is changed: class
attributes are wrapped in the server process before it starts) around the addon's hook parts and
``ir.cron._trigger`` / ``_notifydb``, runs both modes on ON only (the instructor's bookings), and
prints ms per booking for each part.

``--aa`` checks the twins themselves: the ON server then serves a vanilla copy of the OFF database
(``<prefix>aa``, made from it as a template), in the paused mode; any ratio away from 1.00 is the
setup's, not the addon's.

The Odoo is the one of ``python3 tools/odoo_env.py <--series>`` (built on first run); the script
re-executes itself with that virtualenv's Python. PostgreSQL: 127.0.0.1:5432, role odoo/odoo.
Databases are reused between runs (missing modules are installed, the repository's addons
upgraded with ``-u`` unless ``--no-update``); ``--reset`` drops and recreates them. The setup sets
the administrator's password to ``admin`` in both databases. Servers run in their own process
groups and are killed on exit, also on Ctrl-C; logs go to ``/tmp/<database>.log``. Timings are
printed, never asserted.
"""

import argparse
import atexit
import contextlib
import json
import os
import platform
import pstats
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from multiprocessing.managers import BaseManager

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ADDON = "impact_calendar_integration"
CRON_XMLID = ("impact_calendar_integration", "ir_cron_push_bookings")
PG = {"host": "127.0.0.1", "port": 5432, "user": "odoo", "password": "odoo"}
LOGIN = PASSWORD = "bench_rpc_instructor"
# Who books, and how: the login of each case (the password is the login).
CASES = {
    "instructor": LOGIN,  # the instructor books into her own class
    "admin": "admin",  # the administrator, for the instructor
    "coordinator": "bench_rpc_coordinator",  # an internal user without the integration group
    "booking": "bench_rpc_coordinator",  # OCA resource_booking: resource.booking with a combination
    "portal": None,  # a student confirms a pending booking on the portal (access token, no login)
}
BOOKING_CASES = ("booking", "portal")  # need OCA resource_booking and the bridge addon
BRIDGE = "impact_calendar_integration_resource_booking"
STUDENTS = 12
OPS = ("create", "add student", "remove student")
PORTAL_OPS = ("confirm",)
RE_ENV = "BENCH_RPC_ODOO"  # "odoo_src|venv_python", set when re-executed
SERIES = ("18.0", "19.0")


# -- environment ------------------------------------------------------------------------------------
def requested_series():
    """--series, read before the full parse: it chooses the Python to re-execute with."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--series", default="18.0", choices=SERIES)
    return parser.parse_known_args()[0].series


def ensure_odoo_python(series):
    """Re-execute with the Odoo virtualenv's Python (it has requests, psycopg2, googleapiclient)."""
    found = os.environ.get(RE_ENV)
    if not found:
        done = subprocess.run([sys.executable if sys.executable else "python3", os.path.join(REPO, "tools", "odoo_env.py"), series],
                              stdout=subprocess.PIPE, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line and not line.startswith("[odoo-env]")]
        if done.returncode or len(lines) < 2:
            sys.exit(f"tools/odoo_env.py {series} failed:\n{done.stdout}")
        found = f"{lines[-2]}|{lines[-1]}"
        os.environ[RE_ENV] = found
    odoo_src, python = found.split("|")
    if os.path.realpath(sys.prefix) != os.path.realpath(os.path.dirname(os.path.dirname(python))):
        os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])
    return odoo_src, python


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reset", action="store_true", help="drop and recreate both databases")
    parser.add_argument("--no-update", action="store_true", help="reuse the ON database without upgrading the addon")
    parser.add_argument("--series", default="18.0", choices=SERIES, help="the Odoo series of both servers")
    parser.add_argument("--db-prefix", help="default: bench_rpc_ (18.0), bench_rpc_19_ (19.0)")
    parser.add_argument("--ports", type=int, nargs=2, default=[8271, 8272], metavar=("OFF", "ON"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=4, help="blocks per server per run")
    parser.add_argument("--block", type=int, default=20, help="bookings per block")
    parser.add_argument("--warmup", type=int, default=10, help="bookings per case and server before each run (not counted)")
    parser.add_argument("--modes", nargs="+", default=["paused", "live"], choices=["paused", "live"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES),
                        help="who books (default: all); booking and portal install OCA resource_booking "
                             "in both databases and the bridge addon in the ON one")
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="pause after each RPC, as a user between clicks (default 0: back to back, the harshest)")
    parser.add_argument("--workers", type=int, default=0,
                        help="odoo-bin --workers of both servers (0: threaded, the cron thread shares the HTTP "
                             "process; N: prefork, the cron runs in its own process)")
    parser.add_argument("--profile", action="store_true", help="then profile the ON server's hook parts")
    parser.add_argument("--profile-only", action="store_true", help="only the profile pass")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--aa", action="store_true",
                        help="A/A check: the ON server serves a vanilla copy of the OFF database (paused mode "
                             "only): the ratio the twin setup itself gives, without the addon")
    args = parser.parse_args()
    if args.db_prefix is None:
        args.db_prefix = "bench_rpc_" if args.series == "18.0" else f"bench_rpc_{args.series.split('.')[0]}_"
    if not args.db_prefix.startswith("bench_rpc_"):
        parser.error("--db-prefix must start with bench_rpc_")
    if args.profile_only:
        args.profile = True
    if args.aa:
        if args.profile:
            parser.error("--aa has no addon to profile")
        args.modes = ["paused"]
    return args


def pg_connect(dbname="postgres"):
    import psycopg2  # pylint: disable=import-outside-toplevel

    conn = psycopg2.connect(dbname=dbname, **PG)
    conn.autocommit = True
    return conn


def pg_one(dbname, query, params=None):
    conn = pg_connect(dbname)
    try:
        with conn.cursor() as cr:
            cr.execute(query, params)
            return cr.fetchone() if cr.description else None
    finally:
        conn.close()


def database_ready(name):
    if not pg_one("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,)):
        return False
    row = pg_one(name, "SELECT 1 FROM pg_class WHERE relname = 'ir_module_module'")
    return bool(row) and bool(pg_one(name, "SELECT 1 FROM ir_module_module WHERE name = 'calendar' AND state = 'installed'"))


def drop_database(name):
    assert name.startswith("bench_rpc_")
    conn = pg_connect()
    with conn.cursor() as cr:
        cr.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cr.execute(f'DROP DATABASE IF EXISTS "{name}"')  # pylint: disable=sql-injection
    conn.close()


class Odoo:
    def __init__(self, src, python, extra_addons=()):
        self.src, self.python = src, python
        self.bin = os.path.join(src, "odoo-bin")
        self.addons = ",".join([os.path.join(src, "odoo", "addons"), os.path.join(src, "addons"), REPO, *extra_addons])

    def base_args(self, db):
        return [f"--addons-path={self.addons}", "--db_host=127.0.0.1", "--db_port=5432", "--db_user=odoo",
                "--db_password=odoo", "-d", db]

    def run(self, db, *extra, stdin=None, env=None, timeout=900):
        cmd = [self.python, self.bin, *extra[:1], *self.base_args(db), *extra[1:]]
        done = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, check=False, env=env)
        if done.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
        return done.stdout


def prepare_database(odoo, name, modules, args):
    """Create (``-i``) or install what is missing, and, for the ON database, upgrade (``-u``)
    the addons of this repository."""
    if args.reset:
        drop_database(name)
    wanted = modules.split(",")
    missing = wanted if not database_ready(name) else [module for module in wanted if not pg_one(
        name, "SELECT 1 FROM ir_module_module WHERE name = %s AND state = 'installed'", (module,))]
    if missing:
        print(f"   creating {name} (-i {','.join(missing)}) ...", flush=True)
        odoo.run(name, "server", "-i", ",".join(missing), "--stop-after-init", "--without-demo=all", "--log-level=warn",
                 "--http-port=0", "--max-cron-threads=0")
    ours = [module for module in wanted if module in (ADDON, BRIDGE) and module not in missing]
    if ours and not args.no_update:
        print(f"   upgrading {','.join(ours)} in {name} ...", flush=True)
        odoo.run(name, "server", "-u", ",".join(ours), "--stop-after-init", "--log-level=warn", "--http-port=0",
                 "--max-cron-threads=0")


# Runs inside `odoo-bin shell` (stdin): same content in both databases; the ON one gets the
# emulator's settings and a Google account connected with tokens the emulator issued.
SETUP_SCRIPT = r'''
import json, os
from datetime import datetime, timedelta
from odoo import Command
cfg = json.loads(os.environ["BENCH_RPC_SETUP"])
GROUPS = "group_ids" if "group_ids" in env["res.users"]._fields else "groups_id"  # 19.0 renamed it
Users = env["res.users"].with_context(no_reset_password=True)
user = Users.search([("login", "=", cfg["login"])])
if not user:
    user = Users.create({"name": "Bench RPC Instructor", "login": cfg["login"], "password": cfg["password"],
                         "email": cfg["email"], "tz": "Europe/Brussels",
                         GROUPS: [Command.set([env.ref("base.group_user").id])]})
students = env["res.partner"].search([("name", "=like", "Bench RPC Student %")], order="id")
missing = cfg["students"] - len(students)
if missing > 0:
    students |= env["res.partner"].create([{"name": f"Bench RPC Student {len(students) + n}",
                                            "email": f"bench.rpc.student{len(students) + n}@example.com"}
                                           for n in range(missing)])
# the other bookers: a coordinator (an internal user, also a resource_booking manager when that is
# installed, never in the integration group) and the administrator
booking = "resource.booking" in env
coordinator = Users.search([("login", "=", cfg["coordinator"])])
if not coordinator:
    groups = [env.ref("base.group_user").id] + ([env.ref("resource_booking.group_manager").id] if booking else [])
    coordinator = Users.create({"name": "Bench RPC Coordinator", "login": cfg["coordinator"], "password": cfg["coordinator"],
                                "email": f"{cfg['coordinator']}@example.com", "tz": "Europe/Brussels",
                                GROUPS: [Command.set(groups)]})
elif booking:
    coordinator[GROUPS] = [Command.link(env.ref("resource_booking.group_manager").id)]
admin = env.ref("base.user_admin")
admin.password = cfg["admin_password"]
Events = env["calendar.event"].with_user(user).with_context(no_mail_to_attendees=True)
# the classes booked by earlier runs: removed so both databases keep the same size
if booking:
    env["resource.booking"].with_context(active_test=False).search([("name", "=like", "Bench RPC %")]).unlink()
old = env["calendar.event"].with_context(active_test=False).search([("name", "=like", "Bench RPC class %")])
old.unlink()
env.cr.flush()
if not env["calendar.event"].search_count([("name", "=like", "Bench RPC history %")]):
    start = datetime(2025, 1, 6, 9, 0)
    Events.create([{"name": f"Bench RPC history {n}", "user_id": user.id, "start": start + timedelta(days=n),
                    "stop": start + timedelta(days=n, hours=1),
                    "partner_ids": [Command.set([user.partner_id.id] + students[n % 10: n % 10 + 2].ids)]}
                   for n in range(60)])
if cfg["on"]:
    user[GROUPS] = [Command.link(env.ref("impact_calendar_integration.group_calendar_integration").id)]
    for key, value in cfg["params"].items():
        env["ir.config_parameter"].sudo().set_param(key, value)
    env.cr.flush()
    env["impact.calendar.link"].sudo().search([]).unlink()  # nothing left over for the new emulator
    from odoo.addons.impact_calendar_integration.sync.tokens import TokenSet
    tokens = TokenSet(access_token=cfg["access"], refresh_token=cfg["refresh"], expires_at=cfg["expires_at"])
    env["impact.calendar.account"].sudo()._connect(user, "google", tokens, cfg["email"], destination="main")
    env.cr.flush()
world = {"uid": user.id, "partner": user.partner_id.id, "students": students.ids}
if booking:
    # OCA resource_booking: the instructor is the user resource of a combination, bookable
    # around the clock by a booking type
    always = env["resource.calendar"].search([("name", "=", "Bench RPC always open")])
    if not always:
        always = env["resource.calendar"].create({
            "name": "Bench RPC always open", "tz": "UTC",
            "attendance_ids": [Command.create({"name": str(day), "dayofweek": str(day), "hour_from": 0, "hour_to": 24,
                                               "day_period": "morning"}) for day in range(7)],
        })
    kind = env["resource.booking.type"].search([("name", "=", "Bench RPC lesson")])
    if not kind:
        resource = env["resource.resource"].create({"name": user.name, "resource_type": "user", "user_id": user.id,
                                                    "calendar_id": always.id, "tz": "UTC"})
        combination = env["resource.booking.combination"].create({"resource_ids": [Command.set(resource.ids)]})
        kind = env["resource.booking.type"].create({
            "name": "Bench RPC lesson", "resource_calendar_id": always.id, "duration": 1.0,
            "combination_rel_ids": [Command.create({"combination_id": combination.id})]})
    world.update(booking_type=kind.id, combination=kind.combination_rel_ids[0].combination_id.id)
env.cr.commit()
print("BENCH_RPC " + json.dumps(world))
'''


def setup_content(odoo, db, on, emulator=None):
    cfg = {"login": LOGIN, "password": PASSWORD, "email": f"{LOGIN}@example.com", "students": STUDENTS, "on": on,
           "coordinator": CASES["coordinator"], "admin_password": CASES["admin"]}
    if on:
        access, refresh = emulator.issue_tokens(cfg["email"])
        cfg.update(access=access, refresh=refresh, expires_at=time.time() + 3500,
                   params={f"impact_calendar.google_{k}": v for k, v in emulator.config_kwargs().items()})
    env = dict(os.environ, BENCH_RPC_SETUP=json.dumps(cfg))
    out = odoo.run(db, "shell", "--no-http", "--log-level=warn", stdin=SETUP_SCRIPT, env=env)
    line = next(line for line in out.splitlines() if line.startswith("BENCH_RPC "))
    return json.loads(line[len("BENCH_RPC "):])


def set_push_cron(db, active):
    pg_one(db, """UPDATE ir_cron SET active = %s WHERE id = (SELECT res_id FROM ir_model_data
                   WHERE module = %s AND name = %s AND model = 'ir.cron') RETURNING id""", (active, *CRON_XMLID))


def queue_state(db):
    """(links or changes still to push, synced links, links); zeros in a vanilla database (--aa)"""
    if not pg_one(db, "SELECT 1 FROM pg_class WHERE relname = 'impact_calendar_link'"):
        return (0, 0, 0)
    return pg_one(db, "SELECT count(*) FILTER (WHERE dirty) + (SELECT count(*) FROM impact_calendar_change), "
                      "count(*) FILTER (WHERE state = 'synced'), count(*) FROM impact_calendar_link")


def cpu_seconds(server_pid, db):
    """CPU seconds (user + system, from /proc) of an Odoo server process, its children (prefork
    workers) and the PostgreSQL backends now connected to its database: the work behind a run,
    which the machine's noise moves much less than wall time. A backend that closes during the
    run takes its share with it (Odoo keeps its connections pooled, so few do)."""
    pids = {server_pid}
    with contextlib.suppress(OSError):
        pids |= {int(pid) for pid in open(f"/proc/{server_pid}/task/{server_pid}/children", encoding="ascii").read().split()}
    conn = pg_connect("postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db,))
            pids |= {row[0] for row in cr.fetchall()}
    finally:
        conn.close()
    ticks = os.sysconf("SC_CLK_TCK")
    total = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = open(f"/proc/{pid}/stat", encoding="ascii").read().rsplit(")", 1)[1].split()
            total[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return total


def cpu_spent(before, after):
    """Seconds between two cpu_seconds() snapshots (processes that appeared count from zero)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# -- servers -------------------------------------------------------------------------------------------
SERVERS = []

# Started instead of odoo-bin for --profile: wraps the hook parts (class attributes, in this
# process only) with timers that log one line per call, then runs odoo-bin's server command.
PROFILE_BOOT = r'''
import functools, logging, re, sys, time, threading
import odoo
from odoo.tools import config
argv = sys.argv[1:]
config.parse_config(argv)
odoo.modules.module.initialize_sys_path()
from odoo.addons.base.models import ir_cron
from odoo.addons.impact_calendar_integration.models import impact_calendar_link, calendar_event, calendar_attendee
_log = logging.getLogger("bench_rpc_prof")
_state = threading.local()
def _thread():
    return threading.current_thread().name.replace(" ", "_")
def timed(cls, name, label):
    original = getattr(cls, name, None)
    if original is None:
        _log.warning("PROF cannot wrap %s.%s (not in this code)", cls.__name__, name)
        return
    @functools.wraps(original)
    def wrapper(*a, **k):
        stack = _state.__dict__.setdefault("stack", [])
        stack.append(label)
        t0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            stack.pop()
            _log.info("PROF %s %s %.4f", _thread(), label, (time.perf_counter() - t0) * 1000)
    setattr(cls, name, wrapper)
# every SQL statement run inside a wrapped part, labelled with the innermost part
_execute = odoo.sql_db.Cursor.execute
def execute(self, query, params=None, log_exceptions=True):
    stack = getattr(_state, "stack", None)
    if not stack:
        return _execute(self, query, params, log_exceptions)
    t0 = time.perf_counter()
    try:
        return _execute(self, query, params, log_exceptions)
    finally:
        text = re.sub(r"\s+", " ", str(getattr(query, "code", query))).strip()[:48].replace(" ", "_")
        _log.info("PROF %s sql[%s]:%s %.4f", _thread(), stack[-1], text, (time.perf_counter() - t0) * 1000)
odoo.sql_db.Cursor.execute = execute
L = impact_calendar_link.ImpactCalendarLink
timed(L, "_append_changes", "precommit_flush_dirty_total")
timed(L, "_mark", "defer_collect_ids")
timed(calendar_event.CalendarEvent, "_impact_scope_fields", "event_write_scope_fields")
timed(ir_cron.ir_cron, "_trigger", "cron_trigger_row")
timed(ir_cron.ir_cron, "_notifydb", "postcommit_notify_postgres_db")
# The cron thread as a whole (Odoo's scheduling included): its CPU per run of the scheduler, and
# a cProfile of it (thread CPU time) written to $BENCH_CRON_PROFILE every few runs.
import cProfile, os
_cron_prof = cProfile.Profile(time.thread_time)
_cron_runs = [0]
_process_jobs = ir_cron.ir_cron.__dict__["_process_jobs"].__func__
def process_jobs(cls, db_name):
    t0 = time.thread_time()
    _cron_prof.enable()
    try:
        return _process_jobs(cls, db_name)
    finally:
        _cron_prof.disable()
        _log.info("PROF %s cron_thread_cpu %.4f", _thread(), (time.thread_time() - t0) * 1000)
        _cron_runs[0] += 1
        if os.environ.get("BENCH_CRON_PROFILE"):
            _cron_prof.dump_stats(os.environ["BENCH_CRON_PROFILE"])
ir_cron.ir_cron._process_jobs = classmethod(process_jobs)
from odoo.cli.server import main
main(argv)
'''


def start_server(odoo, db, port, log_path, profile=False, workers=0, seed=None):
    """``seed``: the server's ``PYTHONHASHSEED`` (None: inherited)."""
    if os.path.exists(log_path):
        os.unlink(log_path)
    server_args = [*odoo.base_args(db), f"--db-filter=^{db}$", "--http-interface=127.0.0.1", f"--http-port={port}",
                   f"--workers={workers}", "--max-cron-threads=1", f"--logfile={log_path}", "--log-level=info",
                   "--gevent-port=0"]
    if profile:
        cmd = [odoo.python, "-c", PROFILE_BOOT, *server_args]
    else:
        cmd = [odoo.python, odoo.bin, "server", *server_args]
    with open(log_path + ".stderr", "w", encoding="utf-8") as errors:
        env = dict(os.environ, PYTHONHASHSEED=str(seed)) if seed is not None else None
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True, cwd=odoo.src,
                                env=env)
    SERVERS.append(proc)
    return proc


def wait_ready(port, log_path, deadline):
    import requests  # pylint: disable=import-outside-toplevel

    while time.time() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/web/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"no Odoo on port {port}; see {log_path} and {log_path}.stderr")


def stop_server(proc):
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group only
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc in SERVERS:
        SERVERS.remove(proc)


def stop_all():
    for proc in list(SERVERS):
        stop_server(proc)


# -- client ------------------------------------------------------------------------------------------------
class Client:
    """A booker's browser: one session, JSON-RPC calls timed around the HTTP round trip. ``case``
    (a key of CASES) says who logs in and how a booking is made."""

    def __init__(self, name, port, db, world, case="instructor"):
        import requests  # pylint: disable=import-outside-toplevel

        self.name, self.port, self.db, self.world, self.case = name, port, db, world, case
        self.url = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.seq = 0
        self.counter = 0
        self.context = {}
        login = CASES[case] or CASES["coordinator"]  # portal: the coordinator makes the pending bookings
        answer = self.rpc("/web/session/authenticate", {"db": db, "login": login, "password": login})
        self.context = dict(answer["user_context"], allowed_company_ids=[answer["user_companies"]["current_company"]])
        if case == "portal":
            self.student = requests.Session()  # the student's browser: no login, the booking's access token

    def rpc(self, path, params):
        self.seq += 1
        response = self.http.post(self.url + path, json={"jsonrpc": "2.0", "method": "call", "params": params, "id": self.seq},
                                  timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("error"):
            error = body["error"]
            raise RuntimeError(f"{self.name} {path}: {error.get('data', {}).get('message') or error.get('message')}\n"
                               f"{error.get('data', {}).get('debug', '')[-1500:]}")
        return body["result"]

    def call_kw(self, model, method, args, op):
        params = {"model": model, "method": method, "args": args, "kwargs": {"context": dict(self.context)}}
        started = time.perf_counter()
        # the case and the op in the query string: the server's request log tells them apart
        result = self.rpc(f"/web/dataset/call_kw/{model}/{method}?op={self.case}-{op.replace(' ', '_')}", params)
        return result, time.perf_counter() - started

    def booking(self, start, think=0.0):
        """create with 2 students, add a third, remove one: {op: seconds}. The portal case: one
        confirmation of a pending booking (made by the coordinator, not timed): {"confirm": seconds}."""
        if self.case == "portal":
            return self.portal_booking(start, think)
        students = self.world["students"]
        self.counter += 1
        n = self.counter
        first = [students[n % STUDENTS], students[(n + 1) % STUDENTS]]
        third = students[(n + 2) % STUDENTS]
        when = {"start": start.strftime("%Y-%m-%d %H:%M:%S")}
        if self.case == "booking":  # resource_booking adds the combination's users (the instructor)
            model = "resource.booking"
            vals = dict(when, name=f"Bench RPC class {n}", type_id=self.world["booking_type"], duration=1.0,
                        combination_id=self.world["combination"], combination_auto_assign=False,
                        partner_ids=[[6, 0, first]])
        else:
            model = "calendar.event"
            vals = dict(when, name=f"Bench RPC class {n}", user_id=self.world["uid"],
                        stop=(start + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
                        partner_ids=[[6, 0, [self.world["partner"], *first]]])
        times = {}
        ids, times["create"] = self.call_kw(model, "create", [[vals]], "create")
        record_id = ids[0] if isinstance(ids, list) else ids
        time.sleep(think)
        _, times["add student"] = self.call_kw(model, "write", [[record_id], {"partner_ids": [[4, third]]}], "add student")
        time.sleep(think)
        _, times["remove student"] = self.call_kw(model, "write", [[record_id], {"partner_ids": [[3, first[0]]]}],
                                                  "remove student")
        time.sleep(think)
        return times

    def portal_booking(self, start, think):
        """The coordinator makes a pending booking (no time yet) for two students and sends its
        portal link; a student opens it and confirms a slot: only that GET is timed, as
        resource_booking's portal page calls it (``/my/bookings/<id>/confirm``), redirect not
        followed."""
        students = self.world["students"]
        self.counter += 1
        n = self.counter
        vals = {"name": f"Bench RPC portal {n}", "type_id": self.world["booking_type"], "duration": 1.0,
                "combination_id": self.world["combination"], "combination_auto_assign": False,
                "partner_ids": [[6, 0, [students[n % STUDENTS], students[(n + 1) % STUDENTS]]]]}
        booking_id = self.rpc("/web/dataset/call_kw/resource.booking/create?op=portal-prepare", {
            "model": "resource.booking", "method": "create", "args": [[vals]], "kwargs": {"context": dict(self.context)}})[0]
        url = self.rpc("/web/dataset/call_kw/resource.booking/get_portal_url?op=portal-prepare", {
            "model": "resource.booking", "method": "get_portal_url", "args": [[booking_id]],
            "kwargs": {"context": dict(self.context)}})
        token = re.search(r"access_token=([^&]+)", url).group(1)
        time.sleep(think)
        started = time.perf_counter()
        response = self.student.get(f"{self.url}/my/bookings/{booking_id}/confirm",
                                    params={"access_token": token, "when": start.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                                            "op": "portal-confirm"},
                                    allow_redirects=False, timeout=60)
        elapsed = time.perf_counter() - started
        if response.status_code != 303 or "error=" in response.headers.get("Location", ""):
            raise RuntimeError(f"{self.name} portal confirm: {response.status_code} {response.headers.get('Location')}")
        time.sleep(think)
        return {"confirm": elapsed}


class Slots:
    """Distinct future class times (hourly, 8:00-19:00), the same sequence for both servers; each
    case books its own days (resource_booking refuses a busy instructor)."""

    def __init__(self):
        self.base = datetime.now().replace(hour=7, minute=0, second=0, microsecond=0) + timedelta(days=30)
        self.count = {}

    def next(self, name, case="instructor"):
        k = self.count.get((name, case), 0)
        self.count[(name, case)] = k + 1
        return self.base + timedelta(days=400 * list(CASES).index(case) + k // 12, hours=8 + k % 12)


def run_block(client, slots, size, think):
    out = []
    for _ in range(size):  # bounded: `size` bookings
        out.append(client.booking(slots.next(client.name, client.case), think))
    return out


def measure(clients, slots, args, run_index, settle=None, spans=None):
    """Alternating blocks, case after case; returns {case: {server: [booking times]}}.
    ``settle``: called before each block (live: until the ON server has pushed what came before,
    so that its pushes run beside neither server's timed requests). ``spans``: a list that
    receives (case, server, start, end) of each block, wall clock."""
    samples = {case: {name: [] for name in pair} for case, pair in clients.items()}
    order = ["OFF", "ON"]
    for block in range(args.blocks):
        sequence = order if (block + run_index) % 2 == 0 else order[::-1]
        for case, pair in clients.items():
            for name in sequence:
                if settle:
                    settle()
                began = time.time()
                samples[case][name] += run_block(pair[name], slots, args.block, args.think_ms / 1000)
                if spans is not None:
                    spans.append((case, name, began, time.time()))
    return samples


def pushes_beside(spans, push_times):
    """{case: pushes (batch requests) that reached the emulator during that case's timed ON blocks}."""
    out = {}
    for case, name, began, ended in spans:
        if name == "ON":
            out[case] = out.get(case, 0) + sum(began <= at <= ended for at in push_times)
    return out


def total_key(case):
    return "booking (1 request)" if case == "portal" else "booking (3 RPCs)"


def case_ops(case):
    return PORTAL_OPS if case == "portal" else OPS


def medians(bookings, case="instructor"):
    out = {op: statistics.median(b[op] for b in bookings) for op in case_ops(case)}
    out[total_key(case)] = statistics.median(sum(b.values()) for b in bookings)
    return out


# -- server log: Odoo's own per-request figures -----------------------------------------------------------------
# 19.0's request log adds the called method to the path (``...?op=create#calendar.event.create``).
RE_REQUEST = re.compile(r'"(?:POST /web/dataset/call_kw/[\w.]+/\w+|GET /my/bookings/\d+/confirm)\?(?:[^" ]*&)?op=([\w-]+)'
                        r'(?:&[^" ]*)?(?:#[\w.]+)? HTTP/[\d.]+" (?:200|303) - (\d+) ([\d.]+) ([\d.]+)')


class LogCursor:
    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0

    def read(self):
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            handle.seek(self.offset)
            text = handle.read()
        self.offset += len(text.encode("utf-8", errors="replace"))
        return text


def request_stats(text):
    """{"case/op": (median queries, median SQL ms, median other ms)} from werkzeug lines (string
    keys: the figures go to --json too)."""
    per_op = {}
    for op, queries, sql, other in RE_REQUEST.findall(text):
        case, _sep, op = op.rpartition("-")
        per_op.setdefault(f"{case}/{op.replace('_', ' ')}", []).append((int(queries), float(sql) * 1000, float(other) * 1000))
    return {op: tuple(statistics.median(v[i] for v in values) for i in range(3)) for op, values in per_op.items()}


# -- main ----------------------------------------------------------------------------------------------------------
class EmulatorHost:
    """The Google emulator, run in a process of its own (``load_emulator``). A real provider does
    not share the client's interpreter: in this process, the emulator's threads would take the
    GIL from the very round trips being timed, and only in the ON blocks, where pushes happen."""

    def __init__(self):
        sys.path.insert(0, os.path.join(REPO, "benchmarks"))
        import _path  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        from impact_calendar_integration.tests.emulators.google import GoogleEmulator  # pylint: disable=import-outside-toplevel

        self.emulator = GoogleEmulator()
        self.emulator.requests_per_minute = None
        self.emulator.start()
        self.arrivals = []  # wall-clock times of the pushes (batch requests) the emulator received
        handle = self.emulator.handle

        def timed_handle(req):
            if req.method == "POST" and req.path.startswith("/batch/"):
                self.arrivals.append(time.time())
            return handle(req)

        self.emulator.handle = timed_handle

    def config_kwargs(self):
        return self.emulator.config_kwargs()

    def issue_tokens(self, email):
        return self.emulator.issue_tokens(email)

    def event_count(self, email):
        return len(self.emulator.events(email))

    def push_times(self):
        return list(self.arrivals)

    def stop(self):
        self.emulator.stop()


class EmulatorProcess(BaseManager):
    pass


EmulatorProcess.register("EmulatorHost", EmulatorHost)


def load_emulator():
    """A proxy of an EmulatorHost living in a child process."""
    manager = EmulatorProcess()
    manager.start()  # pylint: disable=consider-using-with
    atexit.register(manager.shutdown)
    return manager.EmulatorHost()


def addon_fingerprint():
    """Short hash of the addon's Python and data files as they are now (the tree may be uncommitted)."""
    import hashlib  # pylint: disable=import-outside-toplevel

    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(os.path.join(REPO, ADDON)):  # top-down: the pruning below applies
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "tests", "i18n", "static"))
        for name in sorted(files):
            if name.endswith((".py", ".xml", ".csv", ".sql")):
                with open(os.path.join(folder, name), "rb") as handle:
                    digest.update(name.encode() + handle.read())
    return digest.hexdigest()[:12]


def fmt_ms(seconds):
    return f"{seconds * 1000:7.1f}"


def main():
    odoo_src, python = ensure_odoo_python(requested_series())
    args = parse_args()
    booking = bool(set(args.cases) & set(BOOKING_CASES))
    extra = ()
    if booking:
        sys.path.insert(0, os.path.join(REPO, "tools"))
        import odoo_env  # pylint: disable=import-outside-toplevel

        extra = (odoo_env.oca_addons(args.series),)  # OCA resource_booking, from PyPI wheels
    odoo = Odoo(odoo_src, python, extra)
    db_off, db_on = f"{args.db_prefix}off", f"{args.db_prefix}{'aa' if args.aa else 'on'}"
    port_off, port_on = args.ports
    logs = {"OFF": f"/tmp/{db_off}.log", "ON": f"/tmp/{db_on}.log"}

    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(stop_all)
    started = time.perf_counter()
    commit = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %cd", "--date=iso"], stdout=subprocess.PIPE,
                            text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", ADDON, BRIDGE], stdout=subprocess.PIPE,
                           text=True, check=False).stdout.strip()
    print(f"rpc_overhead: {datetime.now().isoformat(timespec='seconds')} | code {commit}"
          f"{' + uncommitted addon changes' if dirty else ''} (addon files sha256 {addon_fingerprint()}) | {platform.node()} | {os.cpu_count()} cores | "
          f"Python {platform.python_version()} | Odoo {odoo_src}", flush=True)
    emulator = load_emulator()
    results = {"runs": {}, "profile": {}}
    try:
        prepare_database(odoo, db_off, "calendar,resource_booking" if booking else "calendar", args)
        world_off = setup_content(odoo, db_off, on=False)
        if args.aa:  # the OFF database's twin, without the addon: same content, same ids
            drop_database(db_on)
            pg_one("postgres", f'CREATE DATABASE "{db_on}" TEMPLATE "{db_off}"')  # pylint: disable=sql-injection
            world_on = world_off
        else:
            prepare_database(odoo, db_on, f"calendar,{ADDON},resource_booking,{BRIDGE}" if booking else f"calendar,{ADDON}", args)
            world_on = setup_content(odoo, db_on, on=True, emulator=emulator)
        if not args.profile_only:
            results["runs"] = benchmark(odoo, args, emulator, (db_off, db_on), (port_off, port_on), logs,
                                        (world_off, world_on))
        if args.profile:
            world_on = setup_content(odoo, db_on, on=True, emulator=emulator)
            results["profile"] = profile(odoo, args, db_on, port_on, world_on)
    finally:
        stop_all()
        emulator.stop()
        with contextlib.suppress(Exception):
            set_push_cron(db_on, True)  # as installed, also after Ctrl-C in the paused mode
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1, default=str)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


def start_pair(odoo, dbs, ports, logs, workers=0, seed=None):
    procs = {"OFF": start_server(odoo, dbs[0], ports[0], logs["OFF"], workers=workers, seed=seed),
             "ON": start_server(odoo, dbs[1], ports[1], logs["ON"], workers=workers, seed=seed)}
    for name, port in (("OFF", ports[0]), ("ON", ports[1])):
        wait_ready(port, logs[name], time.time() + 120)
    return procs


def wait_drained(db, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        dirty, _synced, _total = queue_state(db)
        if not dirty:
            return True
        time.sleep(0.2)
    return False


# The push action's runs in Odoo's log: 18.0 ends one with "done in", 19.0 with its status.
RE_RUN_EDGE = re.compile(r"ir_cron: Job 'External Calendar[^']*' \(\d+\) (starting|done in|fully done|partially done|failed)")


def run_ended(log_path):
    """Whether every run of the push action that the server's log shows starting has ended."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        edges = RE_RUN_EDGE.findall(handle.read())
    return edges.count("starting") <= len(edges) - edges.count("starting")


def wait_settled(db, log_path, timeout=60):
    """The ON outbox is drained and the worker's run has ended (its bookkeeping after the last
    push included), so that neither server's next timed block runs beside it."""
    deadline = time.time() + timeout
    if not wait_drained(db, timeout):
        return False
    while time.time() < deadline:
        if run_ended(log_path):
            return True
        time.sleep(0.05)
    return False


def measure_run(args, emulator, dbs, ports, logs, worlds, slots, procs, mode, run):
    """One run on a freshly started pair: warm-up, then the alternating timed blocks."""
    clients = {case: {"OFF": Client("OFF", ports[0], dbs[0], worlds[0], case),
                      "ON": Client("ON", ports[1], dbs[1], worlds[1], case)} for case in args.cases}
    for pair in clients.values():  # warm-up: registry caches, first-request costs
        for name in ("OFF", "ON"):
            run_block(pair[name], slots, args.warmup, 0)
    if mode == "live" and not wait_settled(dbs[1], logs["ON"]):
        print("   WARNING: the ON queue did not drain after the warm-up", flush=True)
    cursors = {name: LogCursor(logs[name]) for name in logs}
    queue_before = queue_state(dbs[1])
    pushed_before = emulator.event_count(f"{LOGIN}@example.com")
    cpu_before = {name: cpu_seconds(procs[name].pid, db) for name, db in zip(("OFF", "ON"), dbs)}
    settle = (lambda: wait_settled(dbs[1], logs["ON"])) if mode == "live" else None
    spans = []
    samples = measure(clients, slots, args, run, settle, spans)
    beside = pushes_beside(spans, emulator.push_times())
    drained = wait_drained(dbs[1]) if mode == "live" else None
    cpu = {name: cpu_spent(cpu_before[name], cpu_seconds(procs[name].pid, db)) for name, db in zip(("OFF", "ON"), dbs)}
    queue_after = queue_state(dbs[1])
    pushed = emulator.event_count(f"{LOGIN}@example.com") - pushed_before
    med = {case: {name: medians(pair[name], case) for name in pair} for case, pair in samples.items()}
    stats = {name: request_stats(cursors[name].read()) for name in cursors}
    ratios = ", ".join(f"{case} {med[case]['ON'][total_key(case)] / med[case]['OFF'][total_key(case)]:.3f}"
                       for case in med)
    print(f"   {mode} run {run + 1}: ON/OFF booking medians: {ratios}; ON queue dirty/synced/links "
          f"{queue_before} -> {queue_after}; events created at the emulator {pushed}; CPU (server + its "
          f"PostgreSQL backends) OFF {cpu['OFF']:.2f} s, ON {cpu['ON']:.2f} s, ratio {cpu['ON'] / cpu['OFF']:.3f}; "
          f"pushes during timed ON blocks {sum(beside.values())} ({beside})",
          flush=True)
    return {"medians": med, "stats": stats, "n": args.blocks * args.block,
            "queue_before": queue_before, "queue_after": queue_after,
            "pushed_events": pushed, "drained": drained, "cpu": cpu,
            "pushes_beside_timed_on_blocks": beside}


def benchmark(odoo, args, emulator, dbs, ports, logs, worlds):
    per_mode = {}
    print(f"\n{args.runs} runs x {len(args.modes)} modes; cases {', '.join(args.cases)}; per run, case and server "
          f"{args.blocks} blocks of {args.block} bookings, alternating; think time {args.think_ms:g} ms; "
          f"--workers={args.workers}", flush=True)
    slots = Slots()  # one for all modes: a later mode's bookings must not meet an earlier one's
    for mode_index, mode in enumerate(args.modes):
        set_push_cron(dbs[1], mode == "live")
        per_mode[mode] = []
        for run in range(args.runs):
            # A fresh pair of servers for every run (the cron state is read at start too), both
            # with the run's own hash seed: what one server process happens to be (its string
            # hashes, its memory layout) is then part of one run's sample, not of every run's, and
            # the median over runs averages it out. The same seed for both keeps the twins alike.
            seed = 1 + run + 100 * mode_index
            procs = start_pair(odoo, dbs, ports, logs, args.workers, seed=seed)
            try:
                per_mode[mode].append(measure_run(args, emulator, dbs, ports, logs, worlds, slots, procs, mode, run))
            finally:
                for proc in procs.values():
                    stop_server(proc)
        report({mode: per_mode[mode]})  # now: a failure in a later mode does not lose this one
    set_push_cron(dbs[1], True)
    summary(per_mode)
    return per_mode


TARGET = 1.03


def report(per_mode):
    titles = {"paused": "a. push action paused (the hook's own cost)",
              "live": "b. pushes live (cron thread pushing to the emulator)"}
    for mode, runs in per_mode.items():
        print(f"\n== {titles[mode]}; {runs[0]['n']} bookings per case, server and run")
        for case in runs[0]["medians"]:
            keys = [*case_ops(case), total_key(case)]
            print(f"-- {case}")
            header = (f"{'op':<20} {'OFF ms (runs)':<24} {'ON ms (runs)':<24} {'ON/OFF per run':<22} {'median':>6} "
                      f"{'spread':>13}  target {TARGET:.2f}")
            print(header)
            print("-" * len(header))
            for key in keys:
                offs = [run["medians"][case]["OFF"][key] * 1000 for run in runs]
                ons = [run["medians"][case]["ON"][key] * 1000 for run in runs]
                ratios = [on / off for on, off in zip(ons, offs)]
                verdict = "OK" if statistics.median(ratios) <= TARGET else "OVER"
                print(f"{key:<20} {' '.join(f'{v:6.1f}' for v in offs):<24} {' '.join(f'{v:6.1f}' for v in ons):<24} "
                      f"{' '.join(f'{r:.3f}' for r in ratios):<22} {statistics.median(ratios):6.3f} "
                      f"{min(ratios):.3f}-{max(ratios):.3f}  {verdict}")
            print("server side (Odoo's request log, median per request over the runs' medians): queries | SQL ms | other ms")
            for op in case_ops(case):
                cells = []
                for name in ("OFF", "ON"):
                    values = [run["stats"][name].get(f"{case}/{op}") for run in runs if run["stats"][name].get(f"{case}/{op}")]
                    if values:
                        q, sql, other = (statistics.median(v[i] for v in values) for i in range(3))
                        cells.append(f"{name} {q:4.0f} q {sql:6.2f} {other:6.2f}")
                print(f"   {op:<16} " + " | ".join(cells))
        cpu = [run["cpu"]["ON"] / run["cpu"]["OFF"] for run in runs]
        print(f"CPU of server + PostgreSQL backends (all cases), ON/OFF per run: {' '.join(f'{r:.3f}' for r in cpu)}; "
              f"median {statistics.median(cpu):.3f}")


def summary(per_mode):
    print("\n== summary: ON/OFF of the median booking, per run (median, spread)")
    for mode, runs in per_mode.items():
        for case in runs[0]["medians"]:
            key = total_key(case)
            ratios = [run["medians"][case]["ON"][key] / run["medians"][case]["OFF"][key] for run in runs]
            print(f"   {mode:<7} {case:<12} {' '.join(f'{r:.3f}' for r in ratios):<24} median {statistics.median(ratios):.3f} "
                  f"({min(ratios):.3f}-{max(ratios):.3f})")


def profile(odoo, args, db, port, world):
    """ON server with timing wrappers, ON only: ms per booking of each hook part, both modes."""
    log_path = f"/tmp/{db}_profile.log"
    out = {}
    bookings = max(args.block * args.blocks, 20)
    print(f"\n== profile of the ON server (timing wrappers; {bookings} bookings per mode; ms per booking = "
          "sum over the booking's 3 RPCs)", flush=True)
    for mode in ("paused", "live"):
        set_push_cron(db, mode == "live")
        cron_profile = f"/tmp/{db}_{mode}_cron.prof"
        os.environ["BENCH_CRON_PROFILE"] = cron_profile
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cron_profile)
        proc = start_server(odoo, db, port, log_path, profile=True)  # threaded: prefork's gevent child needs odoo-bin
        try:
            wait_ready(port, log_path, time.time() + 120)
            client = Client("ON", port, db, world)
            slots = Slots()
            run_block(client, slots, args.warmup, 0)
            wait_drained(db)
            cursor = LogCursor(log_path)
            samples = run_block(client, slots, bookings, args.think_ms / 1000)
            if mode == "live":
                wait_drained(db)
            time.sleep(0.5)
            text = cursor.read()
        finally:
            stop_server(proc)
        parts = {}
        for thread, label, ms in re.findall(r"PROF (\S+) (\S+) ([\d.]+)\s*$", text, re.M):
            where = "cron" if "cron" in thread.lower() else "request"
            parts.setdefault((where, label), []).append(float(ms))
        stats = {key.split("/", 1)[1]: figures for key, figures in request_stats(text).items()}
        med = medians(samples)
        out[mode] = {"parts": {f"{w}:{k}": (len(v), sum(v)) for (w, k), v in parts.items()}, "stats": stats,
                     "medians": med}
        print(f"-- {mode}: booking median {med['booking (3 RPCs)'] * 1000:.1f} ms (ON, wrapped)")
        print(f"   {'part':<42} {'thread':<8} {'calls/booking':>13} {'ms/booking':>10} {'ms/call':>8}")
        for (where, label), values in sorted(parts.items(), key=lambda item: -sum(item[1])):
            print(f"   {label:<42} {where:<8} {len(values) / bookings:13.2f} {sum(values) / bookings:10.3f} "
                  f"{statistics.median(values):8.3f}")
        for op in OPS:
            if op in stats:
                q, s, o = stats[op]
                print(f"   server log {op:<15} {q:4.0f} queries, SQL {s:6.2f} ms, other {o:6.2f} ms")
        if mode == "live" and os.path.exists(cron_profile):
            # warm-up included: read the top of the cron thread's CPU, not its total per booking
            print(f"   cron thread, cProfile (thread CPU, warm-up included): {cron_profile}")
            pstats.Stats(cron_profile, stream=sys.stdout).sort_stats("cumulative").print_stats(35)
    set_push_cron(db, True)
    return out


if __name__ == "__main__":
    main()
