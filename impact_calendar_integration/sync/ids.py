"""Deterministic identifiers that make a create idempotent across retries and crashes.

The same (namespace, event, user, generation) always gives the same id, so a create retried
after a timeout or a crash hits the provider's duplicate check instead of making a second event.
The generation lets the engine pick a fresh id when the old one is burned (Google never reuses
the id of a deleted event).
"""

import base64
import hashlib
import uuid

#: prefix of our Google event ids, readable in the provider's UI and logs; all chars in [a-v]
GOOGLE_ID_PREFIX = "impact"
#: our own uuid5 namespace for Graph transaction ids
TRANSACTION_NAMESPACE = uuid.UUID("5b0c3f0e-7d1a-4f4e-9c55-2f6d1c7a9e10")


def _seed(namespace, event_ref, user_ref, generation):
    return f"{namespace}|{int(event_ref)}|{int(user_ref)}|{int(generation)}"


def deterministic_event_id(namespace: str, event_ref: int, user_ref: int, generation: int) -> str:
    """Google event id: base32hex lower case ([a-v0-9]), 5..1024 chars (here 38).

    160 bits of SHA-256 make collisions across databases and events negligible.
    """
    digest = hashlib.sha256(_seed(namespace, event_ref, user_ref, generation).encode("utf-8")).digest()[:20]
    encoded = base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()
    return GOOGLE_ID_PREFIX + encoded


def transaction_id(namespace: str, event_ref: int, user_ref: int, generation: int) -> str:
    """Graph ``transactionId``: a GUID string, stable for the same inputs."""
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, _seed(namespace, event_ref, user_ref, generation)))
