"""Deterministic identifiers that make a create idempotent across retries and crashes.

The same (namespace, event, user, generation) always gives the same id, so a create retried
after a timeout or a crash hits the provider's duplicate check instead of making a second event.
The generation lets the engine pick a fresh id when the old one is burned (a provider may never
reuse the id of a deleted event). Each provider shapes the seed into its own id scheme.
"""


def seed(namespace, event_ref, user_ref, generation):
    """The text every id of one (namespace, event, user, generation) derives from."""
    return f"{namespace}|{int(event_ref)}|{int(user_ref)}|{int(generation)}"
