"""fetch_run.not_before: a provider's Retry-After, kept across runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("fetch_run", sa.Column("not_before", core.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fetch_run") as batch:
        batch.drop_column("not_before")
