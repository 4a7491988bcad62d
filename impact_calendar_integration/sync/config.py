"""Connection settings of each provider, as plain values (the Odoo layer reads them from
system parameters). Endpoints are settings so that sovereign clouds and tests can change them."""

import ipaddress
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 20  # seconds, for every HTTP call of the core
# Bounds of one Google or Graph answer (``http_limits``): a per-read timeout alone lets a server
# that drips a byte every 19 s hold a worker forever, and an unbounded body fills its memory.
TOTAL_DEADLINE = 60  # seconds for a whole request
MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # no calendar answer comes near it (a batch of 50 events)

# Where an account's classes go: a calendar the addon creates, or the user's main calendar.
DEDICATED = "dedicated"
MAIN = "main"
DESTINATIONS = (DEDICATED, MAIN)
DEFAULT_CALENDAR_NAME = "Classes"

GOOGLE_API_SCOPE = "https://www.googleapis.com/auth/"
# Least privilege per destination, checked against the scopes each method of the calendar.v3.json
# discovery document accepts: ``calendar.app.created`` covers calendars.insert/get/delete and the
# events of the calendars this app created only (never ``primary``); ``calendar.events.owned``
# covers events.insert/get/patch/delete on the calendars the user owns, narrower than
# ``calendar.events`` (which also reaches calendars merely shared with the user).
GOOGLE_DESTINATION_SCOPES = {
    DEDICATED: (GOOGLE_API_SCOPE + "calendar.app.created", "openid", "email"),
    MAIN: (GOOGLE_API_SCOPE + "calendar.events.owned", "openid", "email"),
}
GOOGLE_SCOPES = GOOGLE_DESTINATION_SCOPES[MAIN]
MICROSOFT_SCOPES = ("Calendars.ReadWrite", "User.Read")  # MSAL adds openid profile offline_access


@dataclass(frozen=True)
class GoogleConfig:
    client_id: str
    client_secret: str
    auth_endpoint: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_endpoint: str = "https://oauth2.googleapis.com/token"
    revoke_endpoint: str = "https://oauth2.googleapis.com/revoke"
    api_endpoint: str = "https://www.googleapis.com/calendar/v3/"  # ends with "/"
    calendar_id: str = "primary"
    timeout: float = DEFAULT_TIMEOUT  # per read
    deadline: float = TOTAL_DEADLINE  # per request, whatever the server's pace
    max_response_bytes: int = MAX_RESPONSE_BYTES


@dataclass(frozen=True)
class MicrosoftConfig:
    client_id: str
    client_secret: str
    tenant: str = "common"
    authority_host: str = "https://login.microsoftonline.com"
    graph_endpoint: str = "https://graph.microsoft.com/v1.0"  # no trailing "/"
    timeout: float = DEFAULT_TIMEOUT  # per read
    deadline: float = TOTAL_DEADLINE  # per request, whatever the server's pace
    max_response_bytes: int = MAX_RESPONSE_BYTES

    @property
    def authority(self):
        return f"{self.authority_host.rstrip('/')}/{self.tenant}"

    @property
    def is_microsoft_cloud(self):
        """MSAL's instance discovery only knows Microsoft's own hosts; skip it elsewhere."""
        host = self.authority_host.split("://", 1)[-1].split("/", 1)[0].lower()
        return host in ("login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn")


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


ENDPOINT_FIELDS = ("auth_endpoint", "token_endpoint", "revoke_endpoint", "api_endpoint", "authority_host", "graph_endpoint")


def config_problems(config):
    """Every endpoint of a GoogleConfig or MicrosoftConfig that may not receive tokens."""
    return [
        problem
        for field in fields(config)
        if field.name in ENDPOINT_FIELDS and (problem := endpoint_problem(getattr(config, field.name)))
    ]


def _is_loopback_ip(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
