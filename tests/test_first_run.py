"""The README's first command (demo/first_run.py) works, and the emulators' calendar page."""

import os
import re
import subprocess
import sys

import requests

from impact_calendar_integration.tests.emulators import tls
from impact_calendar_integration.tests.emulators.google import GoogleEmulator
from impact_calendar_integration.tests.emulators.microsoft import MicrosoftEmulator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "demo", "first_run.py")


def run_first_run():
    result = subprocess.run(
        [sys.executable, SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_first_run_shows_the_lifecycle():
    out = run_first_run()
    steps = re.split(r"\n(?=\d+\. )", out)
    by_title = {step.splitlines()[0]: step for step in steps[1:]}
    titles = list(by_title)
    assert titles[0].startswith("1. Ann connects her Google Calendar")
    assert titles[1].startswith("2. Ben connects his Outlook calendar")

    def step(prefix):
        return next(text for title, text in by_title.items() if prefix in title)

    connect_google = step("Ann connects")
    assert "GET    /o/oauth2/v2/auth  -> 302" in connect_google
    assert "POST   /token  -> 200" in connect_google
    assert "account ann@impact-demo.test: connected" in connect_google
    connect_ms = step("Ben connects")
    assert "GET    /common/oauth2/v2.0/authorize  -> 302" in connect_ms
    assert "POST   /common/oauth2/v2.0/token  -> 200" in connect_ms

    booked = step('Alice books "Pottery for beginners"')
    assert "engine says create" in booked
    assert "+ POST   /calendar/v3/calendars/primary/events  -> 200" in booked
    assert '"Pottery for beginners" 2030-01-07 10:00-11:30 UTC, 1 student booked' in booked
    second = step('Bruno books "Pottery for beginners"')
    assert "engine says update" in second and "PATCH  /calendar/v3/calendars/primary/events/{id}  -> 200" in second
    assert "2 students booked" in second
    noop = step("internal notes")
    assert "engine says nothing" in noop and "(no request)" in noop
    yoga = step('Chloe books "Morning yoga"')
    assert "POST   /v1.0/me/calendar/events  -> 201" in yoga
    assert 'ben@impact-demo.test: "Morning yoga" 2030-01-08 07:00-08:00 UTC, 1 student booked' in yoga
    gone = step('Bruno cancels "Pottery for beginners"')
    assert "engine says delete" in gone and "DELETE /calendar/v3/calendars/primary/events/{id}  -> 204" in gone
    assert "ann@impact-demo.test: (no events)" in gone
    removed = step('Chloe is removed from "Morning yoga"')
    assert "DELETE /v1.0/me/events/{id}  -> 204" in removed
    assert "ben@impact-demo.test: (no events)" in removed
    assert "Both calendars are empty again" in out


def test_first_run_is_deterministic():
    assert run_first_run() == run_first_run()


def test_calendar_page_lists_live_events():
    with GoogleEmulator() as google, tls.trusted(), MicrosoftEmulator() as microsoft:
        access, _refresh = google.issue_tokens("ann@example.com")
        headers = {"Authorization": f"Bearer {access}"}
        api = f"{google.base_url}/calendar/v3/calendars/primary/events"
        times = {"start": {"dateTime": "2030-01-07T10:00:00Z"}, "end": {"dateTime": "2030-01-07T11:00:00Z"}}
        kept = requests.post(api, json=dict(times, summary="Kept <class>", description="2 students"),
                             headers=headers, timeout=10).json()
        gone = requests.post(api, json=dict(times, summary="Deleted class"), headers=headers, timeout=10).json()
        requests.delete(f"{api}/{gone['id']}", headers=headers, timeout=10)
        assert kept["id"]

        page = requests.get(f"{google.base_url}/calendar", timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "ann@example.com" in page.text
        assert "Kept &lt;class&gt;" in page.text  # escaped
        assert "2030-01-07 10:00 UTC" in page.text and "2 students" in page.text
        assert "Deleted class" not in page.text
        assert 'http-equiv="refresh"' in page.text
        assert requests.get(google.base_url + "/", timeout=10).text == page.text
        assert 'http-equiv="refresh"' not in requests.get(f"{google.base_url}/calendar?refresh=0", timeout=10).text

        microsoft.seed_user("ben@example.com")
        page = requests.get(f"{microsoft.base_url}/calendar", timeout=10)
        assert page.status_code == 200
        assert "ben@example.com" in page.text and "No events." in page.text
