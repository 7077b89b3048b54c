"""The data version: one number, bumped in the transaction of every write that changes what /search
serves, so any API process can tell with one cheap read whether its cached answers still hold."""

import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel


class DataVersion(SQLModel, table=True):
    """Exactly one row (id 1)."""

    __tablename__ = "data_version"

    id: int = Field(primary_key=True)
    version: int = Field(sa_type=sa.BigInteger)


TABLE = DataVersion.__table__  # type: ignore[attr-defined]
# Read by API processes on their raw read connections, at most once per check interval.
READ_SQL = "SELECT version FROM data_version WHERE id = 1"


def bump_data_version(*, session: Session) -> None:
    """Mark the stored events as changed, in the caller's transaction.

    The new version is at least the current time in microseconds, so a database restored from a
    backup never hands out again a version (and an ETag) that it gave to other data before. An
    upsert, so a table emptied by hand (or by a test) starts counting again.
    """
    now = time.time_ns() // 1000
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(TABLE).values(id=1, version=now)
    following = TABLE.c.version + 1
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[TABLE.c.id],
            set_={"version": sa.case((following > now, following), else_=sa.literal(now))},
        )
    )


def read_data_version(*, session: Session) -> int:
    """The current version (0 on a database that has never had the row)."""
    return session.execute(sa.text(READ_SQL)).scalar() or 0
