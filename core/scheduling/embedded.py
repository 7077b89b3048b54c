"""The in-process scheduler of `marquee run`: one daemon thread per enabled provider, no Redis.

Same job, same schedule and same retry policy as Celery beat and workers; only the waiting differs.
"""

import logging
import threading
import time

from core.retention.policy import policies
from core.scheduling.context import JobContext
from core.scheduling.job import run_fetch
from core.scheduling.retention import run_retention
from core.scheduling.schedule import ScheduledFetch, plan
from core.store.models import Trigger

log = logging.getLogger("marquee.embedded")
# How long stopping waits for fetches in flight, all providers together: under the 10 s a container
# gets between SIGTERM and SIGKILL. A fetch still running then is closed as interrupted.
STOP_TIMEOUT_SECONDS = 8.0
STOPPED = "the scheduler stopped before the fetch finished"


class EmbeddedScheduler:
    def __init__(self, context: JobContext) -> None:
        self.context = context
        self.fetches = plan(context.registry.enabled())
        # Retention, when some provider has a stage set: at start, then every interval.
        self.retention = any(
            p.active for p in policies(context.settings, context.registry).values()
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fetching: set[str] = set()  # providers whose fetch is in flight
        self._fetching_guard = threading.Lock()

    def start(self) -> "EmbeddedScheduler":
        for fetch in self.fetches:
            thread = threading.Thread(
                target=self._loop,
                args=(fetch,),
                name=f"marquee-fetch-{fetch.provider}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        if self.retention:
            thread = threading.Thread(
                target=self._retention_loop, name="marquee-retention", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info(
            "embedded scheduler started",
            extra={
                "providers": ",".join(f"{f.provider}/{f.interval_seconds}s" for f in self.fetches),
                "retention": (
                    f"{self.context.settings.MARQUEE_RETENTION_INTERVAL_SECONDS}s"
                    if self.retention
                    else "off"
                ),
            },
        )
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop scheduling, and let fetches in flight finish and record their outcome."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if busy := self._in_flight():
            log.info("waiting for fetches in flight", extra={"providers": ",".join(busy)})
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._in_flight():
            # Their threads die with the process; their records must not stay `running`.
            cut = self.context.active.interrupt(self.context.engine, STOPPED)
            log.warning(
                "stopped with fetches still running; closed them as interrupted",
                extra={"providers": ",".join(cut or self._in_flight())},
            )

    def _in_flight(self) -> list[str]:
        with self._fetching_guard:
            return sorted(self._fetching)

    def _mark(self, provider: str, *, fetching: bool) -> None:
        with self._fetching_guard:
            (self._fetching.add if fetching else self._fetching.discard)(provider)

    def _loop(self, fetch: ScheduledFetch) -> None:
        """Fetch at once, then every interval, measured from the start of each first attempt."""
        while not self._stop.is_set():
            started = time.monotonic()
            self._run_with_retries(fetch)
            remaining = fetch.interval_seconds - (time.monotonic() - started)
            self._stop.wait(max(0.0, remaining))

    def _retention_loop(self) -> None:
        """Each pass waits for its provider's fetch in flight (the same lock); stopping ends a pass
        at its next batch, recorded as failed (never left `running`): the store is consistent, and
        the next pass carries on."""
        every = self.context.settings.MARQUEE_RETENTION_INTERVAL_SECONDS
        while not self._stop.is_set():
            try:
                run_retention(self.context, trigger=Trigger.EMBEDDED, stop=self._stop)
            except Exception:
                log.exception("retention pass crashed; trying again at the next interval")
            self._stop.wait(every)

    def _run_with_retries(self, fetch: ScheduledFetch) -> None:
        attempt, first_started = 1, time.time()
        watch: dict[str, str | None] | None = None
        while not self._stop.is_set():
            self._mark(fetch.provider, fetching=True)
            try:
                result = run_fetch(
                    self.context,
                    fetch.provider,
                    trigger=Trigger.EMBEDDED,
                    attempt=attempt,
                    first_started=first_started,
                    watch=watch,
                )
            except Exception:
                # The job could not even record its run (database down): try at the next interval.
                log.exception("fetch job crashed", extra={"provider": fetch.provider})
                return
            finally:
                self._mark(fetch.provider, fetching=False)
            if result.retry_in is None or self._stop.wait(result.retry_in):
                return
            attempt, watch = attempt + 1, result.watch
