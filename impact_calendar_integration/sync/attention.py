"""When an account needs its user: the attention state and its reason, as pure functions.

An account needs attention when it cannot push until its user acts (paused for a reconnect), or
when one of its links has kept failing (``first_failed_at``) for longer than the threshold while
the retries go on. The reason says what the user can do; it comes from the account's state, the
provider's declared revocation kind (``providers.Provider.revocation_kind``) and generic facts,
never from a provider's name.
"""

from datetime import timedelta

from . import providers

DEFAULT_HOURS = 24.0  # ``impact_calendar.attention_hours`` when unset or unreadable

# Reasons (impact.calendar.account.attention_reason).
RECONNECT = "reconnect"  # consent revoked or expired: connect again
PASSWORD = "password"  # the server refuses the (app-specific) password: a new one, connect again
CALENDAR_DELETED = "calendar_deleted"  # the dedicated calendar is gone and cannot be made again
FAILING = "failing"  # the provider keeps failing: nothing the user did, say what it answers


def threshold_hours(raw):
    """The threshold in hours from the system parameter's text: unset, unreadable or negative
    gives the default; 0 means at the first failure."""
    if isinstance(raw, bool) or raw is None:  # Odoo's get_param answers False when unset
        return DEFAULT_HOURS
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        return DEFAULT_HOURS
    return hours if 0 <= hours < 24 * 365 else DEFAULT_HOURS


def failing_cutoff(now, hours):
    """Links failing since before this time make their account need attention."""
    return now - timedelta(hours=hours)


def assess(paused, revocation, failing_since, cutoff, calendar_missing=False):
    """The attention reason of an account, or None when it needs nothing.

    ``paused``: the account waits for its user to reconnect (``needs_reconnect``).
    ``revocation``: its provider's revocation kind; a password the user made means the server
    refuses that password, anything else a revoked or expired consent.
    ``failing_since``: the oldest ``first_failed_at`` of its links still being retried (None:
    none). ``calendar_missing``: the account pushes into a dedicated calendar that it has not
    got (deleted at the provider, and the link failures are the attempts to make it again).
    """
    if paused:
        return PASSWORD if revocation == providers.USER_DELETES_PASSWORD else RECONNECT
    if failing_since is None or failing_since > cutoff:
        return None
    return CALENDAR_DELETED if calendar_missing else FAILING
