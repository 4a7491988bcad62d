#!/usr/bin/env python3
"""First run, no Odoo needed: the whole lifecycle of a booked class on the loopback emulators.

    python demo/first_run.py            # with a Python that has requirements-test.txt installed
    bash demo/first_run.sh              # makes/reuses .venv-ci (as .ci/run does), then runs this

It starts the bundled Google and Microsoft emulators (127.0.0.1 only), connects one instructor
to each through the real OAuth flows (``oauth_google``: consent URL with PKCE, code exchange;
``oauth_microsoft``: MSAL auth-code flow over TLS), then plays a few bookings the way the
addon's cron does: ``ClassSnapshot`` -> the provider's body builder -> ``engine.plan`` -> the real
provider clients (``push``, as the synchronizer calls them). After each step it prints what
happened in "Odoo", the HTTP requests the emulators received, and what each external calendar
now holds.

``--step`` pauses after every step and prints the emulators' calendar pages
(``/calendar``) so you can watch them in a browser. Exit status 0 when everything happened as
the addon promises.
"""

import argparse
import os
import re
import sys
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The pure sync core and the test emulators, without the addon's ``__init__`` (which needs Odoo).
sys.path.insert(0, os.path.join(REPO, "tools"))
import addon_path  # noqa: E402  pylint: disable=wrong-import-position

addon_path.register()

# pylint: disable=wrong-import-position
import requests  # noqa: E402

from impact_calendar_integration.tests.emulators import calendar_page, tls  # noqa: E402
from impact_calendar_integration.tests.emulators.google import GoogleEmulator  # noqa: E402
from impact_calendar_integration.tests.emulators.microsoft import MicrosoftEmulator  # noqa: E402
from impact_calendar_integration.sync import engine, payload, providers  # noqa: E402
from impact_calendar_integration.sync.providers.google.config import GoogleConfig  # noqa: E402
from impact_calendar_integration.sync.providers.microsoft.config import MicrosoftConfig  # noqa: E402

ODOO_URL = "http://127.0.0.1:8069"  # only appears in redirect URIs and record links: never called
NAMESPACE = "first-run-demo"  # stands for the database uuid in deterministic ids
ANN = "ann@impact-demo.test"  # Google Calendar
BEN = "ben@impact-demo.test"  # Outlook / Microsoft 365
LABEL = 10  # width of the left column


class DemoFailure(Exception):
    """Something did not happen as the addon promises."""


# -- the "Odoo" side: a booked class and its sync link ----------------------------------------------
class BookedClass:
    """One availability of an instructor, its roster, and the sync link of the addon."""

    def __init__(self, event_ref, name, start, minutes, location, instructor):
        self.event_ref = event_ref
        self.name = name
        self.start = start
        self.stop = start + timedelta(minutes=minutes)
        self.location = location
        self.instructor = instructor
        self.students = []
        # impact.calendar.link
        self.external_id = None
        self.pushed_hash = None
        self.generation = 0

    def snapshot(self):
        """What the external event must show, or None when nobody is booked (as the addon)."""
        if not self.students:
            return None
        return payload.ClassSnapshot(
            event_ref=self.event_ref,
            name=self.name,
            start=self.start,
            stop=self.stop,
            location=self.location,
            roster_count=len(self.students),
            record_url=f"{ODOO_URL}/odoo/calendar.event/{self.event_ref}",
            marker=f"{NAMESPACE}:{self.event_ref}",
        )


class Instructor:
    def __init__(self, name, provider, email, user_ref):
        self.name = name
        self.provider = provider
        self.email = email
        self.user_ref = user_ref
        self.client = None


# -- the world ----------------------------------------------------------------------------------
class Demo:
    def __init__(self, google, microsoft, out=print, pause=None):
        self.google = google
        self.microsoft = microsoft
        self.out = out
        self.pause = pause
        self.step_no = 0
        self.google_config = GoogleConfig(**google.config_kwargs())
        self.microsoft_config = MicrosoftConfig(**microsoft.config_kwargs())
        self.ann = Instructor("Ann", "google", ANN, user_ref=7)
        self.ben = Instructor("Ben", "microsoft", BEN, user_ref=8)
        self.total_requests = 0

    # -- OAuth, as the addon's /impact_calendar/oauth/<provider>/start and /callback routes --------
    def connect_google(self, instructor):
        self.google.login_as(instructor.email)  # the account that consents on the emulator
        return self._connect(instructor, self.google_config)

    def connect_microsoft(self, instructor):
        self.microsoft.seed_user(instructor.email, name=instructor.name)
        self.microsoft.consent_as = instructor.email
        return self._connect(instructor, self.microsoft_config)

    def _connect(self, instructor, config):
        provider = providers.get(instructor.provider)
        redirect_uri = f"{ODOO_URL}/impact_calendar/oauth/{provider.name}/callback"
        state = f"signed-state-{provider.name}"
        url, pending = provider.start(config, redirect_uri, state)
        answer = self._follow_consent(url, redirect_uri)
        if answer.get("state") != state:
            raise DemoFailure(f"{provider.label} returned another state")
        tokens, email = provider.finish(config, pending, answer, redirect_uri)
        instructor.client = provider.client(config, tokens)
        return email

    @staticmethod
    def _follow_consent(url, redirect_uri):
        """The browser's part: open the consent page; the emulator consents and redirects back."""
        response = requests.get(url, allow_redirects=False, timeout=10)
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not location.startswith(redirect_uri):
            raise DemoFailure(f"consent did not redirect back to Odoo (HTTP {response.status_code})")
        answer = dict(parse_qsl(urlsplit(location).query))
        if "code" not in answer:
            raise DemoFailure(f"consent refused: {answer.get('error')}")
        return answer

    # -- the cron's part: plan and push one class ------------------------------------------------
    def sync(self, booked):
        """What the synchronizer does for one dirty link. Returns the engine's decision."""
        instructor = booked.instructor
        provider = providers.get(instructor.provider)
        snapshot = booked.snapshot()
        body = provider.build_body(snapshot) if snapshot else None
        link = engine.LinkState(external_id=booked.external_id, pushed_hash=booked.pushed_hash, generation=booked.generation)
        step = engine.plan(
            booked.event_ref, link, body,
            client_id_for=lambda generation: provider.client_id(NAMESPACE, booked.event_ref, instructor.user_ref, generation),
        )
        if isinstance(step, engine.Transition):
            return "nothing"
        outcome = instructor.client.push([step])[step.key]
        transition = engine.settle(step, outcome, link, create_sends_current_body=provider.create_sends_current_body)
        if transition.kind != engine.SYNCED:
            raise DemoFailure(f"{step.action} of {booked.name!r} failed: {outcome.kind.value} {outcome.message}")
        booked.external_id, booked.pushed_hash = transition.external_id, transition.pushed_hash
        return step.action

    # -- printing ---------------------------------------------------------------------------------
    def step(self, title, odoo_lines, action):
        """Run ``action`` (returns extra Odoo lines), then print the step."""
        self._clear_logs()
        more = action() or []
        self.step_no += 1
        self.out("")
        self.out(f"{self.step_no}. {title}")
        for index, line in enumerate(list(odoo_lines) + list(more)):
            self._line("Odoo" if index == 0 else "", line)
        http_lines = self._http_lines()
        self.total_requests += sum(1 for line in http_lines if not line.startswith(" "))
        for index, line in enumerate(http_lines or ["(no request)"]):
            self._line("HTTP" if index == 0 else "", line)
        self._calendar_line("Google", self.google, ANN)
        self._calendar_line("Outlook", self.microsoft, BEN)
        if self.pause:
            self.pause()

    def _line(self, label, text):
        self.out(f"   {label:<{LABEL}}{text}")

    def _clear_logs(self):
        for server in (self.google, self.microsoft):
            with server.lock:
                server.log.clear()
        with self.google.lock:
            self.google.part_log.clear()

    def _http_lines(self):
        lines = []
        # The emulators run in this process and have answered before the client returned.
        for name, server in (("google", self.google), ("microsoft", self.microsoft)):
            with server.lock:
                log = list(server.log)
                parts = list(server.part_log) if name == "google" else []
            for entry in log:
                lines.append(f"{name:<9} {entry.method:<6} {_short(entry.path)}  -> {entry.status}")
                if name == "google" and entry.path == "/batch/calendar/v3":
                    for part in parts:  # the requests inside the batch
                        lines.append(f"{'':<9}   + {part.method:<6} {_short(part.path)}  -> {part.status}")
        return lines

    def _calendar_line(self, label, server, email):
        rows = next((events for owner, _kind, events in calendar_page.calendars(server) if owner == email), [])
        if not rows:
            self._line(label, f"{email}: (no events)")
        for index, row in enumerate(rows):
            roster = row["description"].splitlines()[0] if row["description"] else ""
            when = f"{row['start'][:16]}-{row['end'][11:16]} UTC"  # same-day classes
            text = f"\"{row['title']}\" {when}, {roster}"
            self._line(label if index == 0 else "", f"{email}: {text}")


def _short(path):
    """Paths without the (long, partly random) event ids, so the timeline reads the same each run."""
    return re.sub(r"(/events/)[^/]+$", r"\1{id}", path)


# -- the story ------------------------------------------------------------------------------------
def play(demo):
    ann, ben = demo.ann, demo.ben
    monday = datetime(2030, 1, 7, 10, 0)  # naive UTC, as Odoo stores it
    pottery = BookedClass(101, "Pottery for beginners", monday, 90, "Studio 2", ann)
    yoga = BookedClass(102, "Morning yoga", monday + timedelta(days=1, hours=-3), 60, "Room A", ben)

    demo.step("Ann connects her Google Calendar (Preferences > External > Connect Google)",
              ["OAuth consent (PKCE) -> callback -> code exchanged for tokens"],
              lambda: [f"account {demo.connect_google(ann)}: connected (Odoo keeps the refresh token encrypted)"])
    demo.step("Ben connects his Outlook calendar (Preferences > External > Connect Microsoft)",
              ["MSAL auth-code flow (PKCE, query mode) -> callback -> tokens"],
              lambda: [f"account {demo.connect_microsoft(ben)}: connected (Odoo keeps MSAL's token cache encrypted)"])

    def book(booked, student, verb="books"):
        def action():
            before = len(booked.students)
            if verb == "books":
                booked.students.append(student)
            else:
                booked.students.remove(student)
            return [f"roster {before} -> {len(booked.students)}; cron: engine says {demo.sync(booked)}"]

        who = f"{booked.instructor.name}'s class"
        title = f"{student} {verb} \"{booked.name}\" ({who})"
        return title, action

    def run(title_action, odoo_line):
        title, action = title_action
        demo.step(title, [odoo_line], action)

    run(book(pottery, "Alice"), "first student booked into an availability")
    run(book(pottery, "Bruno"), "roster changes, stays non-empty")

    def untouched():
        return [f"cron: body hash unchanged, engine says {demo.sync(pottery)}"]

    demo.step(f"Ann edits the internal notes of \"{pottery.name}\"", ["nothing the external event shows changed"],
              untouched)
    run(book(yoga, "Chloe"), "first student booked into Ben's availability")
    run(book(pottery, "Alice", "cancels"), "a student leaves, one remains")
    run(book(pottery, "Bruno", "cancels"), "last student removed")
    run(book(yoga, "Chloe", "is removed from"), "last student removed")

    # What the addon promises, checked on the emulators' own state.
    if demo.google.live_events(ANN) or demo.microsoft.events(BEN):
        raise DemoFailure("an external calendar still holds an event")
    invited = demo.microsoft.invitations_sent + [
        event for event in demo.google.events(ANN).values() if event.get("attendees")
    ]
    if invited:
        raise DemoFailure(f"students were invited: {invited}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--step", action="store_true",
                        help="pause after each step; open the printed /calendar pages to watch")
    args = parser.parse_args(argv)

    print("IMPACT calendar integration: first run on the loopback emulators (127.0.0.1 only)")
    print("Real clients: oauth_google + googleapiclient (Google), MSAL + requests (Microsoft Graph).")
    with tls.trusted(), GoogleEmulator() as google, MicrosoftEmulator() as microsoft:
        pause = None
        if args.step:
            print(f"Watch: {google.base_url}/calendar  and  {microsoft.base_url}/calendar "
                  "(self-signed certificate)")
            pause = lambda: input("   ... press Enter for the next step ")  # noqa: E731
        demo = Demo(google, microsoft, pause=pause)
        try:
            play(demo)
        except DemoFailure as failure:
            print(f"\nFAILED: {failure}")
            return 1
    print("")
    print(f"Done: {demo.total_requests} HTTP requests, all to 127.0.0.1. Both calendars are empty again;")
    print("no student was ever an attendee, so neither Google nor Outlook emailed anyone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
