"""Mapper: one booked class (a plain snapshot of Odoo data) → the provider's event body.

Privacy by default: title, times, place, video link, roster *count*, and a link back to Odoo.
Student names only when the admin allows it; students are never attendees, so no calendar
service ever emails them. The body is deterministic, so its hash tells whether a push is needed.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

#: private marker that an external event is ours (the key or name of a provider's own property)
MARKER_KEY = "impactCalendar"
#: C0 control characters and DEL: never sent (a bare CR starts a new iCalendar line, so a new
#: property, in some parsers); CR, LF and TAB become spaces so that words stay apart
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_FIELDS = ("name", "location", "videocall_url", "record_url", "marker")


def clean_text(value):
    """``value`` without control characters (line breaks and tabs become spaces)."""
    if not isinstance(value, str):
        return value
    return _CONTROL.sub(lambda match: " " if match.group() in "\t\n\r" else "", value)


@dataclass(frozen=True)
class ClassSnapshot:
    """What the external event shows of one booked class. Times are naive UTC (Odoo's storage)."""

    event_ref: int
    name: str
    start: datetime = None
    stop: datetime = None
    allday: bool = False
    start_date: date = None
    stop_date: date = None  # inclusive, as in Odoo
    location: str = ""
    videocall_url: str = ""
    roster_count: int = 0
    roster_names: tuple = field(default_factory=tuple)
    record_url: str = ""
    marker: str = ""  # identifies the database + event, stored in the private marker
    modified: datetime = None  # last change of the class or its roster (ICS SEQUENCE, LAST-MODIFIED)

    def __post_init__(self):
        # The one place every text bound for a provider or the feed passes: Odoo data may hold
        # control characters (a name typed or imported with a CR), the bodies must not.
        for name in _TEXT_FIELDS:
            object.__setattr__(self, name, clean_text(getattr(self, name)))
        object.__setattr__(self, "roster_names", tuple(clean_text(name) for name in self.roster_names or ()))


class PayloadError(ValueError):
    """The class cannot be expressed as an external event (e.g. no start)."""


def _utc(value):
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def check_times(snapshot):
    if snapshot.allday:
        start = snapshot.start_date or (snapshot.start and snapshot.start.date())
        stop = snapshot.stop_date or (snapshot.stop and snapshot.stop.date()) or start
        if not start:
            raise PayloadError("the class has no start date")
        # Providers want an exclusive end date; Odoo's is inclusive.
        return start, max(stop, start) + timedelta(days=1)
    if not snapshot.start:
        raise PayloadError("the class has no start time")
    start = _utc(snapshot.start)
    stop = _utc(snapshot.stop) if snapshot.stop else start
    return start, max(stop, start)


def roster_text(snapshot):
    count = snapshot.roster_count
    line = "1 student booked" if count == 1 else f"{count} students booked"
    if snapshot.roster_names:
        line += ": " + ", ".join(snapshot.roster_names)
    return line


def description(snapshot):
    lines = [roster_text(snapshot)]
    if snapshot.videocall_url:
        lines.append(f"Video call: {snapshot.videocall_url}")
    if snapshot.record_url:
        lines.append(f"Open in Odoo: {snapshot.record_url}")
    lines.append("Managed by Odoo: changes made here are not read back and may be overwritten.")
    return "\n".join(lines)


def location(snapshot):
    return snapshot.location or snapshot.videocall_url or ""


def body_hash(body):
    """Stable digest of a body: equal bodies, equal hashes, whatever the key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
