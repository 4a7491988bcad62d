#!/usr/bin/env python3
"""Soak: random writers, provider faults and SIGKILLs of a real threaded Odoo; then every external
calendar must equal Odoo.

    python3 benchmarks/soak.py [--series 18.0] [--seed 1] [--minutes 2] [--kills 2] [--writers 3]
    python3 benchmarks/soak.py --measure-kill [--addons-repo PATH]   # what a SIGKILL mid-push costs

It prepares Odoo (``tools/odoo_env.py``), a database with the addon, the Google emulator (main
calendar), the Microsoft emulator (dedicated calendar, over TLS) and a real CalDAV server
(Radicale, dedicated calendar), each behind the emulators' fault layer, and one threaded Odoo
server (one cron thread: the real worker). Three instructors, one per provider, teach
``--classes`` classes.

For ``--minutes``, ``--writers`` JSON-RPC clients make random changes to their own classes (roster
adds and removes, emptied rosters, moves, renames, archive and unarchive); a fault thread injects
random provider faults (429 with and without Retry-After, 503, slow answers, answers lost after
the change was applied, dropped connections); the server is SIGKILLed ``--kills`` times at random
moments and restarted. Everything random comes from ``--seed``.

Then the faults are cleared (the last fault) and it waits for convergence: every calendar shows
one event per booked class of its instructor, with the class's title, times and roster count, and
none for classes that are not booked (Odoo's truth, read by RPC at the end). It prints writes,
faults, kills, the seconds from the last fault to convergence, double pushes (events beyond one
per class; must be 0), ERROR lines of ours (must be 0) and ``soak-SERIES: N passed, N failed``
(one check per point above). Exit status 0 when every check holds.

``--measure-kill``: instead of the storm, one change whose push is in flight (the provider is
slow) when the server is SIGKILLed and restarted at once; prints how long the change took to
reach the calendar after the kill. ``--addons-repo`` runs another checkout's addon (e.g. the code
before the change) with this script.
"""

import argparse
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import addon_path  # noqa: E402  pylint: disable=wrong-import-position
import odoo_env  # noqa: E402  pylint: disable=wrong-import-position
import odoo_stage  # noqa: E402  pylint: disable=wrong-import-position
from concurrency import Rpc, wait_http  # noqa: E402  pylint: disable=wrong-import-position

addon_path.register()

CONVERGENCE = 60.0  # seconds from the last fault until every calendar equals Odoo
WAIT_LIMIT = 180.0  # how long we look before calling it not converged
PROVIDERS = ("google", "microsoft", "caldav")
DAV_PASSWORD = "soak-app-password"
OURS = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) \S+ odoo\.addons\.impact_calendar_integration")
ANY_ERROR = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) ")
TITLE = re.compile(r"Soak (\d+) ")
BOOKED = re.compile(r"(\d+) students? booked")
# What the writers do, and how often: about half the classes stay booked.
CHANGE_WEIGHTS = (("add", 5), ("remove", 2), ("empty", 1), ("move", 2), ("rename", 3), ("archive", 1), ("unarchive", 2))
CHANGES = [kind for kind, _weight in CHANGE_WEIGHTS]

SETUP = """
import json
from odoo import Command
from odoo.addons.impact_calendar_integration import compat
from odoo.addons.impact_calendar_integration.sync.tokens import TokenSet
params = json.loads({params!r})
icp = env["ir.config_parameter"].sudo()
for key, value in params["settings"].items():
    icp.set_param(key, value)
group = env.ref("impact_calendar_integration.group_calendar_integration")
teachers = {{}}
for provider in params["providers"]:
    login = "soak." + provider
    teachers[provider] = env["res.users"].create({{
        "name": "Soak " + provider.title(), "login": login, "password": login, "tz": "UTC",
        "email": login + "@example.com",
        compat.USER_GROUPS: [Command.link(env.ref("base.group_user").id), Command.link(group.id)],
    }})
accounts = env["impact.calendar.account"].sudo()
accounts._connect(teachers["google"], "google", TokenSet(**params["google_tokens"]), "soak.google@example.com",
                  destination="main")
accounts._connect(teachers["microsoft"], "microsoft", TokenSet(**params["microsoft_tokens"]),
                  "soak.microsoft@example.com", destination="dedicated")
wizard = env["impact.calendar.caldav.wizard"].with_user(teachers["caldav"]).create({{
    "server_preset": "other", "server_url": params["dav_url"], "username": "soak.caldav",
    "password": params["dav_password"],
}})
wizard.action_connect()
students = env["res.partner"].create([{{"name": f"Soak student {{n}}", "email": f"soak{{n}}@example.com"}}
                                      for n in range(params["students"])])
classes = []
for n in range(params["classes"]):
    teacher = teachers[params["providers"][n % 3]]
    start = params["start"] + n * 7200
    event = env["calendar.event"].with_user(teacher).create({{
        "name": "tmp", "user_id": teacher.id,
        "start": compat_dt(start), "stop": compat_dt(start + 3600),
        "partner_ids": [Command.set([teacher.partner_id.id, students[n % len(students)].id])],
    }})
    event.name = f"Soak {{event.id}} v0"
    classes.append(event.id)
env.cr.commit()
print("SETUP", json.dumps({{
    "classes": classes, "students": students.ids,
    "teachers": {{p: [u.id, u.partner_id.id] for p, u in teachers.items()}},
}}))
"""

SETUP_PRELUDE = """
from datetime import datetime, timezone
def compat_dt(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
"""


# -- the world ---------------------------------------------------------------------------------------
class World:
    """The emulators, the Odoo server and its log; start/kill/restart."""

    def __init__(self, args):
        from impact_calendar_integration.tests.emulators import google, microsoft, radicale_server, tls  # pylint: disable=import-outside-toplevel

        self.args = args
        self.tls = tls
        self.trust = tls.trusted()
        self.trust.__enter__()  # the Odoo server inherits the CA bundle from our environment
        self.google = google.GoogleEmulator().start()
        self.microsoft = microsoft.MicrosoftEmulator().start()
        self.dav = radicale_server.RadicaleServer(users={"soak.caldav": DAV_PASSWORD}).start()
        self.emulators = {"google": self.google, "microsoft": self.microsoft, "caldav": self.dav}
        for emulator in self.emulators.values():
            emulator.latency = args.latency
        self.odoo_dir, self.python, self.db_options = odoo_env.prepare(args.series, browser=False)
        self.database = f"impact_soak_{args.series.replace('.', '')}_{os.getpid()}"
        self.port = odoo_stage.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(tempfile.gettempdir(), f"{self.database}.log")
        self.server = None
        self.classes, self.students, self.teachers = [], [], {}

    def command(self, *extra, command=()):
        repo = self.args.addons_repo or REPO
        return [self.python, os.path.join(self.odoo_dir, "odoo-bin"), *command,
                f"--addons-path={odoo_env.addons_path(self.odoo_dir, repo)}", *self.db_options,
                "-d", self.database, *extra]

    def create(self):
        subprocess.run(
            self.command("-i", "impact_calendar_integration", "--stop-after-init", "--log-level=warn",
                         *odoo_env.series_options(self.args.series, demo=False)),
            check=True, capture_output=True, text=True,
        )
        start = (datetime.now(timezone.utc) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
        google_access, google_refresh = self.google.issue_tokens("soak.google@example.com")
        params = {
            "settings": {
                **{f"impact_calendar.google_{k}": v for k, v in self.google.config_kwargs().items()},
                **{f"impact_calendar.microsoft_{k}": v for k, v in self.microsoft.config_kwargs().items()},
                # CalDAV on loopback: allowed once the SSRF guard refuses private hosts.
                "impact_calendar.caldav_allow_private_hosts": "True",
                "web.base.url": self.base,
            },
            "providers": list(PROVIDERS),
            "google_tokens": {"access_token": google_access, "refresh_token": google_refresh,
                              "expires_at": time.time() + 3000},
            "microsoft_tokens": self.microsoft_tokens(),
            "dav_url": self.dav.base_url + "/", "dav_password": DAV_PASSWORD,
            "classes": self.args.classes, "students": 8, "start": start.timestamp(),
        }
        setup = subprocess.run(
            self.command("--log-level=warn", "--no-http", command=["shell"]),
            input=SETUP_PRELUDE + SETUP.format(params=json.dumps(params)),
            capture_output=True, text=True, check=False,
        )
        if "SETUP " not in setup.stdout:
            raise RuntimeError(f"setting up the database failed:\n{setup.stdout[-2000:]}{setup.stderr[-3000:]}")
        world = json.loads(setup.stdout.split("SETUP ", 1)[1].splitlines()[0])
        self.classes, self.students, self.teachers = world["classes"], world["students"], world["teachers"]

    def microsoft_tokens(self):
        import requests  # pylint: disable=import-outside-toplevel
        from urllib.parse import parse_qsl, urlsplit  # pylint: disable=import-outside-toplevel

        from impact_calendar_integration.sync.providers.microsoft import oauth as oauth_microsoft  # pylint: disable=import-outside-toplevel
        from impact_calendar_integration.sync.providers.microsoft.config import MicrosoftConfig  # pylint: disable=import-outside-toplevel

        email = "soak.microsoft@example.com"
        self.microsoft.seed_user(email)
        self.microsoft.consent_as = email
        config = MicrosoftConfig(**self.microsoft.config_kwargs())
        flow = oauth_microsoft.start_flow(config, f"{self.base}/impact_calendar/oauth/microsoft/callback", "soak")
        response = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
        tokens, _email = oauth_microsoft.finish_flow(config, flow, dict(parse_qsl(urlsplit(response.headers["Location"]).query)))
        return dataclasses.asdict(tokens)

    def start_server(self):
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            self.server = subprocess.Popen(
                self.command(f"--http-port={self.port}", "--http-interface=127.0.0.1", "--workers=0",
                             "--max-cron-threads=1", f"--db-filter=^{self.database}$", "--log-level=info"),
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        wait_http(f"{self.base}/web/login", self.server)

    def kill_server(self):
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(30)

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
        for emulator in self.emulators.values():
            emulator.stop()
        odoo_env.drop_database(self.database)
        self.trust.__exit__(None, None, None)

    # -- what the calendars show: {provider: [(event ref, title, start, stop, count)]} --------------
    def shown(self):
        shown = {}
        shown["google"] = [self._google(event) for event in self.google.live_events("soak.google@example.com").values()]
        shown["microsoft"] = [
            self._graph(event)
            for calendar_id in self.microsoft.calendars("soak.microsoft@example.com")
            for event in self.microsoft.calendar_events("soak.microsoft@example.com", calendar_id)
        ] + [self._graph(event) for event in self.microsoft.events("soak.microsoft@example.com")]
        shown["caldav"] = [
            self._ics(text)
            for href in self.dav.calendars("soak.caldav")
            for text in self.dav.events("soak.caldav", href.split("/", 1)[1] if href.startswith("/") else href).values()
        ]
        return shown

    @staticmethod
    def _ref(title):
        match = TITLE.search((title or "") + " ")
        return int(match.group(1)) if match else None

    @staticmethod
    def _count(text):
        match = BOOKED.search(text or "")
        return int(match.group(1)) if match else None

    def _google(self, event):
        return (self._ref(event.get("summary")), event.get("summary"), _utc(event["start"].get("dateTime")),
                _utc(event["end"].get("dateTime")), self._count(event.get("description")))

    def _graph(self, event):
        from impact_calendar_integration.tests.emulators.microsoft import to_utc  # pylint: disable=import-outside-toplevel

        return (self._ref(event.get("subject")), event.get("subject"), _naive(to_utc(event["start"])),
                _naive(to_utc(event["end"])), self._count((event.get("body") or {}).get("content")))

    def _ics(self, text):
        lines = re.sub(r"\r?\n[ \t]", "", text).splitlines()
        fields = {}
        for line in lines:
            name, _sep, value = line.partition(":")
            fields.setdefault(name.split(";", 1)[0], value)
        summary = fields.get("SUMMARY", "").replace("\\,", ",").replace("\\;", ";")
        return (self._ref(summary), summary, _ics_time(fields.get("DTSTART")), _ics_time(fields.get("DTEND")),
                self._count(fields.get("DESCRIPTION", "").replace("\\n", "\n")))


def _utc(value):
    if not value:
        return None
    return _naive(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _naive(moment):
    if moment is None:
        return None
    if moment.tzinfo:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _ics_time(value):
    if not value:
        return None
    return datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")


# -- Odoo's truth ---------------------------------------------------------------------------------------
def truth(world):
    """{provider: {event id: (title, start, stop, count)}} of the booked classes, read by RPC."""
    rpc = Rpc(world.base, world.database, "admin")
    rows = rpc.call("calendar.event", "search_read", [[["id", "in", world.classes]]],
                    {"fields": ["name", "start", "stop", "active", "partner_ids", "user_id"],
                     "context": {"active_test": False}})
    by_user = {uid: provider for provider, (uid, _partner) in world.teachers.items()}
    partners = {provider: partner for provider, (_uid, partner) in world.teachers.items()}
    want = {provider: {} for provider in PROVIDERS}
    for row in rows:
        provider = by_user[row["user_id"][0]]
        count = len([p for p in row["partner_ids"] if p != partners[provider]])
        if row["active"] and count:
            start = datetime.strptime(row["start"], "%Y-%m-%d %H:%M:%S")
            stop = datetime.strptime(row["stop"], "%Y-%m-%d %H:%M:%S")
            want[provider][row["id"]] = (row["name"], start, stop, count)
    return want


def compare(shown, want):
    """(differences, double pushes): what differs from Odoo, and events beyond one per class."""
    differences, doubles = [], 0
    for provider in PROVIDERS:
        seen = {}
        for ref, title, start, stop, count in shown[provider]:
            if ref in seen:
                doubles += 1
                differences.append(f"{provider}: class {ref} twice")
                continue
            seen[ref] = (title, start, stop, count)
        for ref, have in seen.items():
            if ref not in want[provider]:
                differences.append(f"{provider}: class {ref} shown but not booked ({have[0]})")
        for ref, (name, start, stop, count) in want[provider].items():
            have = seen.get(ref)
            if have is None:
                differences.append(f"{provider}: class {ref} ({name}) missing")
            elif name not in (have[0] or "") or (have[1], have[2], have[3]) != (start, stop, count):
                differences.append(f"{provider}: class {ref} shows {have}, Odoo has {(name, start, stop, count)}")
    return differences, doubles


# -- the storm -------------------------------------------------------------------------------------------
class Storm:
    def __init__(self, world, args):
        self.world, self.args = world, args
        self.rng = random.Random(args.seed)
        self.stop = threading.Event()
        self.server_up = threading.Event()
        self.server_up.set()
        self.lock = threading.Lock()
        self.writes = 0
        self.write_errors = []
        self.login_errors = []
        self.faults = []
        self.kills = 0

    # writers: each owns every writers-th class (two users editing one class conflict in Odoo itself)
    def writer(self, number, seed):
        rng = random.Random(seed)
        mine = self.world.classes[number::self.args.writers]
        rpc = None
        version = 0
        while not self.stop.is_set():
            self.server_up.wait()
            if rpc is None:
                rpc = self.login()
                if rpc is None:
                    self.stop.wait(0.5)
                    continue
            try:
                event_id = rng.choice(mine)
                version += 1
                rpc.call("calendar.event", "write", [[event_id], self.change(rng, event_id, version)],
                         {"context": {"active_test": False}})
                with self.lock:
                    self.writes += 1
            except Exception as exc:  # pylint: disable=broad-except
                rpc = None  # the server was killed: a new session once it is back
                if self.server_up.is_set() and not self.stop.is_set() and "Connection" not in str(exc):
                    with self.lock:
                        self.write_errors.append(str(exc)[:300])
            self.stop.wait(rng.uniform(0.05, 0.6))

    def login(self):
        """A writer's session, or None. A refused login is not a refused write: it is retried
        (and counted). Seen: CPython 3.11's ``ast.parse`` is not thread-safe (gh-106905), and a
        fresh server's first requests parse manifests while its cron thread compiles too."""
        try:
            return Rpc(self.world.base, self.world.database, "admin")
        except Exception as exc:  # pylint: disable=broad-except
            if self.server_up.is_set() and not self.stop.is_set() and "Connection" not in str(exc):
                with self.lock:
                    self.login_errors.append(str(exc)[:300])
            return None

    def change(self, rng, event_id, version):
        teacher_partner = next(p for _p, (uid, p) in self.world.teachers.items()
                               if event_id in self.world.classes[PROVIDERS.index(_p)::3])
        kind = rng.choices(CHANGES, weights=[weight for _kind, weight in CHANGE_WEIGHTS])[0]
        student = rng.choice(self.world.students)
        if kind == "add":
            return {"partner_ids": [[4, student]]}
        if kind == "remove":
            return {"partner_ids": [[3, student]]}
        if kind == "empty":
            return {"partner_ids": [[6, 0, [teacher_partner]]]}
        if kind == "move":
            index = self.world.classes.index(event_id)
            base = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0, tzinfo=None)
            start = base + timedelta(days=3 + rng.randrange(5), hours=2 * index + rng.choice((0, 1)))
            return {"start": start.strftime("%Y-%m-%d %H:%M:%S"),
                    "stop": (start + timedelta(minutes=rng.choice((45, 60, 90)))).strftime("%Y-%m-%d %H:%M:%S")}
        if kind == "rename":
            return {"name": f"Soak {event_id} v{version} {rng.choice(('Pottery', 'Yoga', 'Café & crème', 'Judo'))}"}
        return {"active": kind == "unarchive"}

    def fault(self, rng):
        provider = rng.choice(PROVIDERS)
        emulator = self.world.emulators[provider]
        path = {"google": r"^/batch/calendar/v3$", "microsoft": r"/\$batch$|/me/calendars", "caldav": r"\.ics$"}[provider]
        kind = rng.choice(("429-retry-after", "429", "503", "slow", "lost", "lost-drop", "drop"))
        times = rng.randint(1, 4)
        status_body = {"error": {"code": 503, "message": "Service Unavailable"}}
        if kind == "429-retry-after":
            emulator.inject(path, status=429, headers={"Retry-After": str(rng.randint(1, 8))}, times=times,
                            body={"error": {"code": 429, "message": "Too many requests"}})
        elif kind == "429":
            emulator.inject(path, status=429, times=times, body={"error": {"code": 429, "message": "Rate limit"}})
        elif kind == "503":
            emulator.inject(path, status=503, times=times, body=status_body)
        elif kind == "slow":
            emulator.inject(path, delay=rng.uniform(1, 6), times=times)
        elif kind == "lost":
            emulator.inject(path, status=503, after_handling=True, times=times, body=status_body)
        elif kind == "lost-drop":
            emulator.inject(path, drop=True, after_handling=True, times=times)
        else:
            emulator.inject(path, drop=True, times=times)
        with self.lock:
            self.faults.append((provider, kind, times))

    def faulter(self, seed):
        rng = random.Random(seed)
        while not self.stop.wait(rng.uniform(1, 6)):
            self.fault(rng)

    def run(self):
        seeds = [self.rng.randrange(1 << 30) for _n in range(self.args.writers + 1)]
        duration = self.args.minutes * 60
        kill_at = sorted(self.rng.uniform(0.1, 0.9) * duration for _n in range(self.args.kills))
        threads = [threading.Thread(target=self.writer, args=(n, seeds[n]), daemon=True) for n in range(self.args.writers)]
        threads.append(threading.Thread(target=self.faulter, args=(seeds[-1],), daemon=True))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for moment in kill_at:
            self.stop.wait(max(0.0, started + moment - time.monotonic()))
            self.server_up.clear()
            self.world.kill_server()
            self.kills += 1
            self.stop.wait(self.rng.uniform(0.5, 3))
            self.world.start_server()
            # One session first: a fresh server fills its lazy caches (the addons' statics) on its
            # first requests, and parallel first requests can make Odoo itself fail one of them.
            Rpc(self.world.base, self.world.database, "admin")
            self.server_up.set()
        self.stop.wait(max(0.0, started + duration - time.monotonic()))
        self.stop.set()
        for thread in threads:
            thread.join(120)
        for emulator in self.world.emulators.values():
            emulator.clear_faults()
        return time.monotonic()  # the last fault


def converge(world, last_fault):
    want = truth(world)
    differences, doubles = compare(world.shown(), want)
    while differences and time.monotonic() - last_fault < WAIT_LIMIT:
        time.sleep(0.5)
        want = truth(world)
        differences, doubles = compare(world.shown(), want)
    seconds = time.monotonic() - last_fault if not differences else None
    if differences:
        print(link_rows(world), flush=True)
        if os.environ.get("SOAK_DEBUG"):
            for eid, event in world.google.live_events("soak.google@example.com").items():
                print("google event", eid, event.get("summary"))
            print(link_rows(world, "true"))
    return seconds, differences, doubles, want


def link_rows(world, where="l.dirty OR l.claim_token IS NOT NULL"):
    """The sync links, for a run that did not converge."""
    query = ("SELECT l.event_ref, a.provider, l.state, l.dirty, l.attempts, l.wait_reason, l.next_try, l.claimed_until,"
             " l.claim_pid, left(l.last_error, 60), l.external_id, l.generation, now() AT TIME ZONE 'UTC'"
             " FROM impact_calendar_link l JOIN impact_calendar_account a ON a.id = l.account_id"
             f" WHERE {where} ORDER BY 1")
    done = subprocess.run(["psql", "-h", odoo_env.PG["host"], "-U", "postgres", "-d", world.database, "-c", query],
                          capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def log_errors(world):
    with open(world.log_path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    return [line for line in lines if ANY_ERROR.match(line)], [line for line in lines if OURS.match(line)]


def soak(args):
    world = World(args)
    try:
        started = time.monotonic()
        world.create()
        world.start_server()
        print(f"soak-{args.series}: seed {args.seed}, {len(world.classes)} classes of {len(PROVIDERS)} instructors "
              f"({', '.join(PROVIDERS)}), {args.writers} writers, {args.minutes:g} min, {args.kills} kills; "
              f"ready in {time.monotonic() - started:.0f} s", flush=True)
        storm = Storm(world, args)
        last_fault = storm.run()
        seconds, differences, doubles, want = converge(world, last_fault)
    finally:
        world.stop()
    errors, ours = log_errors(world)
    kinds = {}
    for _provider, kind, _times in storm.faults:
        kinds[kind] = kinds.get(kind, 0) + 1
    booked = sum(len(classes) for classes in want.values())
    print(f"writes: {storm.writes} ({len(storm.write_errors)} refused; {len(storm.login_errors)} logins retried)")
    print(f"faults: {len(storm.faults)} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")
    print(f"kills: {storm.kills} (SIGKILL, then restart)")
    print(f"booked at the end: {booked} of {len(world.classes)} classes")
    print(f"converged {seconds:.1f} s after the last fault" if seconds is not None
          else f"NOT converged {WAIT_LIMIT:.0f} s after the last fault")
    print(f"double pushes: {doubles}")
    print(f"ERROR lines: {len(ours)} of ours, {len(errors)} in all (log {world.log_path})")
    for line in (ours or errors)[:10]:
        print("   ", line[:300])
    for difference in differences[:20]:
        print("DIFFERS:", difference)
    for error in storm.write_errors[:5]:
        print("WRITE REFUSED:", error)
    checks = {
        "converged within 60 s of the last fault": seconds is not None and seconds <= CONVERGENCE,
        "no double push": doubles == 0,
        "no ERROR line of ours": not ours,
        "every write accepted": not storm.write_errors,
        "kills done": storm.kills == args.kills,
    }
    for name, ok in checks.items():
        if not ok:
            print("FAILED:", name)
    passed = sum(checks.values())
    print(f"soak-{args.series}: {passed} passed, {len(checks) - passed} failed")
    return 0 if passed == len(checks) else 1


def measure_kill(args):
    """One change in flight at the provider when the server is SIGKILLed: seconds until it is in
    the calendar after the kill (the server is restarted at once)."""
    world = World(args)
    try:
        world.create()
        world.start_server()
        google_class = world.classes[0]
        deadline = time.monotonic() + 60
        while not any(ref == google_class for ref, *_rest in world.shown()["google"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        rpc = Rpc(world.base, world.database, "admin")
        # The push is in flight for 30 s, then its connection drops unanswered: nothing applied.
        world.google.inject(r"^/batch/calendar/v3$", delay=30, drop=True, times=1)
        before = len(world.google.requests(r"^/batch/calendar/v3$"))
        name = f"Soak {google_class} renamed before the kill"
        rpc.call("calendar.event", "write", [[google_class], {"name": name}])
        while len(world.google.requests(r"^/batch/calendar/v3$")) == before:
            time.sleep(0.01)
        time.sleep(0.5)
        world.kill_server()
        killed = time.monotonic()
        world.start_server()
        back = time.monotonic() - killed
        shown_at = None
        while time.monotonic() - killed < args.kill_limit:
            if any(ref == google_class and title == name for ref, title, *_rest in world.shown()["google"]):
                shown_at = time.monotonic() - killed
                break
            time.sleep(0.2)
    finally:
        world.stop()
    print(f"SIGKILL mid-push: server back {back:.1f} s after the kill; the change reached the calendar "
          + (f"{shown_at:.1f} s after the kill" if shown_at is not None else f"NOT within {args.kill_limit:.0f} s"))
    return 0 if shown_at is not None else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--series", default="18.0")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.03, help="seconds every provider takes per request")
    parser.add_argument("--measure-kill", action="store_true")
    parser.add_argument("--kill-limit", type=float, default=480.0, help="--measure-kill: seconds to wait at most")
    parser.add_argument("--addons-repo", help="the repository whose addon runs (default: this one)")
    args = parser.parse_args()
    try:
        return measure_kill(args) if args.measure_kill else soak(args)
    except odoo_env.EnvError as exc:
        print(f"soak-{args.series}: not run: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
