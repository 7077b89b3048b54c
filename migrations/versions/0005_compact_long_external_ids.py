"""Compact external ids longer than the column, as the upsert now writes them

SQLite never enforced VARCHAR(255), so it stored long feed keys whole; the upsert now stores such
keys as a 190-character prefix, '#', and the SHA-256 of the whole key. Without this, the next
fetch of such an event would conflict on its (unchanged) id and fail the whole fetch.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of core.ingest.normalise.external_id at this revision: migrations do not follow later code.
WIDTH = 255
PREFIX = WIDTH - 1 - 64


def _compact(key: str) -> str:
    return f"{key[:PREFIX]}#{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


def upgrade() -> None:
    bind = op.get_bind()
    event = sa.table("event", sa.column("id"), sa.column("external_id"))
    long_keys = bind.execute(
        sa.select(event.c.id, event.c.external_id).where(
            sa.func.length(event.c.external_id) > WIDTH
        )
    ).all()
    for row_id, key in long_keys:
        bind.execute(event.update().where(event.c.id == row_id).values(external_id=_compact(key)))


def downgrade() -> None:
    pass  # the whole keys are gone; the compact form is valid at every revision
