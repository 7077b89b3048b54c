"""A live run's lease: a heartbeat thread renews its lock and its record, and a fence refuses the
run's writes once it has lost them, so a run that froze past its lease never writes over a newer one.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from core.errors import MarqueeError
from core.runs import records
from core.scheduling.locks import LockUnavailable, RunLock
from core.store.models import FetchRun, Outcome

log = logging.getLogger("marquee.lease")
# The heartbeat renews three times per lease: two renewals may fail before it lapses.
RENEWALS_PER_LEASE = 3
# A renewal must not wait on a busy database past its own turn.
RENEW_WAIT_FRACTION = 0.5


class LeaseLost(MarqueeError):
    """The run no longer holds its provider: another run may have taken over."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while a run was in flight."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def holder_name() -> str:
    """Who runs a fetch, as operators find it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """Renews `lock` and the run's record every third of `lease_seconds` while the run is alive."""

    def __init__(
        self,
        *,
        run_id: uuid.UUID,
        provider: str,
        lock: RunLock,
        engine: Engine,
        lease_seconds: float,
        max_hold_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id, self.provider, self.lock, self.engine = run_id, provider, lock, engine
        self.lease_seconds, self.max_hold_seconds = lease_seconds, max_hold_seconds
        self._monotonic = monotonic
        self._started = monotonic()
        self._stop = threading.Event()
        self._lost = threading.Event()
        self.lost_reason: str | None = None
        self._thread: threading.Thread | None = None
        self._unreachable_logged = False

    @property
    def renew_every(self) -> float:
        return self.lease_seconds / RENEWALS_PER_LEASE

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def start(self) -> "Lease":
        self._thread = threading.Thread(
            target=self._beat, name=f"marquee-lease-{self.provider}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.renew_every + 1)

    def lose(self, reason: str) -> None:
        """Give the lease up: writes are refused from now on, and the lock is released."""
        if not self._lost.is_set():
            self.lost_reason = reason
            self._lost.set()
            log.warning(
                "run lease lost",
                extra={"provider": self.provider, "run_id": str(self.run_id), "reason": reason},
            )
        self._stop.set()
        self.lock.release()

    def _beat(self) -> None:
        while not self._stop.wait(self.renew_every):
            self.tick()

    def tick(self) -> None:
        """One renewal: the lock first, then the record, which only follows a renewed lock."""
        if self.lost:
            return
        if self._monotonic() - self._started > self.max_hold_seconds:
            self.lose(
                f"held its provider longer than MARQUEE_LOCK_TIMEOUT_SECONDS "
                f"({self.max_hold_seconds:g} s)"
            )
            return
        try:
            held = self.lock.renew()
        except LockUnavailable as exc:
            # Nobody can take the lock while its store is unreachable; the record is not renewed,
            # so the lease lapses in step with the lock if the outage outlasts it.
            if not self._unreachable_logged:
                self._unreachable_logged = True
                log.warning(
                    "run lease not renewed: its lock cannot be reached",
                    extra={
                        "provider": self.provider,
                        "run_id": str(self.run_id),
                        "error": str(exc),
                    },
                )
            return
        if not held:
            self.lose("another run took its lock over after its lease lapsed")
            return
        self._unreachable_logged = False
        try:
            with _bounded_session(self.engine, self.renew_every * RENEW_WAIT_FRACTION) as session:
                renewed = records.renew_lease(
                    session=session, run_id=self.run_id, lease_seconds=self.lease_seconds
                )
        except SQLAlchemyError as exc:
            log.warning(
                "run lease record not renewed",
                extra={
                    "provider": self.provider,
                    "run_id": str(self.run_id),
                    "error": type(exc).__name__,
                },
            )
            return
        if not renewed:
            self.lose("its record was closed by another run")

    def fenced(self, engine: Engine) -> Engine:
        """`engine`, sharing its pool, whose every commit first checks that this run still holds
        its lease and its record is still open: a lost run's writes roll back."""
        fenced = engine.execution_options()
        sa.event.listen(fenced, "commit", self._check_before_commit)
        return fenced

    def _check_before_commit(self, connection: Connection) -> None:
        if self.lost:
            raise LeaseLost(f"lease lost: {self.lost_reason}; nothing this run fetched was written")
        outcome = connection.execute(
            sa.select(col(FetchRun.outcome))
            .where(col(FetchRun.id) == self.run_id)
            .with_for_update()
        ).scalar()
        if outcome != Outcome.RUNNING:
            self.lose("its record was closed by another run")
            raise LeaseLost(f"lease lost: {self.lost_reason}; nothing this run fetched was written")


@contextmanager
def _bounded_session(engine: Engine, seconds: float) -> Iterator[Session]:
    """A transaction whose waits for locks (and statements) end after `seconds`."""
    milliseconds = max(100, int(seconds * 1000))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Driver-level, so SQLAlchemy begins no transaction; set back before the pool has it.
            raw = connection.connection.driver_connection
            previous = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.execute(f"PRAGMA busy_timeout = {milliseconds}")
        try:
            with Session(bind=connection) as session, session.begin():
                if not sqlite:
                    session.execute(sa.text(f"SET LOCAL lock_timeout = {milliseconds}"))
                    session.execute(sa.text(f"SET LOCAL statement_timeout = {milliseconds}"))
                yield session
        finally:
            if sqlite:
                raw.execute(f"PRAGMA busy_timeout = {int(previous)}")


class ActiveRuns:
    """The leases of the runs in flight in this process, so a shutdown can close them."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._leases: dict[uuid.UUID, Lease] = {}

    def add(self, lease: Lease) -> None:
        with self._guard:
            self._leases[lease.run_id] = lease

    def discard(self, lease: Lease) -> None:
        with self._guard:
            self._leases.pop(lease.run_id, None)

    def providers(self) -> list[str]:
        with self._guard:
            return sorted(lease.provider for lease in self._leases.values())

    def interrupt(self, engine: Engine, why: str) -> list[str]:
        """Close every run still in flight as interrupted, refusing its writes from now on."""
        with self._guard:
            leases = list(self._leases.values())
        if not leases:
            return []
        error = f"interrupted: {why}"
        for lease in leases:
            lease.lose(error)
        with Session(engine) as session, session.begin():
            records.interrupt_runs(
                session=session, run_ids=[lease.run_id for lease in leases], error=error
            )
        return sorted(lease.provider for lease in leases)
