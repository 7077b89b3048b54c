"""How long the run record lasts: old runs are pruned, their tallies kept for metrics.

Data functions take `*, session`; the caller owns the transaction.
"""

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from core.runs.records import latest_run
from core.store.models import FetchRun, FetchRunTotal, Outcome, utcnow


def _duration_seconds(dialect: str) -> sa.ColumnElement[float]:
    started, finished = col(FetchRun.started_at), col(FetchRun.finished_at)
    if dialect == "postgresql":
        return sa.func.extract("epoch", finished - started)
    # SQLite keeps instants as naive UTC text, which julianday() reads.
    return (sa.func.julianday(finished) - sa.func.julianday(started)) * 86400.0


def _reason() -> sa.ColumnElement[str]:
    # A literal, not a bound value: PostgreSQL must see the same expression in GROUP BY.
    return sa.func.coalesce(col(FetchRun.reason), sa.literal_column("''"))


def outcome_tallies(dialect: str) -> sa.Select[tuple[str, str, str, int, int, float, int]]:
    """Per provider, outcome and reason: runs, finished runs, their seconds, events upserted."""
    return sa.select(
        col(FetchRun.provider).label("provider"),
        col(FetchRun.outcome).label("outcome"),
        _reason().label("reason"),
        sa.func.count().label("runs"),
        sa.func.count(col(FetchRun.finished_at)).label("finished"),
        sa.func.coalesce(sa.func.sum(_duration_seconds(dialect)), 0.0).label("seconds"),
        sa.func.coalesce(sa.func.sum(col(FetchRun.inserted) + col(FetchRun.updated)), 0).label(
            "upserted"
        ),
    ).group_by(col(FetchRun.provider), col(FetchRun.outcome), _reason())


def all_time_tallies(dialect: str) -> sa.Select[tuple[str, str, str, int, int, float, int]]:
    """`outcome_tallies` plus the tallies of pruned runs, read as ONE statement.

    One statement is one snapshot even under READ COMMITTED: two reads would miss a prune that
    commits between them (its rows gone from `fetch_run`, its totals not yet read).
    """
    table = FetchRunTotal.__table__  # type: ignore[attr-defined]
    pruned = sa.select(
        table.c.provider,
        table.c.outcome,
        table.c.reason,
        table.c.runs,
        table.c.finished,
        table.c.seconds,
        table.c.upserted,
    )
    both = sa.union_all(pruned, outcome_tallies(dialect)).subquery()
    return (
        sa.select(
            both.c.provider,
            both.c.outcome,
            both.c.reason,
            sa.func.sum(both.c.runs),
            sa.func.sum(both.c.finished),
            sa.func.sum(both.c.seconds),
            sa.func.sum(both.c.upserted),
        )
        .group_by(both.c.provider, both.c.outcome, both.c.reason)
        .order_by(both.c.provider, both.c.outcome, both.c.reason)
    )


def prune(*, session: Session, provider: str, keep_days: int) -> int:
    """Delete the provider's runs older than `keep_days`, folding them into `fetch_run_total`.

    The last success is kept whatever its age, so status can still say when that was; running
    rows are left for `start_run` to close. Returns how many rows were deleted.
    """
    cutoff = utcnow() - timedelta(days=keep_days)
    old = [
        col(FetchRun.provider) == provider,
        col(FetchRun.started_at) < cutoff,
        col(FetchRun.outcome) != Outcome.RUNNING,
    ]
    success = latest_run(session, provider, Outcome.SUCCESS)
    if success is not None:
        old.append(col(FetchRun.id) != success.id)
    dialect = session.get_bind().dialect.name
    tallies = session.execute(outcome_tallies(dialect).where(*old)).all()
    if not tallies:
        return 0
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = FetchRunTotal.__table__  # type: ignore[attr-defined]
    for _, outcome, reason, runs, finished, seconds, upserted in tallies:
        statement = insert(table).values(
            provider=provider,
            outcome=outcome,
            reason=reason,
            runs=runs,
            finished=finished,
            seconds=seconds,
            upserted=upserted,
        )
        added = statement.excluded
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["provider", "outcome", "reason"],
                set_={
                    "runs": table.c.runs + added.runs,
                    "finished": table.c.finished + added.finished,
                    "seconds": table.c.seconds + added.seconds,
                    "upserted": table.c.upserted + added.upserted,
                },
            )
        )
    deleted = session.execute(sa.delete(FetchRun).where(*old))
    return deleted.rowcount
