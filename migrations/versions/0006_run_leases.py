"""Run leases: fetch_run.holder/heartbeat_at/lease_expires_at, and a reason for skips and closures

A live run renews its lease every third of MARQUEE_LEASE_SECONDS; a run whose lease lapsed is closed
as abandoned by the next run that takes the provider's lock. `reason` says why a run was skipped or
failed without an answer (lock_held, retry_after, abandoned, interrupted, ...), and is part of
fetch_run_total's key so counts by reason survive pruning.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the texts earlier code recorded, so existing rows get their reason.
LOCK_HELD_TEXT = "another run of this provider holds the lock"
RETRY_AFTER_TEXT = "provider asked us to wait until %"
ABANDONED_TEXT = "abandoned:%"


def upgrade() -> None:
    with op.batch_alter_table("fetch_run") as batch:
        batch.add_column(sa.Column("reason", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("holder", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", core.store.models.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("lease_expires_at", core.store.models.UTCDateTime(), nullable=True)
        )
    run = sa.table("fetch_run", sa.column("outcome"), sa.column("error"), sa.column("reason"))
    for outcome, pattern, reason in (
        ("skipped", LOCK_HELD_TEXT, "lock_held"),
        ("skipped", RETRY_AFTER_TEXT, "retry_after"),
        ("failed", ABANDONED_TEXT, "abandoned"),
    ):
        op.execute(
            run.update()
            .where(run.c.outcome == outcome, run.c.error.like(pattern))
            .values(reason=reason)
        )
    # Pruned skips keep no reason: they stay under "" in the new key.
    _rebuild_totals(with_reason=True)


def _rebuild_totals(*, with_reason: bool) -> None:
    """Recreate fetch_run_total with or without `reason` in its key (a new primary key is a new
    table on SQLite), folding the tallies into the new key."""
    key = ["provider", "outcome", *(["reason"] if with_reason else [])]
    op.create_table(
        "fetch_run_total_new",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        *([sa.Column("reason", sa.String(length=20), nullable=False)] if with_reason else []),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("upserted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name="fetch_run_total_new_pkey"),
    )
    reason = "'' AS reason, " if with_reason else ""
    op.execute(
        f"INSERT INTO fetch_run_total_new ({', '.join(key)}, runs, finished, seconds, upserted) "
        f"SELECT provider, outcome, {reason}SUM(runs), SUM(finished), SUM(seconds), SUM(upserted) "
        "FROM fetch_run_total GROUP BY provider, outcome"
    )
    op.drop_table("fetch_run_total")
    op.rename_table("fetch_run_total_new", "fetch_run_total")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE fetch_run_total RENAME CONSTRAINT fetch_run_total_new_pkey "
            "TO fetch_run_total_pkey"
        )


def downgrade() -> None:
    _rebuild_totals(with_reason=False)
    with op.batch_alter_table("fetch_run") as batch:
        for column in ("lease_expires_at", "heartbeat_at", "holder", "reason"):
            batch.drop_column(column)
