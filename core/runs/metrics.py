"""What operators measure, read from the shared database at scrape time.

Fetches run in worker processes, so the API process holds no fetch counters of its own: the
`fetch_run`, `fetch_run_total` (pruned runs) and `event` tables are the record every process shares.
"""

import logging
from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from core.plugins.registry import Registry
from core.runs.history import all_time_tallies
from core.runs.status import (
    RETENTION_STATES,
    EventCounts,
    event_counts,
    retention_counts,
    retention_totals,
    running_runs,
)
from core.store.models import FetchRun, Outcome, UTCDateTime, utcnow

# provider, outcome, reason ("" for none), runs, finished runs, their seconds, events upserted
Tally = tuple[str, str, str, int, int, float, int]

log = logging.getLogger("marquee.metrics")


def _limit_statements(connection: Connection, timeout_seconds: float) -> None:
    # A scrape must never pile up queries on a struggling database.
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(f"SET LOCAL statement_timeout = {max(1, int(timeout_seconds * 1000))}")
        )


def ping_database(engine: Engine, *, timeout_seconds: float) -> None:
    """Raise SQLAlchemyError unless the database answers a trivial query."""
    with engine.connect() as connection:
        _limit_statements(connection, timeout_seconds)
        connection.execute(sa.text("SELECT 1"))


class StoreCollector(Collector):
    """Fetch runs by outcome, their durations, events upserted, stored and searchable."""

    def __init__(self, engine: Engine, *, timeout_seconds: float) -> None:
        self._engine = engine
        self._timeout_seconds = timeout_seconds

    def describe(self) -> list[Metric]:
        # Registering must not query the database; names are only known at scrape time.
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "marquee_store_up", "1 if the fetch and event figures could be read from the database"
        )
        try:
            with Session(self._engine) as session:
                connection = session.connection()
                _limit_statements(connection, self._timeout_seconds)
                runs = _tallies(session, connection.dialect.name)
                live = running_runs(session=session)
                events = event_counts(session=session)
                successes = _last_successes(session)
                states = retention_counts(session=session, events=events)
                retention = retention_totals(session=session)
        except SQLAlchemyError as exc:
            log.warning("metrics could not read the database: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _run_metrics(runs)
        yield from _live_metrics(live, now=utcnow())
        yield from _event_metrics(events)
        yield _last_success_metric(successes)
        yield from _retention_metrics(states, retention)


def _tallies(session: Session, dialect: str) -> list[Tally]:
    """Retained runs plus the tallies of pruned ones, so counters never go down."""
    return [
        (provider, outcome, reason, int(runs), int(finished), float(seconds), int(upserted))
        for provider, outcome, reason, runs, finished, seconds, upserted in session.execute(
            all_time_tallies(dialect)
        )
    ]


def _run_metrics(rows: list[Tally]) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        "marquee_fetch_runs",
        "Finished fetch runs by provider and outcome",
        labels=["provider", "outcome"],
    )
    in_progress = GaugeMetricFamily(
        "marquee_fetch_runs_in_progress", "Fetch runs started and not finished", labels=["provider"]
    )
    durations = SummaryMetricFamily(
        "marquee_fetch_duration_seconds",
        "Wall time of finished fetch runs by provider and outcome",
        labels=["provider", "outcome"],
    )
    upserted = CounterMetricFamily(
        "marquee_events_upserted",
        "Events inserted or changed by successful fetch runs",
        labels=["provider"],
    )
    skips = CounterMetricFamily(
        "marquee_fetch_skips",
        "Skipped fetch runs by provider and reason (lock_held, retry_after)",
        labels=["provider", "reason"],
    )
    # Tallies come per reason; the run and duration families sum over it.
    by_outcome: dict[tuple[str, str], list[float]] = {}
    by_skip: dict[tuple[str, str], int] = {}
    written: dict[str, int] = {}
    for provider, outcome, reason, count, finished, seconds, changed in rows:
        if outcome == Outcome.RUNNING:
            # Not a counter: a running row changes outcome when it finishes.
            in_progress.add_metric([provider], count)
            continue
        totals = by_outcome.setdefault((provider, outcome), [0, 0, 0.0])
        totals[0] += count
        totals[1] += finished
        totals[2] += seconds
        if outcome == Outcome.SKIPPED:
            key = (provider, reason or "unknown")  # skips pruned before reasons were recorded
            by_skip[key] = by_skip.get(key, 0) + count
        if outcome == Outcome.SUCCESS:
            written[provider] = written.get(provider, 0) + int(changed)
    for (provider, outcome), (count, finished, seconds) in sorted(by_outcome.items()):
        runs.add_metric([provider, outcome], count)
        # An abandoned run has no end, hence no duration.
        durations.add_metric([provider, outcome], count_value=finished, sum_value=seconds)
    for (provider, reason), count in sorted(by_skip.items()):
        skips.add_metric([provider, reason], count)
    for provider, changed in sorted(written.items()):
        upserted.add_metric([provider], changed)
    yield from (runs, in_progress, durations, upserted, skips)


def _live_metrics(live: list[FetchRun], *, now: datetime) -> Iterator[Metric]:
    oldest = GaugeMetricFamily(
        "marquee_fetch_oldest_running_seconds",
        "Age of the oldest fetch run still running, per provider (alert: a run lock held too long)",
        labels=["provider"],
    )
    lapsed = GaugeMetricFamily(
        "marquee_fetch_lapsed_leases",
        "Fetch runs still recorded running whose lease lapsed (process dead or frozen)",
        labels=["provider"],
    )
    ages: dict[str, float] = {}
    counts: dict[str, int] = {}
    for run in live:
        age = (now - run.started_at).total_seconds()
        ages[run.provider] = max(ages.get(run.provider, 0.0), age)
        gone = run.lease_expires_at is not None and run.lease_expires_at < now
        counts[run.provider] = counts.get(run.provider, 0) + int(gone)
    for provider in sorted(ages):
        oldest.add_metric([provider], round(ages[provider], 3))
        lapsed.add_metric([provider], counts[provider])
    yield from (oldest, lapsed)


def _event_metrics(counts: dict[str, EventCounts]) -> Iterator[Metric]:
    stored = GaugeMetricFamily(
        "marquee_events_stored", "Events stored per provider", labels=["provider"]
    )
    searchable = GaugeMetricFamily(
        "marquee_events_searchable",
        "Events /search can return (ever on sale, not hidden) per provider",
        labels=["provider"],
    )
    for provider, (total, on_sale, _) in sorted(counts.items()):
        stored.add_metric([provider], total)
        searchable.add_metric([provider], on_sale)
    yield from (stored, searchable)


def _retention_metrics(
    states: dict[str, dict[str, int]], totals: list[tuple[str, str, int, int, int, int]]
) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        "marquee_events_by_state",
        "Events per provider: active (served), hidden (stored, not served), archived (tombstones)",
        labels=["provider", "state"],
    )
    for provider, counts in sorted(states.items()):
        for state in RETENTION_STATES:
            by_state.add_metric([provider, state], counts[state])
    moved = CounterMetricFamily(
        "marquee_retention_events",
        "Events moved by retention passes, per provider and stage (hide, archive, purge)",
        labels=["provider", "stage"],
    )
    runs = CounterMetricFamily(
        "marquee_retention_runs",
        "Retention passes per provider and outcome",
        labels=["provider", "outcome"],
    )
    per_stage: dict[tuple[str, str], int] = {}
    for provider, outcome, count, hidden, archived, purged in sorted(totals):
        runs.add_metric([provider, outcome], count)
        for stage, value in (("hide", hidden), ("archive", archived), ("purge", purged)):
            per_stage[(provider, stage)] = per_stage.get((provider, stage), 0) + int(value)
    for (provider, stage), value in sorted(per_stage.items()):
        moved.add_metric([provider, stage], value)
    yield from (by_state, moved, runs)


# ---- for alerting: when each provider last succeeded, and how often it should run -------------


def _last_successes(session: Session) -> dict[str, datetime]:
    """Per provider, when its latest successful run finished (pruning always keeps that run)."""
    finished = sa.func.max(sa.func.coalesce(col(FetchRun.finished_at), col(FetchRun.started_at)))
    query = (
        sa.select(col(FetchRun.provider), sa.type_coerce(finished, UTCDateTime))
        .where(col(FetchRun.outcome) == Outcome.SUCCESS)
        .group_by(col(FetchRun.provider))
    )
    return {provider: at for provider, at in session.execute(query)}


def _last_success_metric(successes: dict[str, datetime]) -> Metric:
    last = GaugeMetricFamily(
        "marquee_fetch_last_success_timestamp_seconds",
        "Unix time the provider's latest successful fetch run finished",
        labels=["provider"],
    )
    for provider, at in sorted(successes.items()):
        last.add_metric([provider], at.timestamp())
    return last


class ScheduleCollector(Collector):
    """Each enabled provider's fetch interval, so an alert can say "no success in N intervals"."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        interval = GaugeMetricFamily(
            "marquee_fetch_interval_seconds",
            "Seconds between scheduled fetch runs of each enabled provider",
            labels=["provider"],
        )
        for entry in self._registry.enabled():
            interval.add_metric([entry.name], entry.settings.interval_seconds)
        yield interval
