"""Google's settings and consent scopes."""

from dataclasses import dataclass

from ...config import DEDICATED, DEFAULT_TIMEOUT, MAIN, MAX_RESPONSE_BYTES, TOTAL_DEADLINE

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
