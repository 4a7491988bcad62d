#!/usr/bin/env python3
"""Concurrent writers against the real cron worker: every change reaches the calendar, fast,
with a clean log.

    python3 benchmarks/concurrency.py [--series 18.0] [--writers 3] [--classes 1] [--rounds 40]

It prepares Odoo (``tools/odoo_env.py``), creates a database with the addon, starts the Google
emulator on loopback and one threaded Odoo server (one cron thread: the real worker), connects
an instructor, and lets ``--writers`` JSON-RPC clients, in parallel, rename their own classes and
change their rosters ``--rounds`` times each. Then it waits for the emulator's calendar to show
every class's final version, and checks:

- every class's last name and roster count are in the calendar within 10 seconds of the last
  write, with no manual cron run;
- exactly one event per class (no duplicates);
- 0 ERROR / CRITICAL lines in the server log, except a failure of one of Odoo's own cron jobs
  (its mail queue marks the invitations it could not send while a writer's request changes the
  same mails; the addon writes no mail row), which is printed and counted apart;
- how many booking RPCs Odoo had to retry for a serialization failure (target 0).

Each writer owns its classes: two users renaming the same class at the same moment conflict in
Odoo itself, with or without this addon. Exit status 0 when every check holds.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))
import addon_path  # noqa: E402  pylint: disable=wrong-import-position
import odoo_env  # noqa: E402  pylint: disable=wrong-import-position
import odoo_stage  # noqa: E402  pylint: disable=wrong-import-position

addon_path.register()

# An ERROR of a cron job that is not the addon's ("Job 'Mail: Email Queue Manager' (3) ...").
ERROR_LINE = re.compile(r"^\S+ \S+ (?P<pid>\d+) (ERROR|CRITICAL) ")
FOREIGN_CRON = re.compile(r" odoo\.addons\.base\.models\.ir_cron: Job '(?!External Calendar)")
DEADLINE = 10.0  # seconds from the last write until the calendar must hold every final version
INSTRUCTOR = "conc.instructor"
EMAIL = "conc.instructor@example.com"

SETUP = """
import json
from odoo import Command
from odoo.addons.impact_calendar_integration import compat
from odoo.addons.impact_calendar_integration.sync.tokens import TokenSet
params = json.loads({params!r})
for key, value in params["settings"].items():
    env["ir.config_parameter"].set_param(key, value)
env["ir.config_parameter"].set_param("web.base.url", params["base_url"])
user = env["res.users"].create({{
    "name": "Conc Instructor", "login": {login!r}, "password": {login!r}, "tz": "UTC",
    compat.USER_GROUPS: [Command.link(env.ref("base.group_user").id),
                  Command.link(env.ref("impact_calendar_integration.group_calendar_integration").id)],
}})
students = env["res.partner"].create([{{"name": f"Student {{n}}", "email": f"s{{n}}@example.com"}} for n in range(8)])
env["impact.calendar.account"]._connect(
    user, "google", TokenSet(access_token=params["access"], refresh_token=params["refresh"]), {email!r},
    destination="main")  # the tokens carry calendar.events: the main calendar
events = env["calendar.event"].with_user(user).create([{{
    "name": f"Class {{n}} v0", "user_id": user.id,
    "start": params["start"], "stop": params["stop"],
    "partner_ids": [Command.set([user.partner_id.id, students[n % 8].id])],
}} for n in range(params["classes"])])
env.cr.commit()
print("SETUP", json.dumps({{"events": events.ids, "students": students.ids, "partner": user.partner_id.id}}))
"""


class Rpc:
    """A browser's JSON-RPC session."""

    def __init__(self, base, db, login):
        import requests  # pylint: disable=import-outside-toplevel

        self.base = base
        self.session = requests.Session()
        answer = self.session.post(
            f"{base}/web/session/authenticate",
            json={"jsonrpc": "2.0", "params": {"db": db, "login": login, "password": login}},
            timeout=30,
        ).json()
        if answer.get("error"):
            raise RuntimeError(answer["error"])

    def call(self, model, method, args, kwargs=None):
        answer = self.session.post(
            f"{self.base}/web/dataset/call_kw/{model}/{method}",
            json={"jsonrpc": "2.0", "params": {"model": model, "method": method, "args": args, "kwargs": kwargs or {}}},
            timeout=60,
        ).json()
        if answer.get("error"):
            raise RuntimeError(json.dumps(answer["error"])[:500])
        return answer["result"]


def odoo_command(odoo_dir, python, db_options, database, *extra, command=()):
    return [python, os.path.join(odoo_dir, "odoo-bin"), *command,
            f"--addons-path={odoo_env.addons_path(odoo_dir, REPO)}", *db_options, "-d", database, *extra]


def wait_http(url, process, seconds=120):
    import requests  # pylint: disable=import-outside-toplevel

    limit = time.monotonic() + seconds
    while time.monotonic() < limit:
        if process.poll() is not None:
            raise RuntimeError("the Odoo server stopped while starting")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


def calendar_state(emulator):
    """{odoo event id: (summary, roster count)} of the live events, and the duplicates."""
    shown, duplicates = {}, []
    for event in emulator.live_events(EMAIL).values():
        private = event.get("extendedProperties", {}).get("private", {})
        marker = next(iter(private.values()), "")
        ref = int(str(marker).rsplit(":", 1)[-1]) if marker else None
        count = re.search(r"(\d+) students? booked", event.get("description", ""))
        if ref in shown:
            duplicates.append(ref)
        shown[ref] = (event.get("summary"), int(count.group(1)) if count else None)
    return shown, duplicates


def measure_latency(base, database, event_id, emulator, samples, spacing=1.0):
    """Seconds from a write RPC's answer to its name in the calendar, for isolated writes."""
    rpc = Rpc(base, database, INSTRUCTOR)
    found = []
    for sample in range(samples):
        time.sleep(spacing)  # isolated: the worker has finished its previous run
        name = f"Latency sample {sample}"
        rpc.call("calendar.event", "write", [[event_id], {"name": name}])
        answered = time.monotonic()
        while time.monotonic() - answered < 10:
            if calendar_state(emulator)[0].get(event_id, (None,))[0] == name:
                found.append(time.monotonic() - answered)
                break
            time.sleep(0.005)
    return found


def run(args):
    from impact_calendar_integration.tests.emulators.google import GoogleEmulator  # pylint: disable=import-outside-toplevel

    odoo_dir, python, db_options = odoo_env.prepare(args.series, browser=False)
    database = f"impact_conc_{args.series.replace('.', '')}_{os.getpid()}"
    port = odoo_stage.free_port()  # not a fixed one: another run may hold it on a shared machine
    base = f"http://127.0.0.1:{port}"
    log_path = os.path.join(tempfile.gettempdir(), f"{database}.log")
    emulator = GoogleEmulator().start()
    emulator.latency = args.latency  # a real provider takes tens of milliseconds to answer
    server = None
    try:
        started = time.monotonic()
        subprocess.run(
            odoo_command(odoo_dir, python, db_options, database, "-i", "impact_calendar_integration",
                         "--stop-after-init", "--log-level=warn", *odoo_env.series_options(args.series, demo=False)),
            check=True, capture_output=True, text=True,
        )
        access, refresh = emulator.issue_tokens(EMAIL)
        start = (datetime.utcnow() + timedelta(days=2)).replace(microsecond=0, second=0, minute=0)
        params = {
            "settings": {f"impact_calendar.google_{key}": value for key, value in emulator.config_kwargs().items()},
            "base_url": base, "access": access, "refresh": refresh, "classes": args.writers * args.classes,
            "start": start.strftime("%Y-%m-%d %H:%M:%S"), "stop": (start + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        }
        setup = subprocess.run(
            odoo_command(odoo_dir, python, db_options, database, "--log-level=warn", "--no-http", command=["shell"]),
            input=SETUP.format(params=json.dumps(params), login=INSTRUCTOR, email=EMAIL),
            capture_output=True, text=True, check=False,
        )
        if "SETUP " not in setup.stdout:
            raise RuntimeError(f"setting up the database failed:\n{setup.stdout[-2000:]}{setup.stderr[-3000:]}")
        world = json.loads(setup.stdout.split("SETUP ", 1)[1].splitlines()[0])
        print(f"database ready in {time.monotonic() - started:.0f} s: {len(world['events'])} classes, "
              f"{args.writers} writers x {args.classes} classes x {args.rounds} rounds")
        with open(log_path, "w", encoding="utf-8") as log_file:
            server = subprocess.Popen(
                odoo_command(odoo_dir, python, db_options, database, f"--http-port={port}",
                             "--http-interface=127.0.0.1", "--workers=0", "--max-cron-threads=1",
                             f"--db-filter=^{database}$", "--log-level=info"),
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        wait_http(f"{base}/web/login", server)
        # The connect's backfill: the worker pushes every class without being asked.
        limit = time.monotonic() + 60
        while len(calendar_state(emulator)[0]) < len(world["events"]) and time.monotonic() < limit:
            time.sleep(0.2)

        final, errors = {}, []
        lock = threading.Lock()

        # Sessions are opened one by one: Python 3.11.7's ast.parse is not thread-safe (CPython
        # gh-106905), and a fresh server parses manifests on its first parallel requests.
        sessions = [Rpc(base, database, INSTRUCTOR) for _number in range(args.writers)]

        def writer(number):
            try:
                rpc = sessions[number]
                mine = world["events"][number * args.classes:(number + 1) * args.classes]
                for round_ in range(1, args.rounds + 1):
                    for event_id in mine:
                        name = f"Class {event_id} by writer {number} v{round_}"
                        students = [world["students"][(event_id + k) % 8] for k in range(1 + round_ % 3)]
                        rpc.call("calendar.event", "write", [[event_id], {
                            "name": name,
                            "partner_ids": [[6, 0, [world["partner"], *students]]],
                        }])
                        with lock:
                            final[event_id] = (name, len(students))
            except Exception as exc:  # pylint: disable=broad-except
                errors.append(f"writer {number}: {exc}")

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
        write_start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        last_write = time.monotonic()
        writes = args.writers * args.classes * args.rounds
        print(f"{writes} write RPCs in {last_write - write_start:.1f} s "
              f"({(last_write - write_start) / writes * 1000:.0f} ms each, {args.writers} in parallel)")
        converged = None
        while time.monotonic() - last_write < DEADLINE + 20:
            shown, duplicates = calendar_state(emulator)
            if all(shown.get(ref) == want for ref, want in final.items()):
                converged = time.monotonic() - last_write
                break
            time.sleep(0.1)
        shown, duplicates = calendar_state(emulator)
        stale = {ref: (shown.get(ref), want) for ref, want in final.items() if shown.get(ref) != want}
        latencies = measure_latency(base, database, world["events"][0], emulator, args.latency_samples)
    finally:
        if server:
            server.terminate()
            server.wait(30)
        emulator.stop()
        odoo_env.drop_database(database)
    with open(log_path, encoding="utf-8") as handle:
        log = handle.read().splitlines()
    bad, foreign = split_errors(log)
    retried = [line for line in log if "tries left, try again" in line]
    print(f"calendar converged {converged:.2f} s after the last write" if converged is not None
          else f"calendar NOT converged {DEADLINE + 20:.0f} s after the last write")
    print(f"events per class: {len(shown)} classes shown, {len(duplicates)} duplicates")
    print(f"server log: {len(bad)} ERROR/CRITICAL lines, {len(foreign)} more from Odoo's own cron jobs, "
          f"{len(retried)} RPCs retried by Odoo (serialization failures), log {log_path}")
    for line in (bad or foreign)[:10]:
        print("   ", line[:300])
    if latencies:
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        print(f"latency, write RPC answered -> event in the calendar, {len(latencies)} isolated writes: "
              f"p50 {latencies[len(latencies) // 2]:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
    problems = errors + [f"stale: {stale}"] * bool(stale)
    if converged is None or converged > DEADLINE:
        problems.append(f"not in the calendar within {DEADLINE:.0f} s")
    if duplicates:
        problems.append(f"duplicates: {duplicates}")
    if bad:
        problems.append(f"{len(bad)} ERROR lines")
    if retried:
        problems.append(f"{len(retried)} RPCs retried")
    for problem in problems:
        print("PROBLEM:", problem)
    print(f"concurrency-{args.series}: {'1 passed, 0 failed' if not problems else '0 passed, 1 failed'}")
    return 1 if problems else 0


def split_errors(log):
    """(ERROR lines that fail the stage, those of Odoo's own cron jobs). Odoo's mail queue can
    fail beside the writers (the addon writes no mail row): it marks the invitations it could
    not send while a writer's request changes the same mails. Its failure is a ``bad query``
    line, then the job's line, both from the cron's process; they are counted apart."""
    bad, foreign, waiting = [], [], {}
    for line in log:
        match = ERROR_LINE.match(line)
        if not match:
            continue
        if " odoo.sql_db: bad query" in line:
            waiting.setdefault(match["pid"], []).append(line)
        elif FOREIGN_CRON.search(line):
            foreign += waiting.pop(match["pid"], []) + [line]
        else:
            bad += waiting.pop(match["pid"], []) + [line]
    return bad + [line for lines in waiting.values() for line in lines], foreign


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--series", default="18.0")
    parser.add_argument("--writers", type=int, default=3)
    # One busy class per writer: every push's recording meets that writer's next booking. The
    # first version's outbox failed this with 116 ERROR lines and 116 retried booking RPCs.
    parser.add_argument("--classes", type=int, default=1, help="classes per writer")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the emulator takes per request")
    parser.add_argument("--latency-samples", type=int, default=20, help="isolated writes timed to the calendar")
    args = parser.parse_args()
    try:
        return run(args)
    except odoo_env.EnvError as exc:
        print(f"concurrency-{args.series}: not run: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
