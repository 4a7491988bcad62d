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


def load_emulators():
    """Import the repository's loopback emulators (``<repo>/tests/emulators``).

    They are test infrastructure shared with the no-Odoo suite, kept beside the addon in the
    repository; an addon copied alone cannot run the provider tests and says so.
    """
    import os
    import sys
    import unittest

    repo_tests = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "tests")
    if not os.path.isdir(os.path.join(repo_tests, "emulators")):
        raise unittest.SkipTest("the repository's tests/emulators folder is not beside the addon")
    if repo_tests not in sys.path:
        sys.path.insert(0, repo_tests)
    from emulators import google, microsoft, tls  # pylint: disable=import-outside-toplevel

    return google, microsoft, tls
