"""The Google Calendar event of a class (``events.insert``/``patch`` body)."""

from ... import payload


def build_body(snapshot):
    start, stop = payload.check_times(snapshot)
    if snapshot.allday:
        times = {"start": {"date": start.isoformat()}, "end": {"date": stop.isoformat()}}
    else:
        times = {
            "start": {"dateTime": start.isoformat() + "Z", "timeZone": "UTC"},
            "end": {"dateTime": stop.isoformat() + "Z", "timeZone": "UTC"},
        }
    body = {
        "summary": snapshot.name,
        "description": payload.description(snapshot),
        "location": payload.location(snapshot),
        **times,
        "extendedProperties": {"private": {payload.MARKER_KEY: snapshot.marker or str(snapshot.event_ref)}},
        "transparency": "opaque",
        "guestsCanInviteOthers": False,
    }
    if snapshot.record_url.startswith(("http://", "https://")):
        body["source"] = {"title": "Odoo", "url": snapshot.record_url}
    return body
