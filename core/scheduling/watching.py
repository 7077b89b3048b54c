"""A scheduled run that finds its provider's lock held records the skip, with who holds it, and
looks in on the holder again just after the holder's next renewal was due.

A holder that renewed (or finished) is left alone, without another record. One that did not is
dead or frozen: the run tries again as soon as its lease lapses, so a killed worker's provider is
fetched again within its lease, not at the first scheduled run after it.
"""

import logging
import time
import uuid
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.runs import records
from core.scheduling.lease import RENEWALS_PER_LEASE
from core.scheduling.locks import RunLock
from core.scheduling.schedule import EXPIRES_FRACTION
from core.store.db import transaction
from core.store.models import FetchRun, Outcome, Reason, Trigger

if TYPE_CHECKING:
    from core.scheduling.context import JobContext
    from core.scheduling.outcome import JobResult

log = logging.getLogger("marquee.jobs")
# Look in just after the moment, not on it: a renewal takes a few milliseconds to be recorded.
MARGIN_SECONDS = 0.5


def _iso(run: FetchRun | None) -> str | None:
    return run.heartbeat_at.isoformat() if run is not None and run.heartbeat_at else None


def holder_carries_on(
    context: "JobContext", result: "JobResult", watch: dict[str, str | None]
) -> bool:
    """True when the holder seen before renewed its lease or ended: leave the provider to it."""
    run_id = watch.get("run_id")
    if run_id is None:
        return False
    with transaction(context.engine) as session:
        holder = session.get(FetchRun, uuid.UUID(run_id))
        if holder is None or (
            holder.outcome == Outcome.RUNNING and _iso(holder) == watch.get("heartbeat_at")
        ):
            return False
        alive = holder.outcome == Outcome.RUNNING
    result.outcome = Outcome.SKIPPED
    result.reason = Reason.LOCK_HELD
    result.error = f"{records.LOCK_HELD} (run {run_id} {'is alive' if alive else 'has ended'})"
    log.info(
        "lock holder checked again: it carries on" if alive else "lock holder checked again: ended",
        extra={"provider": result.provider, "holder_run_id": run_id},
    )
    return True


def skip_lock_held(
    context: "JobContext",
    result: "JobResult",
    trigger: Trigger,
    lock: RunLock,
    *,
    record: bool,
    may_watch: bool,
) -> None:
    """Skip because another run holds the lock: say who, and plan the look-in if allowed."""
    with transaction(context.engine) as session:
        holder = records.lock_holder(session=session, provider=result.provider)
        text = records.lock_held_text(holder)
        if record:
            run = records.record_not_run(
                session=session,
                provider=result.provider,
                trigger=trigger,
                attempt=result.attempt,
                reason=Reason.LOCK_HELD,
                error=text,
            )
            result.run_id = str(run.id)
        watch = {"run_id": str(holder.id) if holder else None, "heartbeat_at": _iso(holder)}
        lease_left = (
            (holder.lease_expires_at - context.clock()).total_seconds()
            if holder is not None and holder.lease_expires_at is not None
            else lock.expires_in()
        )
        holder_name = holder.holder if holder else None
    result.outcome, result.reason, result.error = Outcome.SKIPPED, Reason.LOCK_HELD, text
    if record:
        log.info(
            "run skipped: another run holds the lock",
            extra={
                "provider": result.provider,
                "run_id": result.run_id,
                "holder": holder_name,
                "holder_run_id": watch["run_id"],
            },
        )
    if may_watch and lease_left is not None:
        delay = _look_in_delay(context, result, lease_left)
        if delay is not None:
            result.retry_in, result.watch = delay, watch


def _look_in_delay(context: "JobContext", result: "JobResult", lease_left: float) -> float | None:
    """Just after the holder's next renewal is due or its lease lapses, whichever comes first;
    None once that is past the point where the next scheduled run takes over."""
    renew_every = context.settings.MARQUEE_LEASE_SECONDS / RENEWALS_PER_LEASE
    delay = round(max(0.0, min(lease_left, renew_every)) + MARGIN_SECONDS, 3)
    try:
        interval = context.registry.configured(result.provider).settings.interval_seconds
    except ConfigError:
        return None
    if time.time() - result.first_started + delay > interval * EXPIRES_FRACTION:
        return None
    return delay
