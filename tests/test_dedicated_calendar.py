"""The dedicated calendar on both providers, client against emulator: create, push into it in
batches, see it gone, delete it; Google's least privilege (``calendar.app.created``)."""

import time

import pytest

from impact_calendar_integration.sync import providers
from impact_calendar_integration.sync.providers.google import oauth as oauth_google
from impact_calendar_integration.sync.config import DEDICATED, MAIN
from impact_calendar_integration.sync.providers.google.config import GoogleConfig
from impact_calendar_integration.sync.providers.microsoft.config import MicrosoftConfig
from impact_calendar_integration.sync.outcomes import Kind
from impact_calendar_integration.sync.providers.base import CREATE, Operation
from impact_calendar_integration.sync.tokens import TokenSet
from impact_calendar_integration.tests.emulators.microsoft import DEFAULT_USER
from impact_calendar_integration.tests.pushing import push_create, push_update

from test_microsoft_client import connect as ms_connect

GOOGLE_USER = "teacher@example.com"
APP_CREATED = "https://www.googleapis.com/auth/calendar.app.created"
OWNED = "https://www.googleapis.com/auth/calendar.events.owned"


def google_body(n):
    return {
        "summary": f"Class {n}",
        "start": {"dateTime": "2030-01-07T10:00:00Z"},
        "end": {"dateTime": "2030-01-07T11:00:00Z"},
    }


def graph_body(n):
    return {
        "subject": f"Class {n}",
        "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-07T11:00:00", "timeZone": "UTC"},
    }


def creates(count, body):
    return [Operation(key=n, action=CREATE, body=body(n), client_id=f"impact{n:05d}g0") for n in range(count)]


# -- Google ----------------------------------------------------------------------------------------
def google_client(google, scopes, calendar_id=None):
    access, refresh = google.issue_tokens(GOOGLE_USER, scopes=scopes)
    config = GoogleConfig(**google.config_kwargs())
    tokens = TokenSet(access_token=access, refresh_token=refresh, expires_at=time.time() + 3000)
    return providers.get("google").client(config, tokens, calendar_id=calendar_id)


def test_google_scopes_per_destination():
    entry = providers.get("google")
    assert entry.scopes_for(DEDICATED) == (APP_CREATED, "openid", "email")
    assert entry.scopes_for(MAIN) == (OWNED, "openid", "email")
    config = GoogleConfig(client_id="c", client_secret="s")
    url, _pending = entry.start(config, "https://odoo.test/cb", "st", entry.scopes_for(DEDICATED))
    assert "calendar.app.created" in url and "calendar.events" not in url
    assert oauth_google.authorization_url(config, "https://odoo.test/cb", "st", "v" * 43).count("calendar.events.owned") == 1


def test_google_dedicated_push_of_100_classes_never_touches_primary(google):
    client = google_client(google, (APP_CREATED, "openid", "email"))
    created = client.create_calendar("Classes", "guard-1")
    assert created.ok and created.external_id
    client.calendar_id = created.external_id
    outcomes = client.push(creates(100, google_body))
    assert all(outcome.ok for outcome in outcomes.values())
    assert len(google.calendar_events(GOOGLE_USER, created.external_id)) == 100
    assert google.live_events(GOOGLE_USER) == {}
    # 1 calendar create + ceil(100/50) batches; no part and no request names primary.
    assert len(google.requests(r"^/calendar/v3/calendars$", "POST")) == 1
    assert len(google.requests(r"^/batch/calendar/v3$", "POST")) == 2
    assert not [r for r in google.log + google.part_log if "primary" in r.path]


def test_google_app_created_token_cannot_reach_primary_or_foreign_calendars(google):
    client = google_client(google, (APP_CREATED,))
    primary = push_create(client, google_body(1), "impact00001g0")
    assert primary.kind is Kind.AUTH_REVOKED and primary.status == 403  # insufficient scope
    foreign = google.add_calendar(GOOGLE_USER, "Family")
    client.calendar_id = foreign
    assert push_create(client, google_body(1), "impact00001g0").status == 403
    assert client.get_calendar(foreign).status == 403


def test_google_owned_scope_reaches_primary_but_cannot_create_calendars(google):
    client = google_client(google, (OWNED,))
    assert push_create(client, google_body(1), "impact00001g0").ok
    assert client.create_calendar("Classes", "g").status == 403


def test_google_deleted_calendar_is_seen_gone_and_deleting_it_deletes_its_events(google):
    client = google_client(google, (APP_CREATED,))
    calendar_id = client.create_calendar("Classes", "g").external_id
    client.calendar_id = calendar_id
    assert push_create(client, google_body(1), "impact00001g0").ok
    assert client.get_calendar(calendar_id).ok
    assert client.delete_calendar(calendar_id).ok
    assert google.calendar_events(GOOGLE_USER, calendar_id) == {}
    assert client.get_calendar(calendar_id).kind is Kind.GONE
    assert client.delete_calendar(calendar_id).kind is Kind.GONE
    assert push_create(client, google_body(2), "impact00002g0").status == 404


# -- Microsoft -------------------------------------------------------------------------------------
@pytest.fixture
def graph(emu):
    config = MicrosoftConfig(**emu.config_kwargs(), timeout=5)
    tokens = ms_connect(config)[0]
    return providers.get("microsoft").client(config, tokens)


def test_graph_same_consent_for_both_destinations():
    entry = providers.get("microsoft")
    assert entry.scopes_for(DEDICATED) == entry.scopes_for(MAIN)
    assert entry.calendar_create_idempotent


def test_graph_dedicated_push_of_100_classes(emu, graph):
    created = graph.create_calendar("Classes", "guard-1")
    assert created.ok
    graph.calendar_id = created.external_id
    emu.log.clear()
    outcomes = graph.push(creates(100, graph_body))
    assert all(outcome.ok for outcome in outcomes.values())
    assert len(emu.calendar_events(DEFAULT_USER, created.external_id)) == 100
    assert emu.events(DEFAULT_USER) == []
    assert len(emu.requests(r"/\$batch$", "POST")) == 5  # ceil(100/20)
    assert not emu.requests(r"/me/calendar/|/me/events")


def test_graph_resent_calendar_create_finds_the_first_one(emu, graph):
    first = graph.create_calendar("Classes", "guard-1")
    again = graph.create_calendar("Classes", "guard-1", resent=True)
    assert again.ok and again.external_id == first.external_id
    assert len(emu.calendars(DEFAULT_USER)) == 1
    # Even unaware that it is a resend, the name clash leads to the same calendar.
    assert graph.create_calendar("Classes", "guard-1").external_id == first.external_id
    assert len(emu.calendars(DEFAULT_USER)) == 1


def test_graph_user_calendar_of_the_same_name_is_left_alone(emu, graph):
    own = emu.add_calendar(DEFAULT_USER, "Classes")
    created = graph.create_calendar("Classes", "guard-2")
    assert created.ok and created.external_id != own
    assert emu.calendars(DEFAULT_USER)[created.external_id]["name"].startswith("Classes (")


def test_graph_deleted_calendar_deletes_its_events_and_answers_404(emu, graph):
    calendar_id = graph.create_calendar("Classes", "g").external_id
    graph.calendar_id = calendar_id
    event = push_create(graph, graph_body(1), "tx-1")
    assert event.ok
    assert graph.delete_calendar(calendar_id).ok
    assert emu.calendar_events(DEFAULT_USER, calendar_id) == []
    assert graph.get_calendar(calendar_id).kind is Kind.GONE
    assert push_update(graph, event.external_id, graph_body(2)).kind is Kind.GONE
    assert push_create(graph, graph_body(3), "tx-3").status == 404
