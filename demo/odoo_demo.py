#!/usr/bin/env python3
"""Odoo demo: an Odoo 18 with the addon and its demo data, wired to the loopback emulators.

With no Odoo at hand, ``python3 demo/try_it.py`` prepares one as CI does and runs this script.
With an Odoo of your own, run it with that Odoo's Python (it needs the addon's libraries and
``trustme``, as the addon's own tests do); no odoo.conf is needed when the options go after --:

    python demo/odoo_demo.py --odoo /path/to/odoo [-c odoo.conf] [--db impact_demo] [-- ODOO-BIN OPTIONS]

It

1. starts the Google emulator on http://127.0.0.1:8765 and the Microsoft emulator on
   https://127.0.0.1:8766 (a throwaway CA; the calendar pages are at ``/calendar``);
2. creates the database with ``impact_calendar_integration`` and its demo data if it does not
   exist yet (``--reset`` drops it first), or loads the addon's data into it again:
   instructors ``instructor.ann`` (Google) and ``instructor.ben`` (Outlook), availabilities in
   the coming days, students booked;
3. points the addon's settings at the emulators and freezes ``web.base.url``; accounts of an
   earlier run must connect again, and their classes are sent again (the emulators start empty);
4. starts Odoo (threaded, one cron thread) on http://127.0.0.1:8069 with the emulators' CA in
   ``REQUESTS_CA_BUNDLE``, and prints every request the emulators receive until Ctrl-C.

Then log in (admin/admin, instructor.ann/instructor.ann, instructor.ben/instructor.ben), open
the avatar menu > Preferences > External > Connect; the emulator asks which demo account
signs in, consents, and sends you back to Odoo; a moment later the cron has pushed the booked
classes to the emulator's calendar page.

``--self-test`` does that click-through with ``requests`` (log in, Connect, pick the account,
follow the redirects back, wait for the cron, remove a student, see the event go), prints
what it saw, stops everything, and exits 0 on success.

Everything listens on 127.0.0.1 only. Options after ``--`` go to every odoo-bin call
(e.g. ``-- --db_host 127.0.0.1 --db_user odoo --db_password odoo``).
"""

import argparse
import atexit
import html
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

# When started by demo/try_it.py, time counts from that command's start.
STARTED = float(os.environ.get("IMPACT_DEMO_STARTED") or time.time())
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON = "impact_calendar_integration"


# The addon's test emulators, without the addon's ``__init__`` (which needs Odoo).
sys.path.insert(0, os.path.join(REPO, "tools"))
import addon_path  # noqa: E402  pylint: disable=wrong-import-position

addon_path.register()

# pylint: disable=wrong-import-position
import requests  # noqa: E402

from impact_calendar_integration.tests.emulators import common, tls  # noqa: E402
from impact_calendar_integration.tests.emulators.google import GoogleEmulator  # noqa: E402
from impact_calendar_integration.tests.emulators.microsoft import MicrosoftEmulator  # noqa: E402

#: the emulator accounts a person can sign in as: (email, who it stands for)
ACCOUNTS = (
    ("ann@impact-demo.test", "Ann Carter (instructor.ann)"),
    ("ben@impact-demo.test", "Ben Walsh (instructor.ben)"),
    ("admin@impact-demo.test", "Mitchell Admin (admin)"),
)
USERS = (("admin", "admin"), ("instructor.ann", "instructor.ann"), ("instructor.ben", "instructor.ben"))


# -- emulators with a fixed port and an account chooser ---------------------------------------------
def _chooser_page(title, url, query):
    """'Choose an account': one link per demo account, each the same authorize URL + login_hint."""
    links = "".join(
        f'<li><a href="{html.escape(url + "?" + urlencode(dict(query, login_hint=email)))}">'
        f"{html.escape(email)}</a> <small>{html.escape(who)}</small></li>"
        for email, who in ACCOUNTS
    )
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"/><title>Choose an account</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:3em;max-width:36em}li{margin:.6em 0}"
        "a{font-size:1.1em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>Choose an account. The emulator consents at once "
        "(calendar access granted) and sends you back to Odoo.</p>"
        f"<ul>{links}</ul></body></html>"
    )
    return common.Response(200, raw=page, content_type="text/html; charset=utf-8")


def _replace_route(routes, old, new):
    return tuple((method, pattern, new if func is old else func) for method, pattern, func in routes)


class DemoGoogleEmulator(GoogleEmulator):
    def choose_account(self, req):
        if req.query.get("login_hint"):
            return GoogleEmulator.authorize(self, req)
        return _chooser_page("Sign in with Google (emulator)", self.base_url + req.path, req.query)

    routes = _replace_route(GoogleEmulator.routes, GoogleEmulator.authorize, choose_account)


class DemoMicrosoftEmulator(MicrosoftEmulator):
    def choose_account(self, req, tenant):
        if req.query.get("login_hint"):
            return MicrosoftEmulator.authorize(self, req, tenant)
        return _chooser_page("Sign in to Microsoft (emulator)", self.base_url + req.path, req.query)

    routes = _replace_route(MicrosoftEmulator.routes, MicrosoftEmulator.authorize, choose_account)


@contextmanager
def _fixed_port(port):
    """LoopbackServer.start binds port 0; bind ``port`` instead (stable URLs for Odoo's settings)."""
    base = common.ThreadingHTTPServer

    class FixedPortServer(base):
        def __init__(self, address, handler):
            super().__init__((address[0], port), handler)

    with mock.patch.object(common, "ThreadingHTTPServer", FixedPortServer):
        yield


def start_emulators(google_port, microsoft_port):
    google = DemoGoogleEmulator()
    microsoft = DemoMicrosoftEmulator()
    for server, port in ((google, google_port), (microsoft, microsoft_port)):
        try:
            with _fixed_port(port):
                server.start()
        except OSError as exc:
            sys.exit(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another port with "
                     "--google-port / --microsoft-port")
    for email, who in ACCOUNTS:
        google.add_user(email)
        microsoft.seed_user(email, name=who.split(" (")[0])
    return google, microsoft


def addon_settings(google, microsoft, odoo_url):
    params = {f"impact_calendar.google_{key}": value for key, value in google.config_kwargs().items()}
    params.update({
        "impact_calendar.microsoft_client_id": microsoft.client_id,
        "impact_calendar.microsoft_client_secret": microsoft.client_secret,
        "impact_calendar.microsoft_tenant": "common",
        "impact_calendar.microsoft_authority_host": microsoft.authority_host,
        "impact_calendar.microsoft_graph_endpoint": microsoft.graph_endpoint,
        "web.base.url": odoo_url,
        "web.base.url.freeze": "True",  # the redirect URIs must stay on this host and port
    })
    return params


# -- odoo-bin ------------------------------------------------------------------------------------
class Odoo:
    def __init__(self, args):
        self.args = args
        self.odoo_bin = os.path.join(args.odoo, "odoo-bin")
        if not os.path.isfile(self.odoo_bin):
            sys.exit(f"no odoo-bin in {args.odoo}: --odoo takes the folder of an Odoo 18 source tree")
        addons = [os.path.join(args.odoo, "addons"), os.path.join(args.odoo, "odoo", "addons"), REPO]
        self.addons_path = ",".join(path for path in addons if os.path.isdir(path))
        self.common = ["-c", args.config] if args.config else []
        self.extra = list(args.odoo_args)
        self.env = dict(os.environ)
        # Odoo's MSAL/requests calls to the Microsoft emulator must trust its throwaway CA;
        # the bundle also holds the system roots.
        self.env["REQUESTS_CA_BUNDLE"] = self.env["CURL_CA_BUNDLE"] = tls.ca_bundle()

    def command(self, *args, subcommand=None):
        head = [self.args.python, self.odoo_bin] + ([subcommand] if subcommand else [])
        return head + self.common + ["--addons-path", self.addons_path] + list(args) + self.extra

    def run(self, what, *args, subcommand=None, stdin=None):
        print(f"-- {what} ...", flush=True)
        started = time.monotonic()
        result = subprocess.run(self.command(*args, subcommand=subcommand), input=stdin, env=self.env,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0 or "Traceback" in result.stderr:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-8000:])
            sys.exit(f"{what} failed (exit {result.returncode})")
        print(f"   done in {time.monotonic() - started:.0f} s", flush=True)
        return result.stdout

    def drop(self):
        # `odoo-bin db` takes only the connection options
        keep = [a for a in self.extra if a.startswith(("--db_", "--pg_", "-r", "-w", "--data-dir"))]
        command = [self.args.python, self.odoo_bin, "db"] + self.common + keep + ["drop", self.args.db]
        print(f"-- dropping database {self.args.db} (--reset) ...", flush=True)
        subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)

    def install(self):
        # A new database gets demo data (Odoo 18's default; 19 needs --with-demo, given by
        # try_it.py). On an existing one, -i loads the addon's data again: the demo classes move
        # back to the coming days with their shipped rosters.
        self.run(f"database {self.args.db}: install {ADDON} with demo data (new database: a minute or so)",
                 "-d", self.args.db, "-i", ADDON, "--stop-after-init", "--http-port", str(self.args.http_port),
                 "--log-level", "warn")

    def configure(self, params):
        script = SETUP_SCRIPT.format(params=repr(params), addon=ADDON)
        out = self.run("settings: point the addon at the emulators", "-d", self.args.db, "--log-level", "warn",
                       "--no-http", subcommand="shell", stdin=script)
        for line in out.splitlines():
            if line.startswith("DEMO:"):
                print("   " + line[5:].strip())

    def serve(self, log_path):
        command = self.command("-d", self.args.db, "--db-filter", f"^{re.escape(self.args.db)}$",
                               "--http-interface", "127.0.0.1", "--http-port", str(self.args.http_port),
                               "--workers", "0", "--max-cron-threads", "1", "--logfile", log_path)
        # its own process group: Ctrl-C reaches us, and we stop Odoo ourselves; whatever it
        # prints besides its log (warnings, a thread stopped mid-job) goes to the log too
        with open(log_path, "ab") as output:
            return subprocess.Popen(command, env=self.env, start_new_session=True,
                                    stdout=output, stderr=subprocess.STDOUT)


SETUP_SCRIPT = """
from odoo.addons.{addon}.sync import outbox
ICP = env["ir.config_parameter"].sudo()
for key, value in {params}.items():
    ICP.set_param(key, value)
if not env["ir.module.module"].search([("name", "=", "{addon}"), ("state", "=", "installed")]):
    raise SystemExit("{addon} is not installed")
# The emulators keep their state in memory: tokens and events from an earlier run are gone.
# Its accounts connect again, and a resync makes the addon send every class again.
accounts = env["impact.calendar.account"].sudo().search([])
connected = accounts.filtered(lambda account: account.state == "connected")
connected.write({{"state": "needs_reconnect",
                 "last_error": "The demo emulators were restarted: connect again."}})
env["impact.calendar.link"].sudo()._mark_users_dirty(accounts.user_id.ids, outbox.CHANGE_RESYNC)
if accounts:
    print("DEMO: %d account(s) from an earlier run: connect again (their classes are sent again)"
          % len(accounts))
users = env["res.users"].search([("login", "in", ["instructor.ann", "instructor.ben"])])
print("DEMO: demo instructors present: %s" % (", ".join(users.mapped("login")) or "none (no demo data)"))
env.cr.commit()
"""


def write_ca_file():
    """The emulators' CA certificate alone, for a browser that should trust it (removed at exit)."""
    path = os.path.join(os.path.dirname(tls.ca_bundle()), "impact-demo-emulator-ca.pem")
    with open(path, "wb") as handle:
        handle.write(tls.shared_ca().ca_pem)
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


def wait_for_http(url, process, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            up = requests.get(url, timeout=5).status_code == 200
        except requests.RequestException:
            up = False  # not listening yet
        if up:
            return True
        time.sleep(1)
    return False


# -- the live feed of what the emulators receive ----------------------------------------------------
def say(text):
    """Print a line in one write: the feed thread prints while the self-test does."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


class Feed(threading.Thread):
    def __init__(self, servers):
        super().__init__(daemon=True)
        self.servers = servers
        self.stopped = threading.Event()
        self.seen = {name: 0 for name in servers}

    def run(self):
        while not self.stopped.wait(0.5):
            self.flush()

    def flush(self):
        for name, server in self.servers.items():
            with server.lock:
                new = server.log[self.seen[name]:]
                self.seen[name] = len(server.log)
            for entry in new:
                if entry.path in ("/", "/calendar", "/calendar/", "/favicon.ico"):
                    continue  # a browser looking at the calendar page
                say(f"   [{name:<9}] {entry.method:<6} {entry.path}  -> {entry.status}")


# -- --self-test: the click-through, scripted -------------------------------------------------------
class SelfTest:
    def __init__(self, odoo_url, google, microsoft):
        self.odoo_url = odoo_url
        self.google = google
        self.microsoft = microsoft
        self.problems = []

    def login(self, login, password):
        session = requests.Session()
        page = session.get(f"{self.odoo_url}/web/login", timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        answer = session.post(f"{self.odoo_url}/web/login", timeout=30, allow_redirects=False,
                              data={"login": login, "password": password, "csrf_token": token, "redirect": "/odoo"})
        if answer.status_code != 303 or "/web/login" in answer.headers.get("Location", ""):
            raise AssertionError(f"login as {login} failed (HTTP {answer.status_code})")
        return session

    def connect(self, session, provider, email):
        """Preferences > External > Connect: what the browser does."""
        start = session.get(f"{self.odoo_url}/impact_calendar/oauth/{provider}/start",
                            allow_redirects=False, timeout=30)
        assert start.status_code in (302, 303), f"start: HTTP {start.status_code} {start.text[:300]}"
        authorize = start.headers["Location"]
        verify = tls.ca_bundle()  # the person's browser shows a certificate warning instead
        chooser = requests.get(authorize, timeout=30, verify=verify)
        assert "Choose an account" in chooser.text, chooser.text[:300]
        hrefs = [html.unescape(href) for href in re.findall(r'href="([^"]+)"', chooser.text)]
        link = next(href for href in hrefs if parse_qs(urlsplit(href).query).get("login_hint") == [email])
        consent = requests.get(link, allow_redirects=False, timeout=30, verify=verify)
        callback = consent.headers["Location"]
        assert callback.startswith(f"{self.odoo_url}/impact_calendar/oauth/{provider}/callback?"), callback
        back = session.get(callback, allow_redirects=False, timeout=60)
        location = back.headers.get("Location", "")
        assert back.status_code in (302, 303) and "/web/login" not in location, (back.status_code, location)
        say(f"   {provider}: start -> {urlsplit(authorize).path} -> chooser -> {email} consents -> "
              f"callback -> {back.status_code} {urlsplit(location).path}")
        self.landing_page(session, urlsplit(location).path)

    def landing_page(self, session, path):
        """What the web client does with /odoo/<path>: load the action, run it if it is a server action."""
        key = path.removeprefix("/odoo/").split("/")[0]
        try:
            action = self.rpc(session, "/web/action/load", {"action_id": key})
            if action.get("type") == "ir.actions.server":
                action = self.rpc(session, "/web/action/run", {"action_id": action["id"]})
            assert isinstance(action, dict) and action.get("res_model") == "res.users", action
        except AssertionError as problem:
            # the connection itself worked; the person just sees an error page: go on, fail at the end
            self.problems.append(f"landing page {path}: {problem}")
            say(f"   landing page {path}: FAILED: {problem}")
            return
        say(f"   landing page {path}: opens {action.get('name')!r} ({action['res_model']} form)")

    def rpc(self, session, url, params):
        answer = session.post(self.odoo_url + url, timeout=60,
                              json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}).json()
        if "error" in answer:
            message = answer["error"].get("data", {}).get("message") or str(answer["error"])
            raise AssertionError(f"{url}: {message.strip().splitlines()[0]}")
        return answer["result"]

    def titles(self, provider, email):
        """Titles in the main calendar and in every calendar the addon made (the dedicated one)."""
        if provider == "google":
            events = list(self.google.live_events(email).values())
            for calendar_id in self.google.calendars(email):
                events += self.google.calendar_events(email, calendar_id).values()
            return sorted(event["summary"] for event in events)
        events = self.microsoft.events(email)
        for calendar_id in self.microsoft.calendars(email):
            events += self.microsoft.calendar_events(email, calendar_id)
        return sorted(event["subject"] for event in events)

    def wait_for(self, provider, email, expected, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            titles = self.titles(provider, email)
            if titles == sorted(expected):
                return titles
            time.sleep(1)
        raise AssertionError(f"{email} holds {self.titles(provider, email)}, expected {sorted(expected)}")

    def call(self, session, model, method, args, kwargs=None):
        return self.rpc(session, f"/web/dataset/call_kw/{model}/{method}",
                        {"model": model, "method": method, "args": args, "kwargs": kwargs or {}})

    def run(self):
        say("-- self-test: the click-through, scripted with requests")
        ann = self.login("instructor.ann", "instructor.ann")
        self.connect(ann, "google", "ann@impact-demo.test")
        titles = self.wait_for("google", "ann@impact-demo.test", ["Pottery for beginners", "Wheel throwing"])
        say(f"   cron pushed to Ann's Google calendar: {titles}")
        page = requests.get(f"{self.google.base_url}/calendar", timeout=10).text
        assert "Pottery for beginners" in page and "2 students booked" in page, page[:500]
        say(f"   {self.google.base_url}/calendar lists them (\"2 students booked\" for Pottery)")

        ben = self.login("instructor.ben", "instructor.ben")
        self.connect(ben, "microsoft", "ben@impact-demo.test")
        titles = self.wait_for("microsoft", "ben@impact-demo.test", ["Morning yoga"])
        say(f"   cron pushed to Ben's Outlook calendar: {titles}")
        page = requests.get(f"{self.microsoft.base_url}/calendar", timeout=10, verify=tls.ca_bundle()).text
        assert "Morning yoga" in page and "3 students booked" in page, page[:500]
        say(f"   {self.microsoft.base_url}/calendar lists it (\"3 students booked\")")

        # Ann removes the only student of "Wheel throwing": the event must go.
        [wheel] = self.call(ann, "calendar.event", "search_read", [[("name", "=", "Wheel throwing")]],
                            {"fields": ["partner_ids"]})
        [chloe] = self.call(ann, "res.partner", "search", [[("name", "=", "Chloé Dubois")]])
        self.call(ann, "calendar.event", "write", [[wheel["id"]], {"partner_ids": [(3, chloe)]}])
        titles = self.wait_for("google", "ann@impact-demo.test", ["Pottery for beginners"])
        say(f"   Ann removed Chloé from \"Wheel throwing\": Google calendar now holds {titles}")
        if self.problems:
            raise AssertionError(f"{len(self.problems)} problem(s): " + "; ".join(self.problems))
        say("-- self-test passed")


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Odoo 18 + the addon + demo data, wired to the loopback Google/Microsoft emulators.",
        epilog="Options after -- go to every odoo-bin call, e.g. -- --db_user odoo --db_password odoo")
    parser.add_argument("--odoo", required=True, help="folder of an Odoo 18 source tree (holding odoo-bin)")
    parser.add_argument("-c", "--config", help="odoo.conf (database connection, data_dir ...)")
    parser.add_argument("--python", default=sys.executable,
                        help="Python of the Odoo environment (default: the one running this script)")
    parser.add_argument("--db", default="impact_demo", help="database name (default: impact_demo)")
    parser.add_argument("--reset", action="store_true", help="drop the database first")
    parser.add_argument("--http-port", type=int, default=8069, help="Odoo's port (default 8069)")
    parser.add_argument("--google-port", type=int, default=8765, help="Google emulator port (default 8765)")
    parser.add_argument("--microsoft-port", type=int, default=8766, help="Microsoft emulator port (default 8766)")
    parser.add_argument("--self-test", action="store_true",
                        help="script the click-through, print what happened, stop, exit 0 if all went well")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[: argv.index("--")]
    args = parser.parse_args(argv)
    args.odoo = os.path.abspath(args.odoo)
    args.odoo_args = extra
    return args


def _stop(_signum, _frame):
    raise KeyboardInterrupt  # as Ctrl-C: main() stops Odoo, which runs in a session of its own


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    odoo = Odoo(args)
    odoo_url = f"http://127.0.0.1:{args.http_port}"
    google, microsoft = start_emulators(args.google_port, args.microsoft_port)
    print(f"-- emulators: Google {google.base_url}  Microsoft {microsoft.base_url}")
    server = None
    feed = Feed({"google": google, "microsoft": microsoft})
    try:
        if args.reset:
            odoo.drop()
        odoo.install()
        odoo.configure(addon_settings(google, microsoft, odoo_url))
        log_path = os.path.join(os.path.dirname(tls.ca_bundle()), f"odoo-demo-{args.db}.log")
        server = odoo.serve(log_path)
        print(f"-- starting Odoo on {odoo_url} (log: {log_path}) ...", flush=True)
        if not wait_for_http(f"{odoo_url}/web/login", server):
            sys.exit(f"Odoo did not come up; see {log_path}")
        print(f"-- Odoo answers on {odoo_url}/web/login, {time.time() - STARTED:.0f} s after the start",
              flush=True)
        with google.lock, microsoft.lock:
            google.log.clear()
            microsoft.log.clear()
        if args.self_test:
            feed.start()
            SelfTest(odoo_url, google, microsoft).run()
            feed.flush()
            return 0
        print(BANNER.format(odoo=odoo_url, google=f"{google.base_url}/calendar",
                            microsoft=f"{microsoft.base_url}/calendar", ca=write_ca_file()), flush=True)
        feed.start()
        while server.poll() is None:
            time.sleep(0.5)
        print(f"Odoo stopped (exit {server.returncode}); see {log_path}")
        return 1
    except KeyboardInterrupt:
        print("\n-- stopping")
        return 0
    except AssertionError as failure:
        print(f"-- self-test FAILED: {failure}")
        return 1
    finally:
        feed.stopped.set()
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the group of the odoo-bin we started
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        google.stop()
        microsoft.stop()


BANNER = """
================================================================================
Odoo is up:   {odoo}
  log in as   instructor.ann / instructor.ann  (connect Google)
              instructor.ben / instructor.ben  (connect Outlook)
              admin / admin
  then        avatar menu (top right) > Preferences > External > Connect ...
              pick the matching account on the emulator's "Choose an account" page;
              you are sent back to Preferences, and the cron pushes the booked classes.
Calendars:    {google:<34} (Google emulator)
              {microsoft:<34} (Microsoft emulator; self-signed certificate:
              accept the browser's warning once, or trust {ca})
Try:          remove a student from a class, or all of them; change a class's time.
Stop:         Ctrl-C (the emulators forget everything; connect again next time).
Requests the emulators receive:
================================================================================"""


if __name__ == "__main__":
    sys.exit(main())
