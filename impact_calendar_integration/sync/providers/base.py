"""The interface both provider clients implement."""

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from .. import policy
from ..outcomes import Kind

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
    #: the calendar events go into: None is the user's main calendar, else the id of a calendar
    #: ``create_calendar`` made. One client serves every calendar of an account (Microsoft
    #: rotates refresh tokens: two clients of one account would race), so callers switch it.
    calendar_id = None

    def push(self, operations):
        """Send ``operations`` in chunks of ``batch_size``; one stop policy for every provider:
        once a chunk says the account is revoked or throttled, or failed as a whole, the rest
        is not sent and shares that outcome (sending more only makes it worse)."""
        operations = list(operations)
        outcomes, stop = {}, None
        for start in range(0, len(operations), self.batch_size):
            chunk = operations[start:start + self.batch_size]
            if stop is not None:
                outcomes.update((op.key, stop) for op in chunk)
                continue
            chunk_outcomes = self._push_chunk(chunk)
            outcomes.update(chunk_outcomes)
            stop = stop_outcome(list(chunk_outcomes.values()))
        return outcomes

    def _push_chunk(self, chunk):
        """Send one batch: ``{op.key: Outcome}`` for every operation of ``chunk``."""
        raise NotImplementedError

    # -- the dedicated calendar -----------------------------------------------------------
    def create_calendar(self, name, guard, resent=False):
        """Create a calendar called ``name``: an Outcome whose ``external_id`` is its id.

        ``guard`` is persisted before the call and the same on every retry; ``resent`` says an
        earlier try may have reached the provider. A provider that can find that try's calendar
        by ``guard`` returns it instead of making a second one."""
        raise NotImplementedError

    def get_calendar(self, calendar_id):
        """DONE when the calendar exists, GONE when the user deleted it."""
        raise NotImplementedError

    def delete_calendar(self, calendar_id):
        """Delete a calendar with every event in it, in one call (GONE: already deleted)."""
        raise NotImplementedError


def stop_outcome(outcomes):
    """The outcome that stops a push after a chunk, or None: a revoked account, a throttled
    mailbox (the longest wait), or a chunk that failed as a whole (one shared TRANSIENT)."""
    revoked = [outcome for outcome in outcomes if outcome.kind is Kind.AUTH_REVOKED]
    if revoked:
        return revoked[0]
    throttled = [outcome for outcome in outcomes if outcome.kind is Kind.RATE_LIMITED]
    if throttled:
        return max(throttled, key=lambda outcome: outcome.retry_after or 0)
    if outcomes and outcomes[0].kind is Kind.TRANSIENT and all(o is outcomes[0] for o in outcomes):
        return outcomes[0]
    return None


def parse_retry_after(value):
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), clamped to
    ``[0, policy.MAX_DELAY]``, or None when the header is missing or unreadable."""
    if value is None:
        return None
    value = str(value).strip()[:64]  # a longer value is no number nor date we want
    if value.isascii() and value.replace(".", "", 1).isdigit():
        return policy.clamp_delay(value)
    try:
        when = parsedate_to_datetime(value)
        return policy.clamp_delay(when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
