# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The private ICS feed: ``/impact_calendar/feed/<token>.ics``, polled without a session by
any calendar app that subscribes to a calendar by its address.

Every refusal is the same bare 404: a wrong, revoked or stopped feed cannot be told apart.
Conditional GETs (``If-None-Match``, else ``If-Modified-Since``) get a 304 without a body.
"""

from datetime import timezone
from email.utils import format_datetime, parsedate_to_datetime

from odoo import http
from odoo.http import request

from .. import log_redaction

NOT_FOUND = b"Not Found"

# Served routes are logged with their path: the token must not be (see log_redaction).
log_redaction.install()


def _http_date(value):
    return format_datetime(value.replace(tzinfo=timezone.utc, microsecond=0), usegmt=True)


def _not_modified(headers, etag, last_modified):
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        # RFC 9110 §13.1.3: when If-None-Match is present, If-Modified-Since is ignored.
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return etag in tags or "*" in tags
    since = headers.get("If-Modified-Since")
    if since and last_modified:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        if when.tzinfo is not None:
            when = when.astimezone(timezone.utc).replace(tzinfo=None)
        return last_modified.replace(microsecond=0) <= when
    return False


class ImpactCalendarFeed(http.Controller):
    @http.route(
        "/impact_calendar/feed/<string:token>.ics",
        type="http", auth="public", methods=["GET", "HEAD"], csrf=False, save_session=False,
    )
    def feed(self, token, **kwargs):
        feed = request.env["impact.calendar.feed"].sudo()._find(token)
        if not feed:
            return request.make_response(NOT_FOUND, headers=[("Content-Type", "text/plain")], status=404)
        body, etag, last_modified = feed._serve()
        headers = [
            ("ETag", etag),
            ("Last-Modified", _http_date(last_modified)),
            # Private to this URL's owner, and stored by no cache at all (not even the browser's
            # disk cache); pollers still revalidate with the ETag and get 304s.
            ("Cache-Control", "private, no-store"),
            ("X-Robots-Tag", "noindex"),
            ("Referrer-Policy", "no-referrer"),
        ]
        if _not_modified(request.httprequest.headers, etag, last_modified):
            return request.make_response(b"", headers=headers, status=304)
        headers += [
            ("Content-Type", "text/calendar; charset=utf-8"),
            ("Content-Disposition", 'inline; filename="classes.ics"'),
        ]
        return request.make_response(body, headers=headers)
