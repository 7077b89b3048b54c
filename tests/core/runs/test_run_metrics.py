"""What the run record tells metrics and status: skips by reason (kept after pruning), the age of
the oldest running run, lapsed leases, and which runs still speak for a provider's Retry-After."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.runs import history, records
from core.runs.metrics import StoreCollector
from core.store.db import transaction
from core.store.models import FetchRun

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def add_run(
    engine: Engine,
    outcome: str,
    *,
    reason: str | None = None,
    age: timedelta = timedelta(0),
    lease_left: timedelta | None = None,
    not_before: datetime | None = None,
) -> None:
    started = datetime.now(UTC) - age
    with transaction(engine) as session:
        session.add(
            FetchRun(
                provider="fever",
                trigger="schedule",
                started_at=started,
                finished_at=None if outcome == "running" else started,
                outcome=outcome,
                reason=reason,
                lease_expires_at=datetime.now(UTC) + lease_left if lease_left else None,
                not_before=not_before,
            )
        )


def scrape(engine: Engine) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in StoreCollector(engine, timeout_seconds=10).collect()
        for sample in family.samples
    }


def skips(samples: Samples, reason: str) -> float:
    return samples.get(
        ("marquee_fetch_skips_total", (("provider", "fever"), ("reason", reason))), 0
    )


def test_metrics_count_skips_by_reason_and_keep_the_counts_after_pruning(engine: Engine) -> None:
    for age_days in (40, 39, 1):
        add_run(engine, "skipped", reason="lock_held", age=timedelta(days=age_days))
    add_run(engine, "skipped", reason="retry_after", age=timedelta(days=38))
    add_run(engine, "success", age=timedelta(days=2))
    before = scrape(engine)

    with transaction(engine) as session:
        pruned = history.prune(session=session, provider="fever", keep_days=30)
    after = scrape(engine)

    assert pruned == 3
    for samples in (before, after):
        assert (skips(samples, "lock_held"), skips(samples, "retry_after")) == (3, 1)
        runs = ("marquee_fetch_runs_total", (("outcome", "skipped"), ("provider", "fever")))
        assert samples[runs] == 4


def test_metrics_show_the_oldest_running_run_and_how_many_leases_lapsed(engine: Engine) -> None:
    add_run(engine, "running", age=timedelta(seconds=400), lease_left=timedelta(seconds=-370))
    add_run(engine, "running", age=timedelta(seconds=5), lease_left=timedelta(seconds=25))

    samples = scrape(engine)

    fever = (("provider", "fever"),)
    assert 400 <= samples[("marquee_fetch_oldest_running_seconds", fever)] < 460
    assert samples[("marquee_fetch_lapsed_leases", fever)] == 1
    assert samples[("marquee_fetch_runs_in_progress", fever)] == 2


def test_runs_closed_without_the_providers_answer_leave_its_retry_after_in_force(
    engine: Engine,
) -> None:
    until = datetime.now(UTC) + timedelta(minutes=10)
    add_run(engine, "failed", age=timedelta(seconds=30), not_before=until)
    for reason in ("abandoned", "interrupted", "lock_unavailable"):
        add_run(engine, "failed", reason=reason, age=timedelta(seconds=10))

    with Session(engine) as session:
        waiting = records.waiting_until(session=session, provider="fever")

    assert waiting == until
