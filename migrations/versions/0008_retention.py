"""Retention: events' last sighting and hidden flag, tombstones, provider state, retention runs

`event.last_seen_at` is NULL while an event is in its provider's latest successful fetch (every
existing event starts so: nothing ages before the first fetch under this version), `hidden_at`
marks events retention hides. The search index's predicate gains `hidden_at IS NULL`, so hidden
rows cost searches nothing. `event_tombstone` keeps the id and ever-on-sale flag of archived
events, `provider_state` each provider's latest successful fetch, `retention_run` each pass.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.store.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_INDEX = "ix_event_searchable_starts_at"
# Frozen copies of the predicates: later code may change its own.
SEARCHABLE = {
    "postgresql": "ever_on_sale AND hidden_at IS NULL",
    "sqlite": "ever_on_sale = 1 AND hidden_at IS NULL",
}
SEARCHABLE_BEFORE = {"postgresql": "ever_on_sale", "sqlite": "ever_on_sale = 1"}


def _search_index(predicates: dict[str, str]) -> None:
    op.drop_index(SEARCH_INDEX, table_name="event")
    op.create_index(
        SEARCH_INDEX,
        "event",
        ["starts_at", "id"],
        postgresql_where=sa.text(predicates["postgresql"]),
        sqlite_where=sa.text(predicates["sqlite"]),
    )


def upgrade() -> None:
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("last_seen_at", core.store.models.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("hidden_at", core.store.models.UTCDateTime(), nullable=True))
    _search_index(SEARCHABLE)
    op.create_index(
        "ix_event_absent",
        "event",
        ["provider", "last_seen_at", "id"],
        postgresql_where=sa.text("last_seen_at IS NOT NULL"),
        sqlite_where=sa.text("last_seen_at IS NOT NULL"),
    )
    op.create_table(
        "event_tombstone",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("ever_on_sale", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", core.store.models.UTCDateTime(), nullable=False),
        sa.Column("archived_at", core.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_event_tombstone_provider_last_seen_at",
        "event_tombstone",
        ["provider", "last_seen_at", "id"],
    )
    op.create_table(
        "provider_state",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("last_success_at", core.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("provider"),
    )
    op.create_table(
        "retention_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("started_at", core.store.models.UTCDateTime(), nullable=False),
        sa.Column("finished_at", core.store.models.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("hidden", sa.Integer(), nullable=False),
        sa.Column("archived", sa.Integer(), nullable=False),
        sa.Column("purged", sa.Integer(), nullable=False),
        sa.Column("archive_file", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_retention_run_provider_started_at", "retention_run", ["provider", "started_at"]
    )


def downgrade() -> None:
    """Archived events stay in their archive files (restore them first to keep them searchable);
    hidden events are served again."""
    op.drop_index("ix_retention_run_provider_started_at", table_name="retention_run")
    op.drop_table("retention_run")
    op.drop_table("provider_state")
    op.drop_index("ix_event_tombstone_provider_last_seen_at", table_name="event_tombstone")
    op.drop_table("event_tombstone")
    op.drop_index("ix_event_absent", table_name="event")
    _search_index(SEARCHABLE_BEFORE)
    with op.batch_alter_table("event") as batch:
        batch.drop_column("hidden_at")
        batch.drop_column("last_seen_at")
