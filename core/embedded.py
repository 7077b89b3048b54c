"""The in-process scheduler of `marquee run`: one daemon thread per enabled provider, no Redis.

Same job, same schedule and same retry policy as Celery beat and workers; only the waiting differs.
"""

import logging
import threading
import time

from core.jobs import JobContext, run_fetch
from core.schedule import ScheduledFetch, plan

log = logging.getLogger("marquee.embedded")
TRIGGER = "embedded"


class EmbeddedScheduler:
    def __init__(self, context: JobContext) -> None:
        self.context = context
        self.fetches = plan(context.registry.enabled())
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

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
        log.info(
            "embedded scheduler started",
            extra={
                "providers": ",".join(f"{f.provider}/{f.interval_seconds}s" for f in self.fetches)
            },
        )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self, fetch: ScheduledFetch) -> None:
        """Fetch at once, then every interval, measured from the start of each first attempt."""
        while not self._stop.is_set():
            started = time.monotonic()
            self._run_with_retries(fetch)
            remaining = fetch.interval_seconds - (time.monotonic() - started)
            self._stop.wait(max(0.0, remaining))

    def _run_with_retries(self, fetch: ScheduledFetch) -> None:
        attempt, first_started = 1, time.time()
        while not self._stop.is_set():
            try:
                result = run_fetch(
                    self.context,
                    fetch.provider,
                    trigger=TRIGGER,
                    attempt=attempt,
                    first_started=first_started,
                )
            except Exception:
                # The job could not even record its run (database down): try at the next interval.
                log.exception("fetch job crashed", extra={"provider": fetch.provider})
                return
            if result.retry_in is None or self._stop.wait(result.retry_in):
                return
            attempt += 1
