"""`restore` puts an archive file's events back as they were stored, served again; twice changes
nothing; a file that is not an archive is refused, naming the line, and nothing is restored."""

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.retention.stages import ArchiveError, restore
from tests.core.retention.helpers import (
    archive_files,
    archive_lines,
    event_id,
    feed,
    fetch,
    ids,
    moved,
    retain,
    rows,
    show,
    snapshot,
    stored,
    tombstones,
)
from tests.support.feed_server import FeedServer


@pytest.fixture
def archived_2_to_5(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> tuple[Path, dict]:
    """Shows 2-5 archived (4 never on sale); the file and the rows as they were stored."""
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "0")
    fetch(monkeypatch, engine, feed_server, feed(1, 2, 3, show(4, online=False), 5))
    fetch(monkeypatch, engine, feed_server, feed(1))
    before = rows(engine)
    assert moved(retain(engine)["fever"]) == (0, 4, 0)
    [path] = archive_files(archive_dir)
    return path, before


def test_restore_twice_restores_once_and_the_second_changes_nothing(
    archived_2_to_5: tuple[Path, dict], engine: Engine, api: Callable[[], TestClient]
) -> None:
    path, before = archived_2_to_5
    client = api()
    assert client.get(f"/events/{event_id(2)}").status_code == 404

    assert restore(engine, path) == (4, 0)
    after_first = snapshot(engine)
    assert restore(engine, path) == (0, 4)

    assert snapshot(engine) == after_first
    assert rows(engine) == before  # every column as it was stored
    assert tombstones(engine) == {}
    found = {e["id"] for e in client.get("/search").json()["data"]["events"]}
    assert found == {str(i) for i in ids(1, 2, 3, 5)}  # 4 was never on sale
    assert client.get(f"/events/{event_id(3)}").json()["data"]["event"]["title"] == "Show 3"


def test_restore_leaves_an_event_that_came_back_since_as_its_feed_now_gives_it(
    archived_2_to_5: tuple[Path, dict],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
) -> None:
    path, _ = archived_2_to_5
    fetch(monkeypatch, engine, feed_server, feed(1, show(2, title="Back", price=99)))

    assert restore(engine, path) == (3, 1)

    assert stored(engine) == ids(1, 2, 3, 4, 5)
    back = rows(engine)[event_id(2)]
    assert (back["title"], back["min_price"], back["last_seen_at"]) == ("Back", 99.0, None)


def test_restore_unhides_events_archived_while_hidden(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    archive_dir: Path,
    api: Callable[[], TestClient],
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "0")
    fetch(monkeypatch, engine, feed_server, feed(1, 2))
    fetch(monkeypatch, engine, feed_server, feed(1))
    retain(engine)
    [path] = archive_files(archive_dir)
    assert archive_lines(path)[0]["hidden_at"] is not None

    restore(engine, path)

    assert rows(engine)[event_id(2)]["hidden_at"] is None
    assert api().get(f"/events/{event_id(2)}").status_code == 200


def write_lines(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        '{"id": "6c7b0f0e-0000-0000-0000-000000000000"}',  # columns missing
        "[1, 2, 3]",
        "null",
        "id-not-a-uuid",
    ],
)
def test_a_corrupt_line_is_refused_by_number_and_nothing_is_restored(
    bad: str, archived_2_to_5: tuple[Path, dict], engine: Engine, tmp_path: Path
) -> None:
    path, _ = archived_2_to_5
    good = [json.dumps(line) for line in archive_lines(path)]
    corrupt = write_lines(tmp_path / "corrupt.jsonl.gz", [*good[:2], bad, *good[2:]])
    before = snapshot(engine)

    with pytest.raises(ArchiveError, match=r"corrupt\.jsonl\.gz, line 3: not an archived event"):
        restore(engine, corrupt)

    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("start_date", "2021-02-30"),
        ("starts_at", 17),
        ("id", "zzz"),
        ("title", 5),
        ("min_price", "cheap"),
        ("ever_on_sale", "yes"),
        ("external_id", None),
        ("provider", 7),
        ("provider", "x" * 41),
        ("first_seen_at", "2021-01-01T00:00:00"),
    ],
)
def test_a_line_with_an_unreadable_value_is_refused_by_number(
    column: str, value: object, archived_2_to_5: tuple[Path, dict], engine: Engine, tmp_path: Path
) -> None:
    path, _ = archived_2_to_5
    lines = archive_lines(path)
    lines[1][column] = value
    corrupt = write_lines(tmp_path / "bad.jsonl.gz", [json.dumps(line) for line in lines])
    before = snapshot(engine)

    with pytest.raises(ArchiveError, match="line 2"):
        restore(engine, corrupt)

    assert snapshot(engine) == before


def test_a_truncated_or_foreign_file_is_refused_and_nothing_is_restored(
    archived_2_to_5: tuple[Path, dict], engine: Engine, tmp_path: Path
) -> None:
    path, _ = archived_2_to_5
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(path.read_bytes()[:-12])
    foreign = tmp_path / "foreign.jsonl.gz"
    foreign.write_bytes(b"plain text, not gzip\n")
    before = snapshot(engine)

    for broken in (truncated, foreign, tmp_path / "missing.jsonl.gz"):
        with pytest.raises(ArchiveError, match=broken.name):
            restore(engine, broken)

    assert snapshot(engine) == before
