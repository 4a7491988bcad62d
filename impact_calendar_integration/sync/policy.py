"""Retry policy: when to try a failed push again."""

import math
import random

from .outcomes import Kind

BASE_DELAY = 30  # seconds before the first retry of a transient failure
MAX_DELAY = 3600  # never wait more than an hour between tries
MIN_RATE_LIMIT_DELAY = 1


def clamp_delay(value, default=None):
    """A delay in seconds as a finite number in [0, MAX_DELAY], or ``default`` when ``value`` is
    not a number (None, garbage, NaN).

    Every wait a provider asks for goes through here: a hostile or broken server may send
    ``Retry-After: 100000000000000``, which PostgreSQL cannot add to a timestamp.
    """
    if isinstance(value, bool):
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    if math.isnan(seconds):
        return default
    return min(max(seconds, 0.0), float(MAX_DELAY))


def backoff_delay(attempts, base=BASE_DELAY, cap=MAX_DELAY, rng=random):
    """Exponential backoff with "full jitter" (AWS architecture blog): uniform in [base/2, min(cap, base*2^n)].

    The floor keeps a storm of failures from retrying at once; the jitter spreads accounts apart.
    """
    attempts = min(max(int(attempts), 1), 32)  # 2**31 * base is far above any cap
    ceiling = min(cap, base * (2 ** (attempts - 1)))
    floor = min(base / 2, ceiling)
    return rng.uniform(floor, ceiling)


def retry_delay(outcome, attempts, rng=random):
    """Seconds to wait before the next try, or None when retrying would not help."""
    if outcome.kind is Kind.RATE_LIMITED:
        if outcome.retry_after is not None:
            return max(clamp_delay(outcome.retry_after, MAX_DELAY), MIN_RATE_LIMIT_DELAY)
        return backoff_delay(attempts, base=10, rng=rng)
    if outcome.kind is Kind.TRANSIENT:
        if outcome.retry_after is not None:  # e.g. 503 with Retry-After: the server knows best
            return max(clamp_delay(outcome.retry_after, MAX_DELAY), MIN_RATE_LIMIT_DELAY)
        return backoff_delay(attempts, rng=rng)
    return None
