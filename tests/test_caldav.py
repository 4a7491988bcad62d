"""The CalDAV provider and the ICS text against a real CalDAV server (Radicale), behind the
loopback fault layer: discovery, dedicated calendar, create/update/delete, 0 duplicates and
0 lost changes under 429, 503 and connections dropped after the server applied the request."""

import json
import re
from datetime import datetime, timedelta

import icalendar
import pytest

from impact_calendar_integration.sync import engine, ics, payload
from impact_calendar_integration.sync.outcomes import ConnectError, Kind
from impact_calendar_integration.sync.providers import caldav, get
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE, Operation
from impact_calendar_integration.sync.providers.google import body as google_body
from impact_calendar_integration.sync.providers.microsoft import body as graph_body
from impact_calendar_integration.tests.emulators.radicale_server import RadicaleServer

USER, PASSWORD = "ann", "app-specific-pass"
GUARD = "0c1d2e3f"
NAMESPACE = "0f6a2c1e-0000-4000-8000-000000000001"
# Radicale listens on loopback: private hosts allowed, as an administrator would for Nextcloud
CONFIG = caldav.CaldavConfig(calendar_name="Classes", timeout=5, allow_private_hosts=True)


@pytest.fixture(scope="module")
def dav():
    with RadicaleServer(users={USER: PASSWORD, "bob": "other"}) as server:
        yield server


@pytest.fixture
def client(dav):
    dav.clear_faults()
    tokens, label = caldav.check_credentials(CONFIG, dav.base_url + "/", USER, PASSWORD)
    assert label == USER
    saved = []
    new = caldav.CaldavClient(CONFIG, tokens, on_tokens=saved.append)
    new.saved = saved
    made = new.create_calendar("Classes", GUARD)
    assert made.kind is Kind.DONE, made.message
    new.calendar_id = made.external_id
    for href in dav.events(USER, calendar_path(new)):
        dav._upstream.delete(dav.radicale_url + href, auth=(USER, PASSWORD))
    with dav.lock:
        dav.log.clear()
    return new


def calendar_path(client):
    return "/" + client.calendar_id.split("/", 3)[3]


def snapshot(event_ref=7, count=1, name="Pottery", hours=1, names=()):
    start = datetime(2031, 5, 6, 9, 0)
    return payload.ClassSnapshot(
        event_ref=event_ref, name=name, start=start, stop=start + timedelta(hours=hours),
        roster_count=count, roster_names=names, record_url="https://odoo.test/odoo/calendar.event/7",
        marker=f"{NAMESPACE}:{event_ref}", modified=datetime(2031, 1, 1, 12, 0, count),
    )


def create_op(key=1, event_ref=7, **kwargs):
    uid = ics.event_uid(NAMESPACE, event_ref, 42)
    return Operation(key=key, action=CREATE, body=caldav.build_body(snapshot(event_ref, **kwargs)), client_id=uid)


def parsed(dav, client):
    events = dav.events(USER, calendar_path(client))
    return [icalendar.Calendar.from_ical(text).walk("VEVENT")[0] for text in events.values()]


def test_discovery_refuses_wrong_password(dav):
    with pytest.raises(ConnectError, match="app-specific password"):
        caldav.check_credentials(CONFIG, dav.base_url + "/", USER, "wrong")


def test_discovery_refuses_plain_http_elsewhere_and_placeholder_host():
    with pytest.raises(ConnectError):
        public = caldav.new_session(CONFIG, resolver=lambda host, port: ["93.184.216.34"])  # no DNS in tests
        caldav.check_credentials(CONFIG, "http://example.com/dav/", USER, PASSWORD, session=public)
    with pytest.raises(ConnectError):
        caldav.check_credentials(CONFIG, caldav.PRESETS["nextcloud"], USER, PASSWORD)


def test_connect_makes_no_calendar_and_a_resent_create_finds_its_first_try(dav, client):
    assert dav.calendars(USER) == {f"/{USER}/impact-classes-{GUARD}/": "Classes"}
    tokens, _label = caldav.check_credentials(CONFIG, dav.base_url + "/", USER, PASSWORD)
    assert tokens.calendar_url is None
    assert len(dav.calendars(USER)) == 1
    resent = client.create_calendar("Classes", GUARD, resent=True)
    assert (resent.kind, resent.external_id) == (Kind.DONE, client.calendar_id)
    assert len(dav.calendars(USER)) == 1
    other = client.create_calendar("Classes", "another-guard")
    assert other.kind is Kind.DONE and other.external_id.endswith("/impact-classes-another-guard/")
    assert len(dav.calendars(USER)) == 2
    assert client.delete_calendar(other.external_id).kind is Kind.DONE


def test_registry_entry_has_no_oauth_but_a_check():
    provider = get("caldav")
    assert provider.start is None and provider.finish is None and provider.check is caldav.check_credentials
    assert provider.dedicated_calendar and not provider.main_calendar and provider.calendar_create_idempotent
    assert provider.config(lambda key: {"impact_calendar.dedicated_calendar_name": "Lessons"}.get(key)).calendar_name == "Lessons"


def test_create_update_delete_one_request_each(dav, client):
    op = create_op()
    outcome = client.push([op])[1]
    assert outcome.kind is Kind.DONE
    assert len(dav.log) == 1 and dav.log[0].method == "PUT" and dav.log[0].headers.get("If-None-Match") == "*"
    href, etag = caldav.split_external_id(outcome.external_id)
    assert etag and href.endswith(f"7-42@{NAMESPACE}.ics")
    [event] = parsed(dav, client)
    assert str(event["UID"]) == f"7-42@{NAMESPACE}"
    assert "ATTENDEE" not in event and "ORGANIZER" not in event
    assert "1 student booked" in str(event["DESCRIPTION"])
    first_sequence = int(event["SEQUENCE"])

    with dav.lock:
        dav.log.clear()
    body = caldav.build_body(snapshot(count=2))
    outcome = client.push([Operation(key=2, action=UPDATE, body=body, external_id=outcome.external_id)])[2]
    assert outcome.kind is Kind.DONE
    assert [(r.method, r.headers.get("If-Match")) for r in dav.log] == [("PUT", etag)]
    [event] = parsed(dav, client)
    assert "2 students booked" in str(event["DESCRIPTION"]) and int(event["SEQUENCE"]) > first_sequence

    with dav.lock:
        dav.log.clear()
    outcome = client.push([Operation(key=3, action=DELETE, external_id=outcome.external_id)])[3]
    assert outcome.kind is Kind.DONE
    assert [r.method for r in dav.log] == ["DELETE"]
    assert parsed(dav, client) == []
    # deleting again: 404, which the engine counts as done
    again = client._delete(outcome.external_id or href)
    assert again.kind is Kind.GONE
    assert engine.settle(Operation(key=4, action=DELETE, external_id=href), again, engine.LinkState(external_id=href)).kind == engine.SYNCED


def test_update_after_user_edit_overwrites_on_412(dav, client):
    created = client._create(caldav.build_body(snapshot()), ics.event_uid(NAMESPACE, 7, 42))
    href, _etag = caldav.split_external_id(created.external_id)
    # the user edits the event in their app: the ETag changes
    [(stored_href, text)] = dav.events(USER, calendar_path(client)).items()
    edited = dav._upstream.put(
        dav.radicale_url + stored_href, data=text.replace("Pottery", "Edited"), auth=(USER, PASSWORD),
        headers={"Content-Type": "text/calendar"},
    )
    assert edited.status_code in (201, 204)
    with dav.lock:
        dav.log.clear()
    outcome = client._update(created.external_id, caldav.build_body(snapshot(count=3)))
    assert outcome.kind is Kind.DONE
    *refused_then_read, (last_method, last_status) = [(r.method, r.status) for r in dav.log]
    assert refused_then_read == [("PUT", 412), ("GET", 200)]
    # an overwrite answers 201 or 204 (RFC 4918 9.7.1: the server's choice; Radicale: 201)
    assert (last_method, last_status in (201, 204)) == ("PUT", True)
    [event] = parsed(dav, client)
    assert str(event["SUMMARY"]) == "Pottery" and "3 students booked" in str(event["DESCRIPTION"])


@pytest.mark.parametrize("fault", [
    {"status": 429, "headers": {"Retry-After": "7"}},
    {"status": 503, "headers": {"Retry-After": "3"}},
])
def test_throttling_keeps_retry_after_and_then_lands_once(dav, client, fault):
    dav.inject(r"\.ics$", method="PUT", **fault)
    op = create_op()
    outcome = client.push([op])[1]
    assert outcome.kind is (Kind.RATE_LIMITED if fault["status"] == 429 else Kind.TRANSIENT)
    assert outcome.retry_after == float(fault["headers"]["Retry-After"])
    assert parsed(dav, client) == []
    outcome = client.push([op])[1]
    assert outcome.kind is Kind.DONE
    assert len(parsed(dav, client)) == 1


def test_dropped_connections_after_the_server_applied_them(dav, client):
    """Create, update and delete each lose their answer once: 0 duplicates, 0 lost changes."""
    op = create_op()
    dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True)
    assert client.push([op])[1].kind is Kind.TRANSIENT
    assert len(parsed(dav, client)) == 1  # applied although the answer was lost
    op.meta["resent"] = True  # what the engine plans for a create that failed once
    created = client.push([op])[1]  # the retry: one unconditional PUT to the same href
    assert created.kind is Kind.DONE
    assert len(parsed(dav, client)) == 1

    update = Operation(key=2, action=UPDATE, body=caldav.build_body(snapshot(count=4)), external_id=created.external_id)
    dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True)
    assert client.push([update])[2].kind is Kind.TRANSIENT
    final = Operation(key=2, action=UPDATE, body=caldav.build_body(snapshot(count=5)), external_id=created.external_id)
    updated = client.push([final])[2]  # stale ETag: 412, re-read, overwrite
    assert updated.kind is Kind.DONE
    [event] = parsed(dav, client)
    assert "5 students booked" in str(event["DESCRIPTION"])

    delete = Operation(key=3, action=DELETE, external_id=updated.external_id)
    dav.inject(r"\.ics$", method="DELETE", drop=True, after_handling=True)
    assert client.push([delete])[3].kind is Kind.TRANSIENT
    assert client.push([delete])[3].kind is Kind.GONE  # counts as done
    assert parsed(dav, client) == []


class Link:
    """One class as the synchronizer keeps it: engine.plan, push, engine.settle, recorded as
    the outbox does (the fields of engine.LinkState that these transitions touch)."""

    def __init__(self, client, event_ref=7):
        self.client, self.event_ref = client, event_ref
        self.state = engine.LinkState()
        self.provider = get("caldav")

    def round(self, snap):
        """One synchronizer round; the Transition, or None when nothing was sent."""
        body = self.provider.build_body(snap) if snap else None
        step = engine.plan(
            self.event_ref, self.state, body,
            client_id_for=lambda generation: self.provider.client_id(NAMESPACE, self.event_ref, 42, generation),
        )
        if isinstance(step, engine.Transition):
            return None
        outcome = self.client.push([step])[step.key]
        transition = engine.settle(
            step, outcome, self.state, create_sends_current_body=self.provider.create_sends_current_body,
        )
        state = self.state
        if transition.kind == engine.RETRYING:
            self.state = engine.LinkState(**{**state.__dict__, "attempts": state.attempts + 1})
        elif transition.kind in (engine.SYNCED, engine.UNVERIFIED):
            self.state = engine.LinkState(
                external_id=transition.external_id, pushed_hash=transition.pushed_hash, generation=transition.generation,
            )
        else:
            raise AssertionError(f"unexpected {transition}")
        return transition

    def sync(self, snap, rounds=5):
        """Rounds until nothing is left to send: the kinds of the Transitions recorded."""
        kinds = []
        for _round in range(rounds):
            transition = self.round(snap)
            if transition is None:
                return kinds
            kinds.append(transition.kind)
        raise AssertionError(f"still sending after {rounds} rounds: {kinds}")


def requests_made(dav):
    with dav.lock:
        made = [(r.method, r.headers.get("If-None-Match"), r.headers.get("If-Match")) for r in dav.log]
        dav.log.clear()
    return made


def test_one_put_or_delete_per_try_and_no_verifying_round(dav, client):
    """The synchronizer's rounds (engine + client) against Radicale: a class change costs one
    PUT or DELETE per try; a create whose answer was lost costs its retry's PUT and nothing
    more (no verifying update round), even when the class changed in between."""
    link = Link(client)
    dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True)
    assert link.sync(snapshot(count=1)) == [engine.RETRYING, engine.SYNCED]
    assert len(parsed(dav, client)) == 1, "the lost try was applied"
    put_first, put_retry = requests_made(dav)
    assert put_first == ("PUT", "*", None), "a first try never overwrites"
    assert put_retry == ("PUT", None, None), "the retry overwrites the same href with the current body"

    # The class changes while a create's answer is lost: the retry carries the new version.
    other = Link(client, event_ref=8)
    dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True)
    assert other.round(snapshot(event_ref=8, count=1)).kind == engine.RETRYING
    assert other.sync(snapshot(event_ref=8, count=3)) == [engine.SYNCED]
    assert [method for method, _inm, _im in requests_made(dav)] == ["PUT", "PUT"]
    by_uid = {str(event["UID"]): event for event in parsed(dav, client)}
    assert len(by_uid) == 2, "0 duplicates"
    assert "3 students booked" in str(by_uid[ics.event_uid(NAMESPACE, 8, 42)]["DESCRIPTION"]), "0 lost changes"

    assert link.sync(snapshot(count=2)) == [engine.SYNCED]
    [(method, _inm, if_match)] = requests_made(dav)
    assert method == "PUT" and if_match, "an update: one conditional PUT"
    assert link.sync(snapshot(count=2)) == [], "unchanged: nothing sent"

    # An update whose answer was lost changed the ETag: its retry overwrites, one PUT, no GET.
    dav.inject(r"\.ics$", method="PUT", drop=True, after_handling=True)
    assert link.sync(snapshot(count=4)) == [engine.RETRYING, engine.SYNCED]
    (first, _first_inm, first_match), (retry, _retry_inm, retry_match) = requests_made(dav)
    assert (first, retry) == ("PUT", "PUT") and first_match and retry_match is None
    by_uid = {str(event["UID"]): event for event in parsed(dav, client)}
    assert "4 students booked" in str(by_uid[ics.event_uid(NAMESPACE, 7, 42)]["DESCRIPTION"])
    assert link.sync(None) == [engine.SYNCED]
    assert [method for method, _inm, _im in requests_made(dav)] == ["DELETE"]
    assert [str(event["UID"]) for event in parsed(dav, client)] == [ics.event_uid(NAMESPACE, 8, 42)]


def test_create_into_a_deleted_calendar_is_a_404_that_get_calendar_confirms(dav, client):
    dav.delete_calendar(USER, calendar_path(client))
    op = create_op()
    op.meta.update(resent=True, calendar=client.calendar_id)
    outcome = client.push([op])[1]
    assert (outcome.kind, outcome.status) == (Kind.TRANSIENT, 404)
    assert engine.calendar_suspect(op, outcome)
    assert client.get_calendar(client.calendar_id).kind is Kind.GONE
    assert dav.calendars(USER) == {}, "no calendar is made behind the synchronizer's back"


def test_wrong_password_later_is_auth_revoked(dav, client):
    client.session.auth = (USER, "revoked")
    outcome = client.push([create_op(), create_op(key=2, event_ref=8)])
    assert outcome[1].kind is Kind.AUTH_REVOKED and outcome[2].kind is Kind.AUTH_REVOKED
    assert len(dav.log) == 1, "the stop policy sends nothing more once the account is refused"


def test_get_and_delete_calendar(dav, client):
    assert client.push([create_op()])[1].kind is Kind.DONE
    assert client.get_calendar(client.calendar_id).kind is Kind.DONE
    assert client.delete_calendar(client.calendar_id).kind is Kind.DONE
    assert dav.calendars(USER) == {}
    assert client.get_calendar(client.calendar_id).kind is Kind.GONE
    assert client.delete_calendar(client.calendar_id).kind is Kind.GONE


def test_a_calendar_the_connect_made_before_is_adopted_and_none_without_it(dav, client):
    legacy = caldav.TokenSet(server_url=dav.base_url + "/", username=USER, password=PASSWORD, calendar_url=client.calendar_id)
    assert get("caldav").connect_calendar(legacy) == client.calendar_id
    assert get("caldav").connect_calendar(client.tokens) is None


def test_no_calendar_id_is_refused_not_sent(dav, client):
    client.calendar_id = None
    assert client.push([create_op()])[1].kind is Kind.REJECTED
    assert not [r for r in dav.log if r.method == "PUT"]


def test_feed_is_valid_deterministic_and_private():
    entries = [(ics.event_fields(snapshot(event_ref=n, names=("Alice",) if n == 2 else ())), ics.event_uid(NAMESPACE, n, 42)) for n in (1, 2)]
    body = ics.feed(entries, name="Classes")
    assert body == ics.feed(list(reversed(entries)), name="Classes")
    assert ics.etag(body) == ics.etag(ics.feed(entries, name="Classes"))
    calendar = icalendar.Calendar.from_ical(body)
    events = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [f"1-42@{NAMESPACE}", f"2-42@{NAMESPACE}"]
    assert all("ATTENDEE" not in e and "ORGANIZER" not in e for e in events)
    assert "Alice" not in str(events[0]["DESCRIPTION"])
    assert events[0]["DTSTART"].dt.tzinfo is not None
    assert ics.sequence_of(datetime(2031, 1, 1)) < ics.sequence_of(datetime(2031, 1, 1, 0, 0, 1)) < 2**31


def test_allday_class():
    start = datetime(2031, 5, 6)
    snap = payload.ClassSnapshot(event_ref=3, name="Retreat", allday=True, start_date=start.date(), stop_date=start.date() + timedelta(days=1), roster_count=1)
    event = ics.vevent(ics.event_fields(snap), "3-1@x")
    assert event["DTSTART"].dt == start.date() and event["DTEND"].dt == start.date() + timedelta(days=2)


CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
HOSTILE = payload.ClassSnapshot(
    event_ref=9, name="Pottery\rATTENDEE:mailto:x@y\x00\x07", start=datetime(2031, 5, 6, 9, 0),
    stop=datetime(2031, 5, 6, 10, 0), location="Room 1\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\x1b\x7f",
    roster_count=1, roster_names=("Ann\rEND:VEVENT\rBEGIN:VEVENT\rUID:evil\x0b",),
    record_url="https://odoo.test/odoo/calendar.event/9\r\nORGANIZER:mailto:z@y", marker=f"{NAMESPACE}:9",
    modified=datetime(2031, 1, 1, 12, 0),
)


def assert_one_clean_vevent(text):
    """Exactly one VEVENT, none of the injected properties, and no control character left
    (CR only before LF, as line ends)."""
    raw = text.encode() if isinstance(text, str) else text
    assert not CONTROL.search(raw), CONTROL.search(raw)
    [event] = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    assert all(name not in event for name in ("ATTENDEE", "ORGANIZER")) and not event.walk("VALARM")
    lines = re.split(rb"\r?\n", raw)
    assert lines.count(b"BEGIN:VEVENT") == 1 and not any(line.startswith((b"BEGIN:VALARM", b"ATTENDEE")) for line in lines)
    return event


def test_control_characters_never_reach_a_caldav_body(dav, client):
    """Finding 4: a CR (or any C0 control) in a class name, a location or a student's name
    cannot add a property, an alarm or a second event to what Radicale stores."""
    op = Operation(key=1, action=CREATE, body=caldav.build_body(HOSTILE), client_id=ics.event_uid(NAMESPACE, 9, 42))
    assert client.push([op])[1].kind is Kind.DONE
    [text] = dav.events(USER, calendar_path(client)).values()
    event = assert_one_clean_vevent(text)
    assert str(event["SUMMARY"]) == "Pottery ATTENDEE:mailto:x@y"
    assert str(event["LOCATION"]) == "Room 1  BEGIN:VALARM  ACTION:DISPLAY  END:VALARM"


def test_control_characters_never_reach_the_feed_nor_google_or_graph():
    body = ics.feed([(ics.event_fields(HOSTILE), ics.event_uid(NAMESPACE, 9, 42))], name="Classes\rX-EVIL:1")
    assert_one_clean_vevent(body)
    named = payload.ClassSnapshot(**{**HOSTILE.__dict__})
    for provider_body in (google_body.build_body(named), graph_body.build_body(named)):
        text = json.dumps(provider_body, ensure_ascii=False)
        # the description's line breaks are ours ("\n" between its lines), nothing else is
        assert not re.search(r"[\x00-\x1f\x7f]", text.replace("\\n", "")), text
        assert "\\r" not in text and "\\u00" not in text
