# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Shared fixtures of the addon's Odoo tests."""

from datetime import datetime, timedelta

from odoo import Command
from odoo.tests import new_test_user

from ..sync.tokens import TokenSet

GROUP = "impact_calendar_integration.group_calendar_integration"
MANAGER = "impact_calendar_integration.group_calendar_integration_manager"


def make_user(env, login, integration=True, manager=False):
    groups = "base.group_user"
    if integration:
        groups += "," + GROUP
    if manager:
        groups += "," + MANAGER
    return new_test_user(env, login=login, groups=groups, name=login.title(), tz="Europe/Brussels")


def connect_offline(user, provider="google", email=None, tokens=None, destination="main"):
    """An account connected without a provider round trip (tests that do not push, or push
    with tokens the emulator issued for the main calendar)."""
    tokens = tokens or TokenSet(access_token="at-" + user.login, refresh_token="rt-" + user.login)
    return user.env["impact.calendar.account"].sudo()._connect(
        user, provider, tokens, email or f"{user.login}@example.com", destination
    )



def add_students(cls, name, count, days):
    """``cls.students``: ``count`` partners with an e-mail; ``cls.start``: a whole hour ``days`` ahead."""
    email = name.lower().replace(" ", "")
    cls.students = cls.env["res.partner"].create(
        [{"name": f"{name} {n}", "email": f"{email}{n}@example.com"} for n in range(1, count + 1)]
    )
    cls.start = datetime.now().replace(microsecond=0, second=0, minute=0) + timedelta(days=days)


def create_class(env, user, students, when, length, **values):
    """A class ``user`` organizes at ``when`` for ``length`` with ``students`` booked, created as
    ``user`` like a booking is; ``values`` add or override fields."""
    vals = {
        "user_id": user.id,
        "start": when,
        "stop": when + length,
        "partner_ids": [Command.set([user.partner_id.id, *(student.id for student in students)])],
    }
    vals.update(values)
    return env["calendar.event"].with_user(user).create(vals)


def use_emulator(env, provider, emulator):
    """Point the provider's settings at a running emulator."""
    for key, value in emulator.config_kwargs().items():
        env["ir.config_parameter"].sudo().set_param(f"impact_calendar.{provider}_{key}", value)


def start_emulators(cls):
    """Both emulators for a test class (``cls.google``, ``cls.microsoft``), the Microsoft one's
    throwaway CA trusted, the settings pointing at them; all undone after the class."""
    # pylint: disable=import-outside-toplevel
    from .emulators import google, microsoft, tls

    cls.google = google.GoogleEmulator().start()
    cls.addClassCleanup(cls.google.stop)
    cls.microsoft = microsoft.MicrosoftEmulator().start()
    cls.addClassCleanup(cls.microsoft.stop)
    trust = tls.trusted()
    trust.__enter__()
    cls.addClassCleanup(trust.__exit__, None, None, None)
    use_emulator(cls.env, "google", cls.google)
    use_emulator(cls.env, "microsoft", cls.microsoft)
