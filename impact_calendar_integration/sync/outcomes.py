"""Typed results of one provider operation, mapped by the engine to link states."""

import enum
from dataclasses import dataclass

MESSAGE_LIMIT = 1000


class Kind(enum.Enum):
    DONE = "done"  # the provider holds what we sent (external_id set for create/update)
    GONE = "gone"  # 404/410: the event no longer exists at the provider
    RATE_LIMITED = "rate_limited"  # 429 / 403 rateLimitExceeded: retry after retry_after
    TRANSIENT = "transient"  # 5xx, timeout, dropped connection: retry with backoff
    AUTH_REVOKED = "auth_revoked"  # invalid_grant, 401 after refresh: the user must reconnect
    REJECTED = "rejected"  # other 4xx: the provider refused this payload; retrying won't help


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    external_id: str = None
    retry_after: float = None  # seconds, from Retry-After when the provider sent one
    status: int = None  # HTTP status, when there was a response
    message: str = ""  # the provider's own words, safe to show (never holds a token)

    def __post_init__(self):
        # The provider's words are stored and shown: a NUL cannot be stored in PostgreSQL text,
        # and a huge error page must not become a huge field.
        if self.message:
            object.__setattr__(self, "message", str(self.message).replace("\x00", "")[:MESSAGE_LIMIT])

    @property
    def ok(self):
        return self.kind is Kind.DONE


class AuthRevoked(Exception):
    """The refresh token no longer works (invalid_grant, consent revoked)."""


class ProviderError(Exception):
    """A provider call failed in a way the caller must report; carries an Outcome."""

    def __init__(self, outcome):
        super().__init__(outcome.message or outcome.kind.value)
        self.outcome = outcome


class ConnectError(Exception):
    """A connection (OAuth consent, code exchange, credential check) did not give us tokens;
    the message is safe to show the user."""
