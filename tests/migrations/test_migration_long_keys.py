"""A SQLite database that stored a long feed key whole (SQLite ignores VARCHAR widths) keeps
fetching that event after upgrading, instead of failing every fetch of its provider."""

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from core.ingest.normalise import external_id, normalise
from core.plugins.contract import ParsedEvent
from core.store.migrate import upgrade
from core.store.upsert import upsert_events

LONG_KEY = "outlook-uid-" + "7" * 290 + "/2021-06-30T19:00:00Z"
EVENT = ParsedEvent(LONG_KEY, "Concert", datetime(2021, 6, 30, 21), datetime(2021, 6, 30, 23), True)


def test_upgrade_compacts_a_stored_long_key_so_the_next_fetch_matches_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = sa.create_engine(url)
    row = normalise("venue", ZoneInfo("Europe/Madrid"), EVENT)
    stored_before = {**row, "external_id": LONG_KEY}  # what the upsert wrote before 0005
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        table = sa.Table("event", sa.MetaData(), autoload_with=session.connection())
        session.execute(
            table.insert().values(
                **{**stored_before, "id": row["id"].hex},
                ever_on_sale=True,
                first_seen_at=now,
                updated_at=now,
            )
        )

    upgrade(url)

    with Session(engine) as session, session.begin():
        counts = upsert_events(session, [row], now=now)
        stored = session.execute(sa.text("SELECT external_id FROM event")).scalars().all()
    engine.dispose()
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 1)
    assert stored == [external_id(LONG_KEY)]
