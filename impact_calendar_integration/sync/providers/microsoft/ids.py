"""Graph's ``transactionId``: the same for every try of one create."""

import uuid

from ... import ids

#: our own uuid5 namespace for Graph transaction ids
TRANSACTION_NAMESPACE = uuid.UUID("5b0c3f0e-7d1a-4f4e-9c55-2f6d1c7a9e10")


def transaction_id(namespace: str, event_ref: int, user_ref: int, generation: int) -> str:
    """Graph ``transactionId``: a GUID string, stable for the same inputs."""
    return str(uuid.uuid5(TRANSACTION_NAMESPACE, ids.seed(namespace, event_ref, user_ref, generation)))
