"""The retry policy, in one place: which delays a transient failure earns, how long retries may go
on, and how long a provider's Retry-After is honoured.

A header asking for years is a misconfigured or hostile provider; obeying it would skip every
scheduled run until then, with only an operator's `marquee fetch` to lift it.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

# Retries must start within this share of the interval, leaving room for the last attempt itself.
RETRY_SPAN_FRACTION = 0.5
# Jitter keeps each delay within [75%, 100%] of its backoff step, so delays still grow.
JITTER_FLOOR = 0.75
# The longest Retry-After honoured: ten intervals, but never less than an hour nor more than a day.
CAP_INTERVALS = 10
CAP_MIN_SECONDS = 3600.0
CAP_MAX_SECONDS = 86_400.0


def retry_span_seconds(interval_seconds: float) -> float:
    """How long after a run's first attempt its retries may still start."""
    return interval_seconds * RETRY_SPAN_FRACTION


def cap_seconds(interval_seconds: float) -> float:
    return min(max(interval_seconds * CAP_INTERVALS, CAP_MIN_SECONDS), CAP_MAX_SECONDS)


def honoured_wait(retry_after: float | None, *, interval_seconds: float) -> float | None:
    """The seconds we wait for a Retry-After of `retry_after`: no hint stays None."""
    if retry_after is None or math.isnan(retry_after):
        return None
    return min(max(retry_after, 0.0), cap_seconds(interval_seconds))


def not_before(now: datetime, wait_seconds: float) -> datetime:
    # A honoured wait is at most a day, far inside what datetime can add.
    return now + timedelta(seconds=wait_seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped, never retrying past the provider's retry span."""

    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float

    def delay(
        self,
        *,
        attempt: int,
        elapsed_seconds: float,
        span_seconds: float,
        retry_after: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when it is time to give up."""
        if attempt >= self.max_attempts:
            return None
        step = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        delay = step * (JITTER_FLOOR + (1 - JITTER_FLOOR) * rng())
        if retry_after is not None:
            delay = max(delay, retry_after)
        if elapsed_seconds + delay > span_seconds:
            return None
        return round(delay, 3)
