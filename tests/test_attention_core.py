"""The attention reason of an account (sync/attention.py), without Odoo."""

from datetime import datetime, timedelta

from impact_calendar_integration.sync import attention, providers

NOW = datetime(2026, 12, 6, 9, 0)
CUTOFF = attention.failing_cutoff(NOW, 24)


def test_a_paused_account_needs_its_user_at_once_with_what_to_do():
    assert attention.assess(True, providers.REVOKED, None, CUTOFF) == attention.RECONNECT
    assert attention.assess(True, providers.USER_REMOVES_APP, None, CUTOFF) == attention.RECONNECT
    assert attention.assess(True, providers.USER_DELETES_PASSWORD, None, CUTOFF) == attention.PASSWORD


def test_the_reason_follows_the_providers_declared_revocation_kind():
    """A provider whose users bring a password (CalDAV) is told the password is refused."""
    kinds = {name: provider.revocation_kind() for name, provider in providers.REGISTRY.items()}
    assert kinds["caldav"] == providers.USER_DELETES_PASSWORD
    assert attention.assess(True, kinds["caldav"], None, CUTOFF) == attention.PASSWORD
    assert attention.assess(True, kinds["google"], None, CUTOFF) == attention.RECONNECT


def test_failing_links_count_only_past_the_threshold():
    assert attention.assess(False, providers.REVOKED, None, CUTOFF) is None
    assert attention.assess(False, providers.REVOKED, NOW - timedelta(hours=23), CUTOFF) is None
    assert attention.assess(False, providers.REVOKED, NOW - timedelta(hours=25), CUTOFF) == attention.FAILING
    assert attention.assess(False, providers.REVOKED, NOW - timedelta(hours=25), CUTOFF, calendar_missing=True) == (
        attention.CALENDAR_DELETED
    )


def test_the_threshold_parameter_is_read_safely():
    assert attention.threshold_hours(False) == attention.DEFAULT_HOURS  # get_param of an unset key
    assert attention.threshold_hours(None) == attention.DEFAULT_HOURS
    assert attention.threshold_hours("") == attention.DEFAULT_HOURS
    assert attention.threshold_hours("a day") == attention.DEFAULT_HOURS
    assert attention.threshold_hours("-3") == attention.DEFAULT_HOURS
    assert attention.threshold_hours("2") == 2.0
    assert attention.threshold_hours("0") == 0.0
