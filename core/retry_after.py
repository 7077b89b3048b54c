"""How long a provider's Retry-After is honoured: within a cap, and without overflowing.

A header asking for years is a misconfigured or hostile provider; obeying it would skip every
scheduled run until then, with only an operator's `marquee fetch` to lift it.
"""

import math
from datetime import datetime, timedelta

# The longest wait honoured: ten intervals, but never less than an hour nor more than a day.
CAP_INTERVALS = 10
CAP_MIN_SECONDS = 3600.0
CAP_MAX_SECONDS = 86_400.0


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
