"""What every provider's connection shares: time and size bounds, destinations, the https check
of endpoints. Each provider declares its own settings in its folder (``providers/<name>/``)."""

import ipaddress
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 20  # seconds, for every HTTP call of the core
# Bounds of one answer of a provider's API (``http_limits``): a per-read timeout alone lets a server
# that drips a byte every 19 s hold a worker forever, and an unbounded body fills its memory.
TOTAL_DEADLINE = 60  # seconds for a whole request
MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # no calendar answer comes near it (a batch of 50 events)

# Where an account's classes go: a calendar the addon creates, or the user's main calendar.
DEDICATED = "dedicated"
MAIN = "main"
DESTINATIONS = (DEDICATED, MAIN)
DEFAULT_CALENDAR_NAME = "Classes"


def endpoint_problem(url):
    """Why ``url`` may not receive tokens, or None: https only, plain http only on loopback
    (tests). Whoever sets an endpoint receives every user's refresh token at the next refresh."""
    parts = urlsplit(url or "")
    if not parts.hostname:
        return f"{url!r} is not a URL"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        host = parts.hostname
        if host == "localhost" or _is_loopback_ip(host):
            return None
        return f"{url} must use https (plain http only on this machine's loopback)"
    return f"{url} must use https"


def _is_loopback_ip(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
