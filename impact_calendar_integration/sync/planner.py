"""Synchronizer's decision for one link: what, if anything, to send to the provider."""

from dataclasses import dataclass

from .providers.base import CREATE, DELETE, UPDATE

NOTHING = "nothing"


@dataclass(frozen=True)
class Plan:
    action: str  # create | update | delete | nothing
    body: dict = None
    body_hash: str = None


def plan(external_id, pushed_hash, body, body_hash):
    """``body`` is what the external event must show, or None when it must not exist."""
    if body is None:
        return Plan(DELETE) if external_id else Plan(NOTHING)
    if not external_id:
        return Plan(CREATE, body, body_hash)
    if body_hash == pushed_hash:
        # Coalescing: whatever happened since the last push, the provider already shows this.
        return Plan(NOTHING, body, body_hash)
    return Plan(UPDATE, body, body_hash)
