# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.http import request

from .. import compat
from ..sync import ics, payload

GROUP = "impact_calendar_integration.group_calendar_integration"
FEED_PATH = "/impact_calendar/feed/%s.ics"
PAST_DAYS = 30  # a feed shows classes from 30 days back onwards
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
# Key of the plain token of a feed just made, in the HTTP session (or the cursor's cache).
SHOWN_KEY = "impact_calendar_feed_token"


def token_hash(token):
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class ImpactCalendarFeed(models.Model):
    """One instructor's private ICS feed: the hash of its secret URL token.

    No access right for anybody: the addon's code reads it through ``sudo()`` only. A feed
    request is looked up by the token's SHA-256 (unique index) and compared in constant time.
    The database never holds the token: it is shown once, to its owner, in the browser session
    that made it (kept in that HTTP session, server side), then only a new one can be made.
    """

    _name = "impact.calendar.feed"
    _description = "External Calendar Feed"
    _rec_name = "user_id"

    user_id = fields.Many2one("res.users", required=True, ondelete="cascade", index=True, readonly=True)
    token_hash = fields.Char(required=True, index=True, readonly=True)
    changed_at = fields.Datetime(readonly=True, help="When the token was issued.")
    body_etag = fields.Char(readonly=True, help="ETag of the feed as last served.")
    body_changed_at = fields.Datetime(readonly=True, help="When the served feed last changed (Last-Modified).")

    locals().update(compat.sql_constraints(  # models.Constraint on 19.0
        ("user_uniq", "unique(user_id)", "A user has one feed."),
        ("token_hash_uniq", "unique(token_hash)", "Feed tokens are unique."),
    ))

    def init(self):
        # A poll costs O(classes in the window): calendar.event has no index on its organizer.
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS impact_calendar_event_user_stop_idx
               ON calendar_event (user_id, stop) WHERE active"""
        )

    # -- tokens ---------------------------------------------------------------------------------
    @api.model
    def _rotate(self, user):
        """Turn ``user``'s feed on, or give it a new token: the old URL stops at once. The token
        is remembered for its owner's current session only (``_url``)."""
        token = secrets.token_urlsafe(32)  # 256 bits
        values = {
            "token_hash": token_hash(token),
            "changed_at": fields.Datetime.now(),
            "body_etag": False,
        }
        feed = self.sudo().search([("user_id", "=", user.id)], limit=1)
        if feed:
            feed.write(values)
        else:
            self.sudo().create(dict(values, user_id=user.id))
        self._remember(user, token)
        return token

    @api.model
    def _disable(self, user):
        self.sudo().search([("user_id", "=", user.id)]).unlink()
        self._remember(user, None)

    @api.model
    def _remember(self, user, token):
        """Keep the plain token where only this session finds it, never in the database: in a
        request, the user's HTTP session (server-side session store); without one (shell,
        tests), the cursor's cache."""
        if request:
            session = self._session(user)
            if session is None:
                return
            if token:
                session[SHOWN_KEY] = token
            else:
                session.pop(SHOWN_KEY, None)
            return
        cursor_store = self._cursor_store()
        if cursor_store is not None:
            cursor_store[user.id] = token

    @api.model
    def _shown_token(self, user):
        """The token this session (or cursor) made for ``user``, maybe a stale one; or None."""
        if request:
            session = self._session(user)
            return session.get(SHOWN_KEY) if session is not None else None
        return (self._cursor_store() or {}).get(user.id)

    @api.model
    def _cursor_store(self):
        """{user id: token} in the cursor's cache (None where the cursor has no cache)."""
        cache = getattr(self.env.cr, "cache", None)
        return None if cache is None else cache.setdefault(SHOWN_KEY, {})

    @api.model
    def _session(self, user):
        """The HTTP session of the current request, when it is ``user``'s own; else None."""
        session = getattr(request, "session", None)
        if session is None or session.get("uid") != user.id:
            return None
        return session

    def _url(self):
        """The feed's URL for its owner, if this session made its current token; else False."""
        self.ensure_one()
        token = self._shown_token(self.user_id)
        if not token or not hmac.compare_digest(token_hash(token).encode(), self.sudo().token_hash.encode()):
            return False
        base = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        return base.rstrip("/") + FEED_PATH % token

    @api.model
    def _find(self, token):
        """The live feed for ``token``, or an empty recordset. Live: the user is active and
        still in the group (losing either stops the feed at once)."""
        if not token or not TOKEN_RE.match(token):
            return self.browse()
        digest = token_hash(token)
        feed = self.sudo().search([("token_hash", "=", digest)], limit=1)
        if not feed or not hmac.compare_digest(feed.token_hash.encode(), digest.encode()):
            return self.browse()
        user = feed.user_id.sudo()
        if not user.active or not user.has_group(GROUP):
            return self.browse()
        return feed

    # -- content --------------------------------------------------------------------------------
    def _classes(self):
        """The instructor's classes from PAST_DAYS back onwards (active events only): one query
        over the instructors SQL, served by ``impact_calendar_event_user_stop_idx`` for the
        default rule (organizer), whatever the database holds."""
        self.ensure_one()
        events = self.env["calendar.event"]
        query = events._impact_calendar_instructors_query()
        since = fields.Datetime.now() - timedelta(days=PAST_DAYS)
        self.env.flush_all()
        self.env.cr.execute(
            f"""SELECT e.id FROM ({query}) i JOIN calendar_event e ON e.id = i.event_id
                WHERE i.user_id = %s AND e.active AND e.stop >= %s ORDER BY e.start, e.id""",  # noqa: S608  # pylint: disable=sql-injection
            [self.user_id.id, since],
        )
        return events.sudo().browse([row[0] for row in self.env.cr.fetchall()])

    def _body(self):
        """The feed text (bytes): same payload and privacy rules as the pushed events."""
        self.ensure_one()
        user = self.user_id
        events = self.env["calendar.event"]
        namespace = events._impact_calendar_namespace()
        include_names = events._impact_calendar_include_names()
        scope = events._impact_calendar_valid_scope()
        entries = []
        for event in self._classes():
            if not event._impact_calendar_in_scope(scope):
                continue
            snapshot = event._impact_calendar_snapshot(user, include_names=include_names, marker=f"{namespace}:{event.id}")
            if snapshot is None:  # nobody booked: not a class
                continue
            try:
                entries.append((ics.event_fields(snapshot), ics.event_uid(namespace, event.id, user.id)))
            except payload.PayloadError:
                continue
        name = self.env["ir.config_parameter"].sudo().get_param("impact_calendar.dedicated_calendar_name") or "Classes"
        return ics.feed(entries, name=name)

    def _serve(self):
        """(body, etag, last_modified). Last-Modified is when the served text last changed,
        recorded here, so that it never goes back when a class leaves the feed."""
        self.ensure_one()
        body = self._body()
        etag = ics.etag(body)
        feed = self.sudo()
        if feed.body_etag != etag or not feed.body_changed_at:
            feed.write({"body_etag": etag, "body_changed_at": fields.Datetime.now()})
        return body, etag, feed.body_changed_at
