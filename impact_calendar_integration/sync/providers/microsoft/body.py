"""The Graph event of a class (``POST /me/events`` body)."""

from datetime import datetime, time

from ... import payload

#: Graph single-value extended property (a string property in our own GUID namespace)
GRAPH_MARKER_ID = "String {6e3b9e62-9a4c-4d52-8f55-2c1e1f0b7a41} Name impactCalendar"


def _graph_time(value):
    return {"dateTime": value.isoformat(timespec="seconds"), "timeZone": "UTC"}


def build_body(snapshot):
    start, stop = payload.check_times(snapshot)
    if snapshot.allday:
        start, stop = datetime.combine(start, time.min), datetime.combine(stop, time.min)
    return {
        "subject": snapshot.name,
        "body": {"contentType": "text", "content": payload.description(snapshot)},
        "start": _graph_time(start),
        "end": _graph_time(stop),
        "isAllDay": bool(snapshot.allday),
        "location": {"displayName": payload.location(snapshot)},
        "showAs": "busy",
        "responseRequested": False,
        "singleValueExtendedProperties": [
            {"id": GRAPH_MARKER_ID, "value": snapshot.marker or str(snapshot.event_ref)}
        ],
    }
