"""A small HTML view of an emulator's calendars: GET ``/calendar`` (and ``/``).

Meant for people, not for tests of the sync core: it lists, for every Google user or Outlook
mailbox the emulator knows, the events that are live right now (title, start, end, location,
description), so a demo can watch a booked class appear and disappear. No JavaScript; the page
reloads itself every few seconds. ``?refresh=0`` turns the reload off.

Both emulators mount it with one route::

    ("GET", calendar_page.PATH, calendar_page.serve)
"""

from datetime import datetime, timezone
from html import escape

from .common import Response

#: the route pattern (fullmatch): ``/``, ``/calendar`` and ``/calendar/``
PATH = r"/(?:calendar/?)?"
REFRESH_SECONDS = 3


# -- what each emulator holds, as plain rows --------------------------------------------------------
def calendars(server):
    """[(owner email, provider label, [event dict])] of a Google or Microsoft emulator.

    Event dicts hold ``title``, ``start``, ``end`` (display strings), ``location``,
    ``description`` and ``sort`` (a sortable key); only live (not deleted) events.
    """
    # The main calendar and every secondary one (the addon's dedicated "Classes" calendar).
    if hasattr(server, "mailboxes"):  # Microsoft Graph emulator
        owners = sorted(server.users.values(), key=lambda user: user.email.lower())
        return [(user.email, "Outlook", sorted((_graph_row(e) for e in _graph_events(server, user.email)), key=_sort_key))
                for user in owners]
    return [(email, "Google Calendar", sorted((_google_row(e) for e in _google_events(server, email)), key=_sort_key))
            for email in sorted(server.users)]


def _graph_events(server, email):
    events = list(server.events(email))
    for calendar_id in server.calendars(email):
        events += server.calendar_events(email, calendar_id)
    return events


def _google_events(server, email):
    events = list(server.live_events(email).values())
    for calendar_id in server.calendars(email):
        events += server.calendar_events(email, calendar_id).values()
    return events


def _sort_key(row):
    return (row["sort"], row["title"])


def _google_when(when):
    when = when or {}
    if when.get("date"):
        return when["date"] + " (all day)", when["date"]
    text = when.get("dateTime") or ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text, text
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M UTC"), moment.isoformat()
    zone = when.get("timeZone") or ""
    return f"{moment:%Y-%m-%d %H:%M} {zone}".strip(), moment.isoformat()


def _google_row(event):
    start, sort = _google_when(event.get("start"))
    end, _sort = _google_when(event.get("end"))
    return {
        "title": event.get("summary") or "(no title)",
        "start": start,
        "end": end,
        "location": event.get("location") or "",
        "description": event.get("description") or "",
        "sort": sort,
    }


def _graph_when(when, all_day):
    when = when or {}
    text = (when.get("dateTime") or "")[:19]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text, text
    if all_day:
        return f"{moment:%Y-%m-%d} (all day)", moment.isoformat()
    return f"{moment:%Y-%m-%d %H:%M} {when.get('timeZone') or ''}".strip(), moment.isoformat()


def _graph_row(event):
    all_day = bool(event.get("isAllDay"))
    start, sort = _graph_when(event.get("start"), all_day)
    end, _sort = _graph_when(event.get("end"), all_day)
    return {
        "title": event.get("subject") or "(no title)",
        "start": start,
        "end": end,
        "location": (event.get("location") or {}).get("displayName") or "",
        "description": (event.get("body") or {}).get("content") or "",
        "sort": sort,
    }


# -- HTML -------------------------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; vertical-align: top; padding: .3em .6em; }
th { background: #f3f3f3; } tr + tr td { border-top: 1px solid #eee; }
.desc { white-space: pre-wrap; font-size: .9em; color: #555; } .none { color: #888; font-style: italic; }
.meta { color: #666; font-size: .9em; }
"""


def render(server, refresh=REFRESH_SECONDS):
    """The page as a string."""
    title = "Outlook calendars (Microsoft Graph emulator)" if hasattr(server, "mailboxes") else \
        "Google Calendar emulator"
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"/>',
        f"<title>{escape(title)}</title>",
        f'<meta http-equiv="refresh" content="{int(refresh)}"/>' if refresh else "",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Loopback emulator at {escape(server.base_url)}. Live events only'
        + (f"; this page reloads every {int(refresh)} s." if refresh else ".") + "</p>",
    ]
    owners = calendars(server)
    if not owners:
        out.append('<p class="none">No account has signed in yet.</p>')
    for email, label, events in owners:
        count = f"{len(events)} event" + ("" if len(events) == 1 else "s")
        out.append(f"<h2>{escape(email)} <span class=\"meta\">({escape(label)}, {count})</span></h2>")
        if not events:
            out.append('<p class="none">No events.</p>')
            continue
        out.append("<table><tr><th>Title</th><th>Start</th><th>End</th><th>Location</th><th>Description</th></tr>")
        for row in events:
            out.append(
                "<tr>"
                f"<td>{escape(row['title'])}</td><td>{escape(row['start'])}</td><td>{escape(row['end'])}</td>"
                f"<td>{escape(row['location'])}</td><td class=\"desc\">{escape(row['description'])}</td>"
                "</tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(line for line in out if line)


def serve(server, req):
    """Route handler: ``("GET", PATH, serve)`` in an emulator's ``routes``."""
    refresh = req.query.get("refresh", str(REFRESH_SECONDS))
    refresh = int(refresh) if refresh.isdigit() else REFRESH_SECONDS
    return Response(200, raw=render(server, refresh), content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})
