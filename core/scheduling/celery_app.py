"""The Celery app and its one thin task. The only module that imports Celery.

Run with `marquee worker` / `marquee beat` (or `celery -A core.scheduling.celery_app worker|beat`).
"""

import logging
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from celery.beat import ScheduleEntry, Scheduler
from celery.signals import setup_logging

from core.errors import ConfigError
from core.logs import configure_logging
from core.retention.policy import policies
from core.scheduling.context import process_context
from core.scheduling.job import run_fetch
from core.scheduling.retention import run_retention
from core.scheduling.schedule import TASK_FETCH_PROVIDER, TASK_RETENTION, build_beat_schedule
from core.settings import Settings, get_settings
from core.store.models import Trigger

RESULT_EXPIRES_SECONDS = 24 * 3600
beat_log = logging.getLogger("marquee.beat")


def require_redis(settings: Settings) -> str:
    """The Redis URL Celery needs; a clear ConfigError when it is not set."""
    if not settings.REDIS_URL:
        raise ConfigError(
            "REDIS_URL is not set: workers and beat need Redis (`marquee run` needs none)"
        )
    return settings.REDIS_URL


def configure(celery: Celery, settings: Settings) -> None:
    """Redis is the broker and the result store; every key carries MARQUEE_REDIS_KEY_PREFIX."""
    redis_url = require_redis(settings)
    prefix = {"global_keyprefix": settings.MARQUEE_REDIS_KEY_PREFIX}
    celery.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        broker_transport_options=prefix,
        result_backend_transport_options=prefix,
        broker_connection_retry_on_startup=True,
        # Keep reconnecting however long Redis is down, one log line per attempt (Celery's own).
        broker_connection_max_retries=None,
        task_default_queue=settings.MARQUEE_CELERY_QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=RESULT_EXPIRES_SECONDS,
        # One fetch at a time per worker process: a long download must not hoard queued runs.
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
        beat_scheduler=f"{__name__}:ProviderScheduler",
    )


def create_celery_app(settings: Settings) -> Celery:
    """A client app configured from `settings`, e.g. to send tasks from another process."""
    celery = Celery("marquee", set_as_current=False)
    configure(celery, settings)
    return celery


class ProviderScheduler(Scheduler):
    """Beat's schedule, built from the enabled providers when beat starts, held in memory.

    In memory, so beat needs no writable state file; a (re)started beat fetches everything at once.
    """

    def setup_schedule(self) -> None:
        context = process_context()
        settings = context.settings
        retention = any(policy.active for policy in policies(settings, context.registry).values())
        providers = build_beat_schedule(
            context.registry.enabled(),
            queue=settings.MARQUEE_CELERY_QUEUE,
            retention_seconds=settings.MARQUEE_RETENTION_INTERVAL_SECONDS if retention else None,
        )
        self.app.conf.beat_schedule = providers
        super().setup_schedule()
        now = self.app.now()
        for name, entry in providers.items():
            self.schedule[name].last_run_at = now - timedelta(seconds=entry["schedule"])

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        """Send one due run; with Redis down, say so in one line (Celery logs a whole traceback)
        and carry on: the next one is sent on schedule."""
        beat_log.info("sending due task", extra={"entry": entry.name})
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            cause = exc.__cause__ or exc
            beat_log.error(
                "could not send a scheduled fetch; the next is sent on schedule",
                extra={"entry": entry.name, "error": str(cause)},
            )


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    configure_logging(get_settings())


# Configured on first use rather than at import, so importing this module never needs Redis.
app = Celery("marquee")


@app.on_configure.connect
def _configure_from_settings(sender: Celery, **_: Any) -> None:
    configure(sender, get_settings())


@app.task(name=TASK_RETENTION)
def retention_task(trigger: str = Trigger.SCHEDULE) -> list[dict[str, Any]]:
    """Apply every provider's retention policy (each pass under its provider's lock)."""
    results = run_retention(process_context(), trigger=Trigger(trigger))
    return [
        {"provider": r.provider, "outcome": r.outcome, "error": r.error, **r.counts.as_dict()}
        for r in results
    ]


@app.task(name=TASK_FETCH_PROVIDER, bind=True, max_retries=None)
def fetch_provider_task(
    self: Task,
    provider: str,
    trigger: str = Trigger.SCHEDULE,
    first_started: float | None = None,
    watch: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Run the fetch job; on a transient failure (or a lock holder to look in on), come back
    after the delay it names."""
    result = run_fetch(
        process_context(),
        provider,
        trigger=Trigger(trigger),
        attempt=self.request.retries + 1,
        first_started=first_started,
        watch=watch,
    )
    if result.retry_in is not None:
        # The retry is bounded by the retry span, not by the first message's expiry.
        raise self.retry(
            kwargs={
                "trigger": trigger,
                "first_started": result.first_started,
                "watch": result.watch,
            },
            countdown=result.retry_in,
            expires=None,
        )
    return result.as_dict()
