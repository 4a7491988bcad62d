# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import ast
import dataclasses
import functools
import logging

from odoo import api, models

from ..sync.payload import ClassSnapshot

_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def _parse_domain(raw):
    """The domain text parsed once per value (every booking write and every pushed class asks)."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None


@dataclasses.dataclass(frozen=True)
class DesiredRules:
    """What decides the external event alike for every class of one account: read once per
    push round (``_impact_calendar_desired_rules``), not once per class."""

    syncs: bool  # the account is connected and its user's classes are pushed
    scope: list  # the admin's availability domain; empty: every class
    namespace: str
    include_names: bool


class CalendarEvent(models.Model):
    _inherit = "calendar.event"

    @api.model_create_multi
    def create(self, vals_list):
        events = super().create(vals_list)
        self.env["impact.calendar.link"]._mark_events_dirty(events.ids)
        return events

    def write(self, vals):
        result = super().write(vals)
        if not self._impact_calendar_synced_fields().isdisjoint(vals) or not self._impact_scope_fields().isdisjoint(vals):
            self.env["impact.calendar.link"]._mark_events_dirty(self.ids)
        return result

    @api.model
    def _impact_calendar_synced_fields(self):
        """Fields the external event shows or that decide whether it exists. A write touching
        none of them (an alarm, a chatter message, a privacy flag) costs nothing and calls no
        provider. Override to add fields that an extended payload shows."""
        return {
            "name", "start", "stop", "allday", "start_date", "stop_date", "duration", "location",
            "videocall_location", "active", "user_id", "partner_ids", "attendee_ids",
        }

    def unlink(self):
        self.env["impact.calendar.link"]._mark_events_dirty(self.ids)
        return super().unlink()

    @api.model
    def _impact_scope_fields(self):
        """Fields the admin's availability domain looks at: changing them may add or remove a class."""
        domain = self._impact_calendar_scope_domain() or []
        return frozenset(
            leaf[0].split(".", 1)[0] for leaf in domain if isinstance(leaf, (list, tuple)) and leaf
        )

    @api.model
    def _impact_calendar_scope_domain(self):
        """The admin's availability domain (``impact_calendar.event_domain``), or None when it
        does not parse; an empty list means every event."""
        # Read on booking writes: the cached read itself, without get_param's access check and
        # the sudo environment it would need for a user who may not read parameters.
        raw = self.env["ir.config_parameter"]._get_param("impact_calendar.event_domain") or "[]"
        domain = _parse_domain(raw)
        return list(domain) if isinstance(domain, (list, tuple)) else domain  # a copy: the cache is shared

    def _impact_calendar_in_scope(self, domain=None):
        """Whether the class is one the admin's availability domain syncs (``domain``: that
        domain as ``_impact_calendar_valid_scope`` gives it, when the caller read it already)."""
        self.ensure_one()
        if domain is None:
            domain = self._impact_calendar_valid_scope()
        return not domain or bool(self.filtered_domain(domain))

    @api.model
    def _impact_calendar_valid_scope(self):
        """The admin's availability domain; an empty list (every class) when it does not parse."""
        domain = self._impact_calendar_scope_domain()
        if domain is None:
            raw = self.env["ir.config_parameter"].sudo().get_param("impact_calendar.event_domain")
            _logger.warning("impact_calendar.event_domain is not a valid domain: %r", raw)
            domain = []
        return domain

    @api.model
    def _impact_calendar_namespace(self):
        """This database's part of every external id and marker: copies of it never collide."""
        return self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")

    @api.model
    def _impact_calendar_include_names(self):
        param = self.env["ir.config_parameter"].sudo().get_param("impact_calendar.include_student_names")
        return param in ("1", "True", "true")

    @api.model
    def _impact_calendar_desired_rules(self, account):
        """The DesiredRules of ``account``'s classes."""
        events = self.sudo()
        return DesiredRules(
            syncs=account.state == "connected" and account._syncs_user(),
            scope=events._impact_calendar_valid_scope(),
            namespace=events._impact_calendar_namespace(),
            include_names=events._impact_calendar_include_names(),
        )

    def _impact_calendar_desired_snapshot(self, user, account, rules=None):
        """The ClassSnapshot ``user``'s external event of this class must show through
        ``account``, or None when it must not exist. ``self``: the class, archived or deleted
        (empty) ones included. ``rules``: the account's DesiredRules, when the caller read them."""
        rules = rules or self._impact_calendar_desired_rules(account)
        event = self.with_context(active_test=False).sudo()
        if not rules.syncs or not event or not event.active or user not in event._impact_calendar_instructors():
            return None
        if not event._impact_calendar_in_scope(rules.scope):
            return None
        return event._impact_calendar_snapshot(
            user, include_names=rules.include_names, marker=f"{rules.namespace}:{event.id}",
        )

    @api.model
    def _impact_calendar_not_booked_states(self):
        """Attendee states that do not count as booked. The booking rule, once: an attendee other
        than the class's instructors, in none of these states. The link SQL (``INSERT_LINKS``)
        and the Python roster both read it; a test checks that they agree."""
        return ("declined",)

    @api.model
    def _impact_calendar_instructors_query(self):
        """Who teaches each class, as SQL: a SELECT of (event_id, user_id) rows over every event,
        without parameters. The link SQL and the booking-side filter join it and filter it on
        event_id or user_id; ``_impact_calendar_instructors`` is its Python twin: override both
        (a test checks that they agree). Keep it a UNION ALL of plain SELECTs so that
        PostgreSQL pushes those filters into it."""
        return "SELECT id AS event_id, user_id FROM calendar_event WHERE user_id IS NOT NULL"

    def _impact_calendar_instructors(self):
        """Who teaches this class (res.users): by default its organizer."""
        self.ensure_one()
        return self.user_id

    def _impact_calendar_roster(self, user=None):
        """Booked attendees: everyone but the instructors' own partners (and ``user``'s),
        declined ones excluded."""
        self.ensure_one()
        not_booked = self._impact_calendar_not_booked_states()
        teachers = self._impact_calendar_instructors().partner_id
        if user:
            teachers |= user.partner_id
        return self.attendee_ids.filtered(
            lambda att: att.partner_id not in teachers and att.state not in not_booked
        )

    def _impact_calendar_snapshot(self, user, include_names=False, marker=""):
        """The class as the instructor's external calendar shows it, or None when nobody is booked."""
        self.ensure_one()
        roster = self._impact_calendar_roster(user)
        if not roster:
            return None
        base_url = self.get_base_url()
        return ClassSnapshot(
            event_ref=self.id,
            name=self.name or "",
            start=self.start,
            stop=self.stop,
            allday=self.allday,
            start_date=self.start_date,
            stop_date=self.stop_date,
            location=self.location or "",
            videocall_url=self.videocall_location or "",
            roster_count=len(roster),
            roster_names=tuple(sorted(roster.mapped(lambda att: att.partner_id.name or att.email or ""))) if include_names else (),
            record_url=f"{base_url}/odoo/calendar.event/{self.id}",
            marker=marker,
            # The roster's own writes (a decline) do not touch the event's write_date.
            modified=max(filter(None, [self.write_date, *self.attendee_ids.mapped("write_date")]), default=None),
        )
