"""The stored shape of Marquee's data. The schema changes only through `migrations/`."""

import uuid
from datetime import UTC, date, datetime, time
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: `timestamptz` on PostgreSQL, a naive UTC string on SQLite; always aware in Python."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# What makes a stored event one that /search and /events serve: ever on sale, and not hidden by
# retention. The search's partial index has the same predicate, so hidden rows cost it nothing.
# SQLite matches a partial index only when the query says the same terms, and SQLAlchemy renders a
# boolean column test as `ever_on_sale = 1` there.
SEARCHABLE_POSTGRESQL = "ever_on_sale AND hidden_at IS NULL"
SEARCHABLE_SQLITE = "ever_on_sale = 1 AND hidden_at IS NULL"


class Event(SQLModel, table=True):
    """One event of one provider, with the latest values its feed gave."""

    __table_args__ = (
        sa.UniqueConstraint("provider", "external_id", name="uq_event_provider_external_id"),
        # Serves /search: range on starts_at, ordered by (starts_at, id), only searchable rows.
        sa.Index(
            "ix_event_searchable_starts_at",
            "starts_at",
            "id",
            postgresql_where=sa.text(SEARCHABLE_POSTGRESQL),
            sqlite_where=sa.text(SEARCHABLE_SQLITE),
        ),
        # Serves retention: only the events missing from their provider's latest feed.
        sa.Index(
            "ix_event_absent",
            "provider",
            "last_seen_at",
            "id",
            postgresql_where=sa.text("last_seen_at IS NOT NULL"),
            sqlite_where=sa.text("last_seen_at IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    provider: str = Field(max_length=40)
    external_id: str = Field(max_length=255)
    title: str = Field(sa_type=sa.Text)
    start_date: date
    start_time: time | None = None
    end_date: date | None = None
    end_time: time | None = None
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    min_price: float | None = None
    max_price: float | None = None
    on_sale: bool
    ever_on_sale: bool
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # NULL while the event is in its provider's latest successful fetch; once a successful fetch
    # misses it, the time of the last successful fetch that had it. Retention ages events by it.
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set by retention's hide stage: the event stays stored but is no longer served.
    hidden_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# The values a feed gives; a refetch that changes none of them rewrites nothing.
FEED_COLUMNS = (
    "title",
    "start_date",
    "start_time",
    "end_date",
    "end_time",
    "starts_at",
    "ends_at",
    "min_price",
    "max_price",
    "on_sale",
)


class Trigger(StrEnum):
    """What started a fetch run."""

    SCHEDULE = "schedule"  # Celery beat
    EMBEDDED = "embedded"  # the in-process scheduler of `marquee run`
    CLI = "cli"  # an operator's `marquee fetch`: goes ahead even while a Retry-After asks to wait


class Outcome(StrEnum):
    """How a fetch run ended (or that it has not yet)."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    RETRYING = "retrying"
    SKIPPED = "skipped"


class Reason(StrEnum):
    """Why a run was skipped, or ended failed without an answer from its provider."""

    LOCK_HELD = "lock_held"  # skipped: another run holds the provider's lock
    RETRY_AFTER = "retry_after"  # skipped: the provider asked us to wait
    LOCK_UNAVAILABLE = "lock_unavailable"  # failed: the lock's store (Redis) could not be reached
    ABANDONED = "abandoned"  # failed: its lease lapsed before it finished (process gone or frozen)
    INTERRUPTED = "interrupted"  # failed: SIGINT/SIGTERM or a scheduler stop cut it short
    LEASE_LOST = "lease_lost"  # failed: it noticed another run took over; it wrote nothing


class FetchRun(SQLModel, table=True):
    """One attempt to fetch one provider, however it ended."""

    __tablename__ = "fetch_run"
    __table_args__ = (sa.Index("ix_fetch_run_provider_started_at", "provider", "started_at"),)

    id: uuid.UUID = Field(primary_key=True, default_factory=uuid.uuid4)
    provider: str = Field(max_length=40)
    trigger: str = Field(max_length=20)  # a Trigger
    attempt: int = 1
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(max_length=20)  # an Outcome
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    bytes: int = 0
    error: str | None = Field(default=None, sa_type=sa.Text)
    # Set on a failed run whose provider answered Retry-After: no scheduled run before this instant.
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=20)  # a Reason
    # The live run's lease: who runs it (host:pid), when it last renewed, when the lease lapses.
    holder: str | None = Field(default=None, max_length=255)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FetchRunTotal(SQLModel, table=True):
    """Per provider and outcome, the tallies of fetch runs pruned from `fetch_run`.

    Pruning folds rows in here, so metrics read from both stay counters that never go down.
    """

    __tablename__ = "fetch_run_total"

    provider: str = Field(max_length=40, primary_key=True)
    outcome: str = Field(max_length=20, primary_key=True)
    reason: str = Field(default="", max_length=20, primary_key=True)  # a Reason, or "" for none
    runs: int = 0
    finished: int = 0
    seconds: float = 0.0
    upserted: int = 0


class EventTombstone(SQLModel, table=True):
    """What stays of an archived event, so that one coming back is on sale if it ever was (its id is
    its key's, always). Retention's purge stage removes tombstones too."""

    __tablename__ = "event_tombstone"
    __table_args__ = (
        sa.Index("ix_event_tombstone_provider_last_seen_at", "provider", "last_seen_at", "id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    provider: str = Field(max_length=40)
    external_id: str = Field(max_length=255)
    ever_on_sale: bool
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    archived_at: datetime = Field(sa_type=UTCDateTime)


class ProviderState(SQLModel, table=True):
    """Per provider, the clock retention ages its events by: the latest successful fetch."""

    __tablename__ = "provider_state"

    provider: str = Field(max_length=40, primary_key=True)
    # The time stamped on the events of that fetch (their sighting time).
    last_success_at: datetime = Field(sa_type=UTCDateTime)


class RetentionRun(SQLModel, table=True):
    """One retention pass over one provider (a --dry-run is not recorded)."""

    __tablename__ = "retention_run"
    __table_args__ = (sa.Index("ix_retention_run_provider_started_at", "provider", "started_at"),)

    id: uuid.UUID = Field(primary_key=True, default_factory=uuid.uuid4)
    provider: str = Field(max_length=40)
    trigger: str = Field(max_length=20)  # a Trigger
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(max_length=20)  # running, success, failed or skipped
    hidden: int = 0
    archived: int = 0
    purged: int = 0
    archive_file: str | None = Field(default=None, sa_type=sa.Text)
    error: str | None = Field(default=None, sa_type=sa.Text)


# Registered here so that alembic and the drift test see every table once core.store.models is imported.
from core.store.version import DataVersion  # noqa: E402, F401
