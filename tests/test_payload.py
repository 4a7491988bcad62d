"""Mapping a booked class to Google / Graph bodies, and the hash that drives coalescing."""

import json
import os
from datetime import date, datetime

import pytest

from impact_calendar_integration.sync import payload
from impact_calendar_integration.sync.providers.google import body as google_body
from impact_calendar_integration.sync.providers.microsoft import body as graph_body

GOOGLE_DISCOVERY = os.path.join(
    os.path.dirname(__import__("googleapiclient").__file__), "discovery_cache", "documents", "calendar.v3.json"
)


def snapshot(**kwargs):
    values = dict(
        event_ref=42,
        name="Yoga <b>basics</b> 🧘",
        start=datetime(2026, 3, 29, 0, 30),  # the night Europe/Brussels springs forward
        stop=datetime(2026, 3, 29, 1, 30),
        location="Studio 2",
        roster_count=3,
        record_url="https://odoo.example.com/odoo/calendar.event/42",
        marker="db:42",
    )
    values.update(kwargs)
    return payload.ClassSnapshot(**values)


def test_google_body_timed_is_utc_and_has_no_attendees():
    body = google_body.build_body(snapshot())
    assert body["summary"] == "Yoga <b>basics</b> 🧘"
    assert body["start"] == {"dateTime": "2026-03-29T00:30:00Z", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2026-03-29T01:30:00Z", "timeZone": "UTC"}
    assert "attendees" not in body
    assert "3 students booked" in body["description"]
    assert body["extendedProperties"]["private"][payload.MARKER_KEY] == "db:42"
    assert body["source"]["url"].endswith("/42")


def test_google_body_uses_only_fields_of_the_discovery_schema():
    with open(GOOGLE_DISCOVERY, encoding="utf-8") as f:
        event_schema = json.load(f)["schemas"]["Event"]["properties"]
    assert set(google_body.build_body(snapshot())) <= set(event_schema)


def test_all_day_uses_dates_with_exclusive_end():
    body = google_body.build_body(snapshot(allday=True, start_date=date(2026, 10, 24), stop_date=date(2026, 10, 25)))
    assert body["start"] == {"date": "2026-10-24"}
    assert body["end"] == {"date": "2026-10-26"}
    graph = graph_body.build_body(snapshot(allday=True, start_date=date(2026, 10, 24), stop_date=date(2026, 10, 25)))
    assert graph["isAllDay"] is True
    assert graph["start"] == {"dateTime": "2026-10-24T00:00:00", "timeZone": "UTC"}
    assert graph["end"] == {"dateTime": "2026-10-26T00:00:00", "timeZone": "UTC"}


def test_graph_body_sends_utc_not_windows_zone_names():
    body = graph_body.build_body(snapshot())
    assert body["start"] == {"dateTime": "2026-03-29T00:30:00", "timeZone": "UTC"}
    assert body["subject"] == "Yoga <b>basics</b> 🧘"
    assert "attendees" not in body
    assert body["singleValueExtendedProperties"][0]["value"] == "db:42"


def test_names_only_when_allowed():
    anonymous = google_body.build_body(snapshot())
    named = google_body.build_body(snapshot(roster_names=("Ann", "Bo", "Cy")))
    assert "Ann" not in anonymous["description"]
    assert "3 students booked: Ann, Bo, Cy" in named["description"]


def test_zero_duration_and_missing_end_are_pushed_as_instants():
    body = google_body.build_body(snapshot(stop=None))
    assert body["start"]["dateTime"] == body["end"]["dateTime"]
    body = graph_body.build_body(snapshot(stop=datetime(2026, 3, 29, 0, 0)))  # end before start
    assert body["end"] == body["start"]


def test_missing_start_is_a_clear_error():
    with pytest.raises(payload.PayloadError, match="no start"):
        google_body.build_body(snapshot(start=None))


def test_hash_is_stable_and_sees_roster_changes():
    a = google_body.build_body(snapshot())
    b = json.loads(json.dumps(a))  # same content, other dict instances and order
    assert payload.body_hash(a) == payload.body_hash(dict(reversed(list(b.items()))))
    assert payload.body_hash(a) != payload.body_hash(google_body.build_body(snapshot(roster_count=4)))

