"""The common upsert: bulk statements, honest counts, no rewrite of unchanged rows, sticky on-sale."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ingest.normalise import normalise
from core.plugins.contract import ParsedEvent
from core.store.db import transaction
from core.store.models import Event
from core.store.upsert import EventWriter, UpsertCounts, upsert_events
from tests.providers.fever.feeds import stored_rows

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def row(key: str, *, on_sale: bool = True, price: float = 10.0, title: str = "Show") -> dict:
    event = ParsedEvent(
        key=key,
        title=title,
        start=datetime(2021, 5, 1, 20),
        end=datetime(2021, 5, 1, 22),
        on_sale=on_sale,
        min_price=price,
        max_price=price,
    )
    return normalise("fever", ZoneInfo("Europe/Madrid"), event)


def upsert(engine: Engine, rows: list[dict], now: datetime = T0) -> UpsertCounts:
    with transaction(engine) as session:
        return upsert_events(session, rows, now=now)


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


def test_upsert_inserts_new_events_and_counts_them(engine: Engine) -> None:
    counts = upsert(engine, [row("1/1"), row("1/2"), row("2/1")])

    assert counts == UpsertCounts(inserted=3, updated=0, unchanged=0)
    assert sorted(stored_rows(engine)) == ["1/1", "1/2", "2/1"]


def writes_to_event(statements: list[str]) -> list[str]:
    return [s for s in statements if "INSERT INTO event " in s]


def test_upsert_writes_a_whole_batch_in_one_insert_statement(
    engine: Engine, statements: list[str]
) -> None:
    upsert(engine, [row(f"1/{n}") for n in range(200)])

    [insert] = writes_to_event(statements)
    assert "ON CONFLICT" in insert.upper()
    assert len(stored_rows(engine)) == 200


def test_upsert_of_unchanged_rows_rewrites_nothing(engine: Engine) -> None:
    upsert(engine, [row("1/1"), row("1/2")], now=T0)

    counts = upsert(engine, [row("1/1"), row("1/2")], now=T1)

    assert counts == UpsertCounts(inserted=0, updated=0, unchanged=2)
    assert {r["updated_at"] for r in stored_rows(engine).values()} == {T0}


def test_upsert_updates_changed_row_and_keeps_first_seen(engine: Engine) -> None:
    upsert(engine, [row("1/1"), row("1/2")], now=T0)

    counts = upsert(engine, [row("1/1", price=12.5), row("1/2")], now=T1)

    assert counts == UpsertCounts(inserted=0, updated=1, unchanged=1)
    stored = stored_rows(engine)
    assert (stored["1/1"]["min_price"], stored["1/1"]["updated_at"]) == (12.5, T1)
    assert stored["1/1"]["first_seen_at"] == T0
    assert stored["1/2"]["updated_at"] == T0


def test_upsert_mixes_inserts_updates_and_unchanged_in_one_batch(engine: Engine) -> None:
    upsert(engine, [row("1/1"), row("1/2")])

    counts = upsert(engine, [row("1/1"), row("1/2", title="Renamed"), row("1/3")], now=T1)

    assert counts == UpsertCounts(inserted=1, updated=1, unchanged=1)
    assert stored_rows(engine)["1/2"]["title"] == "Renamed"


@pytest.mark.parametrize(
    ("history", "ever"),
    [
        ([True, False], True),
        ([True, False, True], True),
        ([False, True], True),
        ([False, False], False),
    ],
)
def test_upsert_remembers_an_event_was_ever_on_sale(
    engine: Engine, history: list[bool], ever: bool
) -> None:
    for step, on_sale in enumerate(history):
        upsert(engine, [row("1/1", on_sale=on_sale)], now=T0 + timedelta(minutes=step))

    stored = stored_rows(engine)["1/1"]
    assert (stored["on_sale"], stored["ever_on_sale"]) == (history[-1], ever)


def test_upsert_keeps_the_first_of_duplicate_keys_in_a_batch(engine: Engine) -> None:
    counts = upsert(engine, [row("1/1", price=5.0), row("1/2"), row("1/1", price=7.0)])

    assert counts == UpsertCounts(inserted=2, duplicates=1, duplicate_keys=["1/1"])
    assert stored_rows(engine)["1/1"]["min_price"] == 5.0


def test_upsert_leaves_the_transaction_to_the_caller(engine: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(engine) as session:
        upsert_events(session, [row("1/1")], now=T0)
        raise RuntimeError("a later batch failed")

    assert stored_rows(engine) == {}


def test_upsert_of_nothing_touches_nothing(engine: Engine, statements: list[str]) -> None:
    assert upsert(engine, []) == UpsertCounts()
    assert not [s for s in statements if "event" in s.lower()]


def test_upsert_stores_the_largest_allowed_batch(engine: Engine) -> None:
    # MARQUEE_BATCH_SIZE allows 5000 rows: more bound parameters than one statement may carry.
    rows = [row(f"9/{n}") for n in range(5000)]

    assert upsert(engine, rows) == UpsertCounts(inserted=5000, updated=0, unchanged=0)
    assert upsert(engine, rows, now=T1) == UpsertCounts(inserted=0, updated=0, unchanged=5000)


@pytest.mark.parametrize("stored_before", [None, False])
def test_writer_stores_the_first_copy_of_duplicate_keys_whatever_the_batch_size(
    engine: Engine, stored_before: bool | None
) -> None:
    # Seen online then offline in one fetch: one batch of both or two batches of one must agree,
    # whether the event is new or already stored as never on sale.
    sightings = [row("1/1", on_sale=True, price=5.0), row("1/1", on_sale=False, price=7.0)]
    results = []
    for batch_size in (len(sightings), 1):
        with transaction(engine) as session:
            session.execute(sa.delete(Event.__table__))  # type: ignore[attr-defined]
        if stored_before is not None:
            upsert(engine, [row("1/1", on_sale=stored_before, price=7.0)], now=T0)
        with transaction(engine) as session:
            writer = EventWriter(session, now=T1)
            for start in range(0, len(sightings), batch_size):
                writer.write(sightings[start : start + batch_size])
            counts = writer.finish()
        stored = stored_rows(engine)["1/1"]
        results.append((stored["on_sale"], stored["ever_on_sale"], stored["min_price"]))
        assert (counts.duplicates, counts.duplicate_keys) == (1, ["1/1"])

    assert results == [(True, True, 5.0), (True, True, 5.0)]


def test_writer_names_at_most_20_duplicated_keys_in_feed_order_and_counts_them_all(
    engine: Engine,
) -> None:
    rows = [row(f"1/{n}") for n in range(30)]
    with transaction(engine) as session:
        writer = EventWriter(session, now=T0)
        for start in range(0, 90, 7):
            writer.write((rows * 3)[start : start + 7])
        counts = writer.finish()

    assert (counts.inserted, counts.duplicates) == (30, 60)
    assert counts.duplicate_keys == [f"1/{n}" for n in range(20)]


@pytest.fixture
def parameters(engine: Engine) -> Iterator[list[Any]]:
    """The parameters of each statement sent to the database, in order."""
    seen: list[Any] = []

    def record(_conn: Any, _cursor: Any, _statement: str, params: Any, *_args: Any) -> None:
        seen.append(params)

    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("batch_size", [1, 200, 5000])
def test_writer_on_postgresql_stages_batches_and_writes_events_in_one_statement(
    engine: Engine, statements: list[str], parameters: list[Any], batch_size: int
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite takes a multi-row upsert per batch")
    upsert(engine, [row("1/1")])
    statements.clear()
    parameters.clear()
    rows = [row("1/1", price=2.0), *(row(f"2/{n}") for n in range(5000))]

    with transaction(engine) as session:
        writer = EventWriter(session, now=T1)
        for start in range(0, len(rows), batch_size):
            writer.write(rows[start : start + batch_size])
        counts = writer.finish()

    assert counts == UpsertCounts(inserted=5000, updated=1, unchanged=0)
    # No VALUES list of 16 parameters per row, no pre-select: one statement with one parameter.
    [insert] = writes_to_event(statements)
    assert parameters[statements.index(insert)] == {"now": T1}
    assert len(stored_rows(engine)) == 5001


def test_upsert_stores_a_batch_whose_prices_and_times_are_all_null(engine: Engine) -> None:
    events = [
        ParsedEvent(key=f"2/{n}", title="Free", start=date(2021, 5, n + 1), end=None, on_sale=True)
        for n in range(3)
    ]
    rows = [normalise("fever", ZoneInfo("UTC"), event) for event in events]

    assert upsert(engine, rows) == UpsertCounts(inserted=3, updated=0, unchanged=0)
    assert upsert(engine, rows, now=T1) == UpsertCounts(inserted=0, updated=0, unchanged=3)
    stored = stored_rows(engine)["2/0"]
    assert (stored["min_price"], stored["start_time"], stored["end_time"]) == (None, None, None)


def test_upsert_of_unchanged_rows_writes_no_row_version(engine: Engine) -> None:
    rows = [row(f"1/{n}") for n in range(50)]
    upsert(engine, rows, now=T0)
    versions, updates = row_versions(engine), watch_updates(engine)

    assert upsert(engine, rows, now=T1) == UpsertCounts(inserted=0, updated=0, unchanged=50)

    assert row_versions(engine) == versions
    assert updates() == 0
    upsert(engine, [row("1/7", price=11.0), *rows[8:]], now=T1)
    assert updates() == 1


def row_versions(engine: Engine) -> list[str]:
    """PostgreSQL's xmin of every row: it changes whenever a row is rewritten, even unchanged."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        return list(
            connection.execute(sa.text("SELECT xmin::text FROM event ORDER BY id")).scalars()
        )


def watch_updates(engine: Engine) -> Any:
    """How many event rows any connection has rewritten since: a trigger counts them."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("CREATE TABLE IF NOT EXISTS rewrites (n int)"))
            connection.execute(sa.text("TRUNCATE rewrites"))
            connection.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION count_rewrite() RETURNS trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN INSERT INTO rewrites VALUES (1); RETURN NEW; END $$"
                )
            )
            connection.execute(sa.text("DROP TRIGGER IF EXISTS counted ON event"))
            connection.execute(
                sa.text(
                    "CREATE TRIGGER counted AFTER UPDATE ON event FOR EACH ROW "
                    "EXECUTE FUNCTION count_rewrite()"
                )
            )
        else:
            connection.execute(sa.text("CREATE TABLE IF NOT EXISTS rewrites (n int)"))
            connection.execute(
                sa.text(
                    "CREATE TRIGGER IF NOT EXISTS counted AFTER UPDATE ON event "
                    "BEGIN INSERT INTO rewrites VALUES (1); END"
                )
            )

    def count() -> int:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM rewrites")).scalar_one()

    return count


def test_two_writers_in_one_transaction_each_count_only_their_own_rows(engine: Engine) -> None:
    with transaction(engine) as session:
        first = upsert_events(session, [row("1/1"), row("1/2")], now=T0)
        second = upsert_events(session, [row("1/2", price=3.0), row("1/3")], now=T1)

    assert first == UpsertCounts(inserted=2)
    assert second == UpsertCounts(inserted=1, updated=1)
    assert stored_rows(engine)["1/2"]["min_price"] == 3.0
