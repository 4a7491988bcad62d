"""Google's event ids: deterministic, so a retried create meets Google's duplicate check."""

import base64
import hashlib

from ... import ids

#: prefix of our Google event ids, readable in the provider's UI and logs; all chars in [a-v]
GOOGLE_ID_PREFIX = "impact"


def deterministic_event_id(namespace: str, event_ref: int, user_ref: int, generation: int) -> str:
    """Google event id: base32hex lower case ([a-v0-9]), 5..1024 chars (here 38).

    160 bits of SHA-256 make collisions across databases and events negligible.
    """
    digest = hashlib.sha256(ids.seed(namespace, event_ref, user_ref, generation).encode("utf-8")).digest()[:20]
    encoded = base64.b32hexencode(digest).decode("ascii").rstrip("=").lower()
    return GOOGLE_ID_PREFIX + encoded
