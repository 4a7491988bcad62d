"""The per-link decisions, as pure functions: what to send, and what an answer leads to.

``plan`` turns a link's state and what the class should look like into an ``Operation`` to
send, or a ``Transition`` to record without any provider call. ``settle`` turns an operation and
the provider's ``Outcome`` into a ``Transition``. The outbox records transitions
(``outbox.record``); the Odoo synchronizer only gathers data, calls these and applies what they
return. The demo, the benchmarks and the tests call them too, never a copy.
"""

import random
from dataclasses import dataclass
from datetime import timedelta

from . import payload, policy
from .link_states import PAUSED, RECREATE, REJECTED, RETRYING, SYNCED, UNVERIFIED
from .outcomes import Kind
from .providers.base import CREATE, DELETE, UPDATE, Operation

# Transition kinds are the link's events (``link_states``), named by the state they lead to:
# SYNCED: the provider holds exactly what we meant; clean unless changed meanwhile.
# RETRYING: try again after ``delay`` seconds.
# REJECTED: the provider refused this version: wait for the class to change.
# PAUSED: the account cannot push (needs reconnect): keep the change.
# Two lead back to PENDING, named by why:
# UNVERIFIED: a retried create's event: keep its id, send the current body again.
# RECREATE: the event vanished (or its id is burned): create anew, new generation.
KINDS = (SYNCED, UNVERIFIED, RECREATE, RETRYING, REJECTED, PAUSED)


@dataclass(frozen=True)
class LinkState:
    """What the engine needs to know of a link."""

    external_id: str = None
    pushed_hash: str = None
    generation: int = 0
    attempts: int = 0
    create_sent: bool = False
    calendar: str = None  # where ``external_id`` lives: None the main calendar, else our calendar's id


@dataclass(frozen=True)
class Transition:
    """A link's next state, and what it means for the account.

    ``pushed``: the provider holds a change (the account's last successful push).
    ``hold``: seconds the whole account waits (the provider throttles the mailbox).
    ``reconnect``: the account needs the user to reconnect, with this reason.
    ``account_error``: the error the user should see in Preferences.
    """

    kind: str
    external_id: str = None
    pushed_hash: str = None
    generation: int = 0
    delay: float = None
    message: str = None
    pushed: bool = False
    hold: float = None
    reconnect: str = None
    account_error: str = None
    calendar: str = None  # where ``external_id`` lives from now on


def maybe_created(link):
    """Whether the provider may hold an event of this link that we hold no id of: a create went
    out and its answer was lost (or its worker died)."""
    return not link.external_id and bool(link.create_sent or link.attempts)


def placeholder(event_ref, marker, now):
    """The body of a cleanup create (see ``plan``): it never stays, the next round deletes it."""
    return payload.ClassSnapshot(
        event_ref=event_ref, name="Removed class", start=now, stop=now + timedelta(hours=1), marker=marker
    )


def plan(key, link, body, client_id_for=None, forget=False, calendar=None, cleanup_body=None):
    """The Operation to send for link ``key``, or a Transition when no call is needed.

    ``body``: what the external event must show, or None when it must not exist.
    ``client_id_for(generation)``: the provider's idempotent create id.
    ``forget``: syncing stopped and the class is over: leave the event where it is.
    ``calendar``: where the event must be (None: the main calendar). An event in another calendar
    (the user switched destination) is first deleted there, then created here: each step is
    recorded, so an interrupted move resumes and never leaves two copies.
    ``cleanup_body``: when the event must not exist but a create of it may have been applied
    with its answer lost (``maybe_created``), the same idempotent create is sent again with this
    body: it answers with that event (or makes one), which the next round deletes.
    Every Operation's ``meta["calendar"]`` names the calendar it goes to.
    """
    if body is None:
        if link.external_id and not forget:
            return Operation(key=key, action=DELETE, external_id=link.external_id, meta={"calendar": link.calendar})
        if cleanup_body is not None and not forget and maybe_created(link):
            return Operation(
                key=key, action=CREATE, body=cleanup_body,
                client_id=client_id_for(link.generation) if client_id_for else None,
                meta={"hash": None, "resent": True, "calendar": calendar, "cleanup": True},
            )
        return Transition(SYNCED, generation=link.generation)
    if link.external_id and link.calendar != calendar:
        return Operation(
            key=key, action=DELETE, external_id=link.external_id, meta={"calendar": link.calendar, "move": True}
        )
    body_hash = payload.body_hash(body)
    if not link.external_id:
        return Operation(
            key=key,
            action=CREATE,
            body=body,
            client_id=client_id_for(link.generation) if client_id_for else None,
            # resent: an earlier try may have reached the provider (a worker died, or it failed).
            meta={"hash": body_hash, "resent": bool(link.create_sent or link.attempts), "calendar": calendar},
        )
    if body_hash == link.pushed_hash:
        # Coalescing: whatever happened since the last push, the provider already shows this.
        return Transition(
            SYNCED, external_id=link.external_id, pushed_hash=body_hash, generation=link.generation, calendar=calendar
        )
    return Operation(
        key=key, action=UPDATE, body=body, external_id=link.external_id,
        # resent: an earlier try failed and may have been applied (its answer lost).
        meta={"hash": body_hash, "resent": bool(link.attempts), "calendar": calendar},
    )


def moved_out(link, message=None):
    """The event left its calendar (moved, or the calendar itself is gone): create it anew."""
    return Transition(RECREATE, generation=link.generation + 1, message=message)


def rejected(message):
    """The class cannot be expressed for the provider (a payload error): nothing is sent."""
    return Transition(REJECTED, message=message)


def paused(message):
    """The account cannot push now."""
    return Transition(PAUSED, message=message)


def waiting(delay, message):
    """Nothing was sent (settings incomplete or unsafe): try again later."""
    return Transition(RETRYING, delay=delay, message=message)


def failed(link, message, rng=random):
    """The account's push failed in a way no provider outcome describes (an answer its module
    did not expect, a bug): try again after a backoff that grows with the link's attempts."""
    return Transition(RETRYING, delay=policy.backoff_delay(link.attempts + 1, rng=rng), message=message)


FAILING = (Kind.TRANSIENT, Kind.RATE_LIMITED, Kind.AUTH_REVOKED)
# Seconds within which an account that failed transiently is tried again, whatever its links'
# backoff: the end of an outage is seen within this, and every waiting change follows at once.
PROBE_DELAY = 20


def answered_again(outcomes):
    """Whether one push's outcomes show the provider serving the account: something answered,
    and nothing failed transiently, throttled or refused the consent. Links of the account that
    wait on a transient failure's backoff are then due at once (``outbox.resume_account``)."""
    kinds = {outcome.kind for outcome in outcomes}
    return bool(kinds) and not kinds & set(FAILING)


def failed_transiently(outcomes):
    """Whether one push's outcomes include a transient failure: the account keeps one link due
    within the first backoff (``outbox.keep_probe``), which sees the outage end."""
    return any(outcome.kind is Kind.TRANSIENT for outcome in outcomes)


def throttle_capped(outcome, delay):
    """A throttle without Retry-After holds the whole account, yet the link's attempts that set
    its backoff count outages and waits too (16 attempts: up to an hour): without a time from
    the provider, the account is tried again within ``PROBE_DELAY``."""
    if outcome.kind is Kind.RATE_LIMITED and outcome.retry_after is None:
        return min(delay, PROBE_DELAY)
    return delay


def calendar_failed(outcome, rng=random):
    """The dedicated calendar could not be made: what the classes waiting for it do meanwhile."""
    kind = outcome.kind
    message = outcome.message or kind.value
    if kind is Kind.AUTH_REVOKED:
        return Transition(PAUSED, message=message, reconnect=message)
    if kind in (Kind.RATE_LIMITED, Kind.TRANSIENT):
        delay = throttle_capped(outcome, policy.retry_delay(outcome, 1, rng=rng))
        return Transition(RETRYING, delay=delay, message=message, hold=delay if kind is Kind.RATE_LIMITED else None)
    return Transition(RETRYING, delay=policy.MAX_DELAY, message=message, account_error=message)


def calendar_suspect(op, outcome):
    """Whether an answer may mean that the calendar itself is gone (a 404 on a create too)."""
    return op.meta.get("calendar") is not None and (outcome.kind is Kind.GONE or outcome.status == 404)


def settle(op, outcome, link, rng=random, create_sends_current_body=False):
    """The Transition an ``outcome`` of ``op`` leads to, for a link in state ``link``.

    ``create_sends_current_body``: the provider's retried create writes the body it sends
    (``Provider.create_sends_current_body``), so its success needs no verifying update.
    """
    kind = outcome.kind
    if op.meta.get("move") and kind in (Kind.DONE, Kind.GONE):
        # Removed from the old calendar: the next round creates it in the new one.
        return moved_out(link)
    if op.meta.get("cleanup") and kind is Kind.DONE:
        # The event a lost create made, found (or made) again: keep its id, stay dirty, so that
        # the next round deletes it.
        return Transition(
            UNVERIFIED, external_id=outcome.external_id or op.external_id,
            generation=link.generation, pushed=True, calendar=op.meta.get("calendar"),
        )
    retried_create = op.action == CREATE and (outcome.status == 409 or link.attempts or op.meta.get("resent"))
    if kind is Kind.DONE and retried_create and not create_sends_current_body:
        # A retried create may be answered with the event an earlier try made from an older
        # version of the class (a duplicate check that answers with the first event). Keep its id;
        # the next round sends the current body as an update.
        return Transition(
            UNVERIFIED, external_id=outcome.external_id or op.external_id,
            generation=link.generation, pushed=True, calendar=op.meta.get("calendar"),
        )
    if kind is Kind.DONE or (kind is Kind.GONE and op.action == DELETE):
        external_id = None if op.action == DELETE else (outcome.external_id or op.external_id)
        return Transition(
            SYNCED, external_id=external_id, pushed_hash=op.meta.get("hash") if external_id else None,
            generation=link.generation, pushed=True, calendar=op.meta.get("calendar") if external_id else None,
        )
    if kind is Kind.GONE:
        # Odoo is the truth: the event vanished at the provider (or its id is burned), recreate.
        return Transition(RECREATE, generation=link.generation + 1, message=outcome.message)
    if kind in (Kind.RATE_LIMITED, Kind.TRANSIENT):
        delay = throttle_capped(outcome, policy.retry_delay(outcome, link.attempts + 1, rng=rng))
        return Transition(
            RETRYING, delay=delay, message=outcome.message or kind.value,
            hold=delay if kind is Kind.RATE_LIMITED else None,
        )
    if kind is Kind.AUTH_REVOKED:
        return Transition(PAUSED, message=outcome.message, reconnect=outcome.message or "access revoked")
    return Transition(REJECTED, message=outcome.message or kind.value, account_error=outcome.message)
