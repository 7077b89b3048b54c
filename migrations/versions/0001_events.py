"""events: every provider's events, with the index that serves /search

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.store.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.Column("starts_at", core.store.models.UTCDateTime(), nullable=False),
        sa.Column("ends_at", core.store.models.UTCDateTime(), nullable=False),
        sa.Column("min_price", sa.Float(), nullable=True),
        sa.Column("max_price", sa.Float(), nullable=True),
        sa.Column("on_sale", sa.Boolean(), nullable=False),
        sa.Column("ever_on_sale", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", core.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", core.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "external_id", name="uq_event_provider_external_id"),
    )
    op.create_index(
        "ix_event_searchable_starts_at",
        "event",
        ["starts_at", "id"],
        postgresql_where=sa.text("ever_on_sale"),
        sqlite_where=sa.text("ever_on_sale"),
    )


def downgrade() -> None:
    op.drop_index("ix_event_searchable_starts_at", table_name="event")
    op.drop_table("event")
