"""When each provider is fetched, as plain data: Celery beat and the embedded scheduler read it.

No Celery import here: the beat schedule is a dict a test can build from settings alone.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.plugins.registry import ConfiguredProvider
from core.scheduling.retry import retry_span_seconds
from core.store.models import Trigger

TASK_FETCH_PROVIDER = "marquee.fetch_provider"
# Retention: one entry for all providers (each pass takes its provider's lock in turn).
TASK_RETENTION = "marquee.retention"
RETENTION_ENTRY = "retention"

# A queued run older than this share of its interval is dropped: the next one is on its way.
EXPIRES_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class ScheduledFetch:
    provider: str
    interval_seconds: int

    @property
    def expires_seconds(self) -> float:
        return round(self.interval_seconds * EXPIRES_FRACTION, 3)

    @property
    def retry_span_seconds(self) -> float:
        return retry_span_seconds(self.interval_seconds)


def plan(entries: Iterable[ConfiguredProvider]) -> list[ScheduledFetch]:
    """One scheduled fetch per enabled provider, sorted by name."""
    return sorted(
        (
            ScheduledFetch(entry.name, entry.settings.interval_seconds)
            for entry in entries
            if entry.enabled
        ),
        key=lambda fetch: fetch.provider,
    )


def beat_entry_name(provider: str) -> str:
    return f"fetch-{provider}"


def build_beat_schedule(
    entries: Iterable[ConfiguredProvider], *, queue: str, retention_seconds: int | None = None
) -> dict[str, Any]:
    """Celery's `beat_schedule`: one periodic fetch per enabled provider, and retention every
    `retention_seconds` when given (when some provider has a retention stage set)."""
    schedule = {
        beat_entry_name(fetch.provider): {
            "task": TASK_FETCH_PROVIDER,
            "schedule": float(fetch.interval_seconds),
            "args": (fetch.provider,),
            "kwargs": {"trigger": Trigger.SCHEDULE.value},
            # Nobody reads a scheduled run's result (the run record is the record), so none is
            # stored, and sending one never waits on the result store.
            "options": {"expires": fetch.expires_seconds, "queue": queue, "ignore_result": True},
        }
        for fetch in plan(entries)
    }
    if retention_seconds is not None:
        schedule[RETENTION_ENTRY] = {
            "task": TASK_RETENTION,
            "schedule": float(retention_seconds),
            "kwargs": {"trigger": Trigger.SCHEDULE.value},
            "options": {
                "expires": round(retention_seconds * EXPIRES_FRACTION, 3),
                "queue": queue,
                "ignore_result": True,
            },
        }
    return schedule
