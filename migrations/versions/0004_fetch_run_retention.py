"""fetch_run.not_before (Retry-After kept across runs) and fetch_run_total (tallies of pruned runs)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.store.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "fetch_run", sa.Column("not_before", core.store.models.UTCDateTime(), nullable=True)
    )
    op.create_table(
        "fetch_run_total",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("upserted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "outcome"),
    )


def downgrade() -> None:
    op.drop_table("fetch_run_total")
    with op.batch_alter_table("fetch_run") as batch:
        batch.drop_column("not_before")
