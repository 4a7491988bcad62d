"""RFC 5545 text for the private ICS feed and for calendar servers' resources, from ClassSnapshots.

Same payload and privacy rules as every provider's body (``payload.description``): title,
times, place, video link, roster count (names only when allowed), a link back to Odoo. Never an
ATTENDEE or ORGANIZER: some servers mail every attendee they see.

Output is deterministic (DTSTAMP is the class's last change, not the time of the request), so a
hash of the text is a valid ETag and a poller gets 304s until a class really changes.
"""

import hashlib
from datetime import datetime, timedelta, timezone

import icalendar

from . import payload

PRODID = "-//IMPACT//impact_calendar_integration//EN"
#: SEQUENCE counts seconds since this instant: monotonic with the class's last change, and
#: within RFC 5545's 32-bit INTEGER until 2092.
SEQUENCE_EPOCH = datetime(2024, 1, 1)
#: how often a subscribed app should poll (Apple and Thunderbird honour these hints)
REFRESH_INTERVAL = timedelta(minutes=15)
NEVER_SENT = ("ATTENDEE", "ORGANIZER")


def event_uid(namespace, event_ref, user_ref, generation=0):
    """Stable UID of one class in one instructor's calendar: ``<event>-<user>@<database uuid>``
    (the feed always uses generation 0). An event re-created after it vanished at the
    provider gets ``<event>-<user>-g<generation>@…``: deterministic per try.
    """
    suffix = f"-g{int(generation)}" if generation else ""
    return f"{int(event_ref)}-{int(user_ref)}{suffix}@{namespace or 'odoo'}"


def _utc_naive(value):
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def sequence_of(modified):
    """SEQUENCE from the class's last change (naive UTC): grows whenever the class changes."""
    modified = _utc_naive(modified)
    if not modified:
        return 0
    return max(0, int((modified - SEQUENCE_EPOCH).total_seconds()))


def event_fields(snapshot):
    """The VEVENT of a class as plain JSON values (what a calendar server stores and hashes).

    Raises ``payload.PayloadError`` when the class has no usable times.
    """
    start, stop = payload.check_times(snapshot)
    modified = _utc_naive(snapshot.modified) or SEQUENCE_EPOCH
    fields = {
        "summary": snapshot.name,
        "description": payload.description(snapshot),
        "location": snapshot.location or snapshot.videocall_url or "",
        "allday": bool(snapshot.allday),
        "start": start.isoformat(),
        "end": stop.isoformat(),
        "modified": modified.isoformat(timespec="seconds"),
        "sequence": sequence_of(modified),
        "marker": snapshot.marker or str(snapshot.event_ref),
    }
    if snapshot.record_url.startswith(("http://", "https://")):
        fields["url"] = snapshot.record_url
    return fields


def vevent(fields, uid):
    """An ``icalendar.Event`` from ``event_fields`` and a UID."""
    event = icalendar.Event()
    modified = datetime.fromisoformat(fields["modified"]).replace(tzinfo=timezone.utc)
    event.add("uid", uid)
    event.add("dtstamp", modified)
    event.add("last-modified", modified)
    event.add("sequence", int(fields["sequence"]))
    if fields["allday"]:
        event.add("dtstart", datetime.fromisoformat(fields["start"]).date())
        event.add("dtend", datetime.fromisoformat(fields["end"]).date())
    else:
        event.add("dtstart", datetime.fromisoformat(fields["start"]).replace(tzinfo=timezone.utc))
        event.add("dtend", datetime.fromisoformat(fields["end"]).replace(tzinfo=timezone.utc))
    event.add("summary", fields["summary"])
    event.add("description", fields["description"])
    if fields.get("location"):
        event.add("location", fields["location"])
    if fields.get("url"):
        event.add("url", fields["url"])
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("class", "PRIVATE")
    event.add("x-impact-calendar-marker", fields["marker"])
    return event


def _calendar():
    calendar = icalendar.Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("calscale", "GREGORIAN")
    return calendar


def resource(fields, uid):
    """One calendar object resource (bytes, RFC 4791): a VCALENDAR holding one VEVENT, no METHOD
    (RFC 4791 §4.1 forbids it in stored resources)."""
    calendar = _calendar()
    calendar.add_component(vevent(fields, uid))
    return calendar.to_ical()


def feed(entries, name="Classes"):
    """The whole feed (bytes) from ``(fields, uid)`` pairs, in a stable order."""
    calendar = _calendar()
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", payload.clean_text(name))
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", REFRESH_INTERVAL)
    for fields, uid in sorted(entries, key=lambda entry: (entry[0]["start"], entry[1])):
        calendar.add_component(vevent(fields, uid))
    return calendar.to_ical()


def etag(body):
    """Strong ETag of a feed or resource body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
