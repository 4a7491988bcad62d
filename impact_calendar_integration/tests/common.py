# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Shared fixtures of the addon's Odoo tests."""

from odoo.tests import new_test_user

from ..sync.providers.base import TokenSet

GROUP = "impact_calendar_integration.group_calendar_integration"
MANAGER = "impact_calendar_integration.group_calendar_integration_manager"


def make_user(env, login, integration=True, manager=False):
    groups = "base.group_user"
    if integration:
        groups += "," + GROUP
    if manager:
        groups += "," + MANAGER
    return new_test_user(env, login=login, groups=groups, name=login.title(), tz="Europe/Brussels")


def connect_offline(user, provider="google", email=None, tokens=None):
    """An account connected without a provider round trip (tests that do not push)."""
    tokens = tokens or TokenSet(access_token="at-" + user.login, refresh_token="rt-" + user.login)
    return user.env["impact.calendar.account"].sudo()._connect(
        user, provider, tokens, email or f"{user.login}@example.com"
    )

