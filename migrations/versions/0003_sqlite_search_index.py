"""SQLite's search index says `ever_on_sale = 1`, the term SQLAlchemy's queries use, so SQLite uses it

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_event_searchable_starts_at"


def _recreate(sqlite_where: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL matches `WHERE ever_on_sale` already
    op.drop_index(INDEX, table_name="event")
    op.create_index(INDEX, "event", ["starts_at", "id"], sqlite_where=sa.text(sqlite_where))


def upgrade() -> None:
    _recreate("ever_on_sale = 1")


def downgrade() -> None:
    _recreate("ever_on_sale")
