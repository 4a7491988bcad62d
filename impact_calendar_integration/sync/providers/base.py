"""The interface both provider clients implement."""

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

CREATE = "create"
UPDATE = "update"
DELETE = "delete"


@dataclass
class Operation:
    """One change to push.

    ``key`` identifies the operation in the result mapping (the engine uses the link id).
    ``client_id`` makes a create idempotent: Google uses it as the event id, Graph as the
    ``transactionId``. It must be the same on every retry of the same create.
    """

    key: object
    action: str
    body: dict = None
    external_id: str = None
    client_id: str = None
    meta: dict = field(default_factory=dict)


class ProviderClient:
    """Adapter to one user's external calendar.

    ``push(operations)`` sends the operations (batched as the provider allows) and returns
    ``{operation.key: Outcome}`` for every operation, never raising for a per-operation
    failure. Auth failures that hit the whole account come back as AUTH_REVOKED outcomes.
    """

    #: most operations per HTTP batch request
    batch_size = 1

    def push(self, operations):
        raise NotImplementedError

    def create(self, body, client_id):  # pylint: disable=method-required-super
        raise NotImplementedError

    def update(self, external_id, body):
        raise NotImplementedError

    def delete(self, external_id):
        raise NotImplementedError


@dataclass
class TokenSet:
    """What a client needs to act for one account; the engine stores it encrypted.

    Google: access_token, refresh_token, expires_at (epoch seconds).
    Microsoft: ``msal_cache`` (a serialized MSAL SerializableTokenCache, which holds the
    rotating refresh token) and ``account_id`` (MSAL home_account_id).
    """

    # repr=False: a TokenSet in a log line or traceback must not print the secrets.
    access_token: str = field(default=None, repr=False)
    refresh_token: str = field(default=None, repr=False)
    expires_at: float = None
    msal_cache: str = field(default=None, repr=False)
    account_id: str = None


def parse_retry_after(value):
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = str(value).strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())
