"""When each provider is fetched, as plain data: Celery beat and the embedded scheduler read it.

No Celery import here: the beat schedule is a dict a test can build from settings alone.
"""

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.registry import ProviderEntry

TASK_FETCH_PROVIDER = "marquee.fetch_provider"

# A queued run older than this share of its interval is dropped: the next one is on its way.
EXPIRES_FRACTION = 0.9
# Retries must start within this share of the interval, leaving room for the last attempt itself.
RETRY_SPAN_FRACTION = 0.5
# Jitter keeps each delay within [75%, 100%] of its backoff step, so delays still grow.
JITTER_FLOOR = 0.75


@dataclass(frozen=True, slots=True)
class ScheduledFetch:
    provider: str
    interval_seconds: int

    @property
    def expires_seconds(self) -> float:
        return round(self.interval_seconds * EXPIRES_FRACTION, 3)

    @property
    def retry_span_seconds(self) -> float:
        return self.interval_seconds * RETRY_SPAN_FRACTION


def plan(entries: Iterable[ProviderEntry]) -> list[ScheduledFetch]:
    """One scheduled fetch per enabled provider whose settings are valid, sorted by name."""
    return sorted(
        (
            ScheduledFetch(entry.name, entry.settings.interval_seconds)
            for entry in entries
            if entry.enabled and entry.settings is not None
        ),
        key=lambda fetch: fetch.provider,
    )


def beat_entry_name(provider: str) -> str:
    return f"fetch-{provider}"


def build_beat_schedule(entries: Iterable[ProviderEntry], *, queue: str) -> dict[str, Any]:
    """Celery's `beat_schedule`: one periodic fetch per enabled provider."""
    return {
        beat_entry_name(fetch.provider): {
            "task": TASK_FETCH_PROVIDER,
            "schedule": float(fetch.interval_seconds),
            "args": (fetch.provider,),
            "kwargs": {"trigger": "schedule"},
            "options": {"expires": fetch.expires_seconds, "queue": queue},
        }
        for fetch in plan(entries)
    }


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
