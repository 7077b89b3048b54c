"""Each stage of a retention pass, fetched through the real pipeline: what moves, when, and that a
dry run changes nothing and counts exactly what the real pass then moves."""

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.retention.policy import RetentionPolicy
from core.retention.stages import ArchiveError, Pass, read_archive
from tests.core.retention.helpers import (
    age_absent,
    archive_files,
    archive_lines,
    event_id,
    feed,
    fetch,
    hidden,
    ids,
    moved,
    retain,
    rows,
    served,
    snapshot,
    stored,
    tombstones,
)
from tests.support.feed_server import FeedServer


@pytest.fixture
def absent_3_and_4(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    """Shows 1-4 fetched, then a feed with only 1 and 2: 3 and 4 are absent since then."""
    fetch(monkeypatch, engine, feed_server, feed(1, 2, 3, 4))
    report = fetch(monkeypatch, engine, feed_server, feed(1, 2))
    assert report.absent == 2


def test_no_stage_set_moves_nothing_even_long_absent(
    absent_3_and_4: None, engine: Engine, archive_dir: Path
) -> None:
    age_absent(engine, 1000)
    before = snapshot(engine)

    [result] = retain(engine).values()

    assert result.outcome == "skipped"
    assert snapshot(engine) == before
    assert archive_files(archive_dir) == []


def test_hide_waits_for_the_days_set_then_hides_without_deleting(
    absent_3_and_4: None, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "2")
    age_absent(engine, 2 - 1 / 24, 3, 4)  # 47 hours: not yet

    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert served(engine) == ids(1, 2, 3, 4)

    age_absent(engine, 2 / 24, 3)  # 3 is now 49 hours inactive, 4 still 47
    before = snapshot(engine)
    assert moved(retain(engine, dry_run=True)["fever"]) == (1, 0, 0)
    assert snapshot(engine) == before

    assert moved(retain(engine)["fever"]) == (1, 0, 0)
    assert hidden(engine) == ids(3)
    assert stored(engine) == ids(1, 2, 3, 4)
    assert served(engine) == ids(1, 2, 4)
    assert moved(retain(engine)["fever"]) == (0, 0, 0)  # hidden once


def test_hide_at_0_days_hides_what_is_not_in_the_latest_feed(
    absent_3_and_4: None, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")

    assert moved(retain(engine, dry_run=True)["fever"]) == (2, 0, 0)
    assert hidden(engine) == set()
    assert moved(retain(engine)["fever"]) == (2, 0, 0)
    assert served(engine) == ids(1, 2)


def test_an_event_in_the_latest_feed_is_never_inactive(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    for variable in ("HIDE", "ARCHIVE", "PURGE"):
        monkeypatch.setenv(f"MARQUEE_RETENTION_{variable}_AFTER_DAYS", "0")
    fetch(monkeypatch, engine, feed_server, feed(1, 2))
    # Years pass between successful fetches that all have both shows.
    age_absent(engine, 3650)
    fetch(monkeypatch, engine, feed_server, feed(1, 2))

    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert served(engine) == ids(1, 2)
    assert archive_files(archive_dir) == []


def test_archive_writes_every_column_then_deletes_and_keeps_tombstones(
    absent_3_and_4: None, engine: Engine, monkeypatch: pytest.MonkeyPatch, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "3")
    age_absent(engine, 4, 3)
    before = snapshot(engine)

    assert moved(retain(engine, dry_run=True)["fever"]) == (0, 1, 0)
    assert snapshot(engine) == before
    assert archive_files(archive_dir) == []

    result = retain(engine)["fever"]

    assert moved(result) == (0, 1, 0)
    [path] = archive_files(archive_dir)
    assert result.counts.archive_file == path
    assert not list(archive_dir.glob("*.partial"))
    # Every stored column of the row, read back as the store had it.
    assert list(read_archive(path)) == [before[0][event_id(3)]]
    assert set(archive_lines(path)[0]) == set(before[0][event_id(3)])
    assert stored(engine) == ids(1, 2, 4)
    [tombstone] = tombstones(engine).values()
    assert (tombstone["id"], tombstone["provider"], tombstone["external_id"]) == (
        event_id(3),
        "fever",
        "3/3",
    )
    assert tombstone["ever_on_sale"] is True
    assert tombstone["last_seen_at"] == before[0][event_id(3)]["last_seen_at"]

    # Nothing left to archive: no second (empty) file.
    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert archive_files(archive_dir) == [path]


def test_each_archiving_pass_writes_its_own_file(
    absent_3_and_4: None, engine: Engine, monkeypatch: pytest.MonkeyPatch, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "1")
    age_absent(engine, 2, 3)
    retain(engine)
    age_absent(engine, 2, 4)

    assert moved(retain(engine)["fever"]) == (0, 1, 0)

    first, second = archive_files(archive_dir)
    assert [line["external_id"] for line in archive_lines(first)] == ["3/3"]
    assert [line["external_id"] for line in archive_lines(second)] == ["4/4"]
    assert set(tombstones(engine)) == ids(3, 4)


def test_purge_deletes_events_and_tombstones_but_never_archive_files(
    absent_3_and_4: None, engine: Engine, monkeypatch: pytest.MonkeyPatch, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "1")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "2")
    monkeypatch.setenv("MARQUEE_RETENTION_PURGE_AFTER_DAYS", "5")
    age_absent(engine, 3)
    assert moved(retain(engine)["fever"]) == (2, 2, 0)
    [path] = archive_files(archive_dir)
    assert set(tombstones(engine)) == ids(3, 4)

    age_absent(engine, 2.5, 3)  # 3: 5.5 days, its tombstone purged; 4: 3 days, kept
    before = snapshot(engine)
    assert moved(retain(engine, dry_run=True)["fever"]) == (0, 0, 1)
    assert snapshot(engine) == before

    assert moved(retain(engine)["fever"]) == (0, 0, 1)
    assert set(tombstones(engine)) == ids(4)
    assert stored(engine) == ids(1, 2)
    assert archive_files(archive_dir) == [path]
    assert {line["external_id"] for line in archive_lines(path)} == {"3/3", "4/4"}


def test_purge_alone_deletes_stored_events_without_an_archive(
    absent_3_and_4: None, engine: Engine, monkeypatch: pytest.MonkeyPatch, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_PURGE_AFTER_DAYS", "1")
    age_absent(engine, 1.5, 4)
    before = snapshot(engine)

    assert moved(retain(engine, dry_run=True)["fever"]) == (0, 0, 1)
    assert snapshot(engine) == before
    assert moved(retain(engine)["fever"]) == (0, 0, 1)

    assert stored(engine) == ids(1, 2, 3)
    assert tombstones(engine) == {}
    assert archive_files(archive_dir) == []


def test_all_stages_due_at_once_dry_run_counts_what_the_pass_moves(
    absent_3_and_4: None, engine: Engine, monkeypatch: pytest.MonkeyPatch, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "1")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "2")
    monkeypatch.setenv("MARQUEE_RETENTION_PURGE_AFTER_DAYS", "3")
    age_absent(engine, 10, 3)
    age_absent(engine, 1.5, 4)
    before = snapshot(engine)

    dry = moved(retain(engine, dry_run=True)["fever"])
    assert snapshot(engine) == before
    real = moved(retain(engine)["fever"])

    assert dry == real == (2, 1, 1)
    # 3 went all the way (hidden, archived, purged); 4 is hidden.
    assert stored(engine) == ids(1, 2, 4)
    assert hidden(engine) == ids(4)
    assert tombstones(engine) == {}
    [path] = archive_files(archive_dir)
    assert [line["external_id"] for line in archive_lines(path)] == ["3/3"]


def test_a_large_store_moves_in_small_batches_to_the_same_result(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_BATCH_SIZE", "7")
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "1")
    fetch(monkeypatch, engine, feed_server, feed(*range(1, 101)))
    fetch(monkeypatch, engine, feed_server, feed(*range(1, 51)))
    age_absent(engine, 2, *range(51, 76))
    before = rows(engine)

    assert moved(retain(engine, dry_run=True)["fever"]) == (50, 25, 0)
    assert moved(retain(engine)["fever"]) == (50, 25, 0)

    assert stored(engine) == ids(*range(1, 51), *range(76, 101))
    assert hidden(engine) == ids(*range(76, 101))
    [path] = archive_files(archive_dir)
    archived = {row["id"]: row for row in read_archive(path)}
    assert set(archived) == ids(*range(51, 76)) == set(tombstones(engine))
    # Hidden in this pass before archiving: the file has the hidden stamp, the rest as stored.
    for id_, row in archived.items():
        assert row["hidden_at"] is not None
        assert {**row, "hidden_at": None} == before[id_]


def test_a_pass_that_fails_midway_keeps_count_of_what_it_moved(
    absent_3_and_4: None, engine: Engine, tmp_path: Path
) -> None:
    """Hidden, then the archive cannot be written: the hide is done, committed and counted."""
    (tmp_path / "file").write_text("in the way")
    policy = RetentionPolicy(hide=0, archive=0)
    run = Pass(engine, "fever", policy, archive_dir=tmp_path / "file" / "archive", batch_size=1)

    with pytest.raises(ArchiveError, match="cannot write archive"):
        run.run()

    assert run.counts.as_dict() == {"hidden": 2, "archived": 0, "purged": 0}
    assert hidden(engine) == ids(3, 4)
    assert tombstones(engine) == {}
