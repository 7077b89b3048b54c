"""A `marquee retention` killed (SIGKILL) at the worst moments loses nothing: while it writes the
archive (only a `.partial` file is left, the store untouched), and after the archive file is in
place but before all of its rows are deleted (each event is still stored or in the file, a restore
puts every one back, and the next pass finishes the job)."""

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.retention.stages import read_archive_ids, restore
from tests.core.retention.helpers import (
    MARQUEE,
    TOMBSTONES,
    archive_files,
    event_id,
    feed,
    fetch,
    marquee,
    rows,
    stored,
    tombstones,
)
from tests.support.feed_server import FeedServer

ABSENT = 2000
PRESENT = 9999  # the one show still in the latest feed


@pytest.fixture
def absent_store(monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer) -> dict:
    """2000 events gone from the feed (so archive-after-0-days takes them all); their rows."""
    fetch(monkeypatch, engine, feed_server, feed(*range(1, ABSENT + 1), PRESENT))
    report = fetch(monkeypatch, engine, feed_server, feed(PRESENT))
    assert report.absent == ABSENT
    return rows(engine)


def retention_env(database_url: str, archive: Path, batch_size: int) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "MARQUEE_ARCHIVE_DIR": str(archive),
        "MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS": "0",
        "MARQUEE_RETENTION_BATCH_SIZE": str(batch_size),
    }


def kill_when(env: dict[str, str], cwd: Path, moment: Callable[[], bool]) -> None:
    """Start `marquee retention` and SIGKILL it as soon as `moment()` holds."""
    process = subprocess.Popen(
        [MARQUEE, "retention"],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while not moment():
            assert process.poll() is None, (
                f"retention ended ({process.returncode}) before the moment to kill it: "
                f"{process.stderr.read() if process.stderr else ''}"
            )
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.002)  # polling another process's progress: no clock to drive
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.stderr:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def absent_ids(before: dict) -> set:
    return {id_ for id_, row in before.items() if row["last_seen_at"] is not None}


def test_killed_while_writing_the_archive_leaves_the_store_untouched(
    absent_store: dict, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    env = retention_env(database_url, archive, batch_size=1)

    kill_when(env, tmp_path, lambda: archive.exists() and any(archive.glob("*.partial")))

    assert archive_files(archive) == []  # no final file: it was killed while writing
    assert rows(engine) == absent_store
    assert tombstones(engine) == {}

    # The next pass does the whole job; the leftover .partial is harmless.
    finished = marquee("retention", cwd=tmp_path, **{**env, "MARQUEE_RETENTION_BATCH_SIZE": "500"})
    assert finished.returncode == 0, finished.stderr
    [path] = archive_files(archive)
    assert set(read_archive_ids(path)) == absent_ids(absent_store) == set(tombstones(engine))
    assert stored(engine) == {event_id(PRESENT)}


def tombstone_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(TOMBSTONES)).scalar_one()


@pytest.mark.parametrize(
    ("moment", "then"),
    [("file_in_place", "rerun"), ("deleting", "restore")],
)
def test_killed_between_archive_file_and_deletes_loses_nothing(
    moment: str, then: str, absent_store: dict, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    env = retention_env(database_url, archive, batch_size=1)
    absent = absent_ids(absent_store)

    if moment == "file_in_place":
        kill_when(env, tmp_path, lambda: bool(archive_files(archive)))
    else:
        kill_when(
            env, tmp_path, lambda: bool(archive_files(archive)) and tombstone_count(engine) > 0
        )

    [first] = archive_files(archive)
    in_file = set(read_archive_ids(first))
    assert in_file == absent  # the file is complete before any row is deleted
    still_stored = stored(engine)
    assert still_stored | in_file == set(absent_store)
    # Every row gone left its tombstone.
    deleted = set(absent_store) - still_stored
    assert set(tombstones(engine)) == deleted
    if moment == "deleting":
        assert 0 < len(deleted) < ABSENT, "the kill missed the deletes"

    rerun_env = {**env, "MARQUEE_RETENTION_BATCH_SIZE": "500"}
    if then == "restore":
        assert restore(engine, first) == (len(deleted), ABSENT - len(deleted))
        assert rows(engine) == absent_store  # every event back, every column as it was
        assert tombstones(engine) == {}
        # The next pass archives them all again, consistently.
        finished = marquee("retention", cwd=tmp_path, **rerun_env)
        assert finished.returncode == 0, finished.stderr
        [second] = [path for path in archive_files(archive) if path != first]
        assert set(read_archive_ids(second)) == absent
    else:
        # The next pass archives the rows the killed one did not get to delete.
        finished = marquee("retention", cwd=tmp_path, **rerun_env)
        assert finished.returncode == 0, finished.stderr
        [second] = [path for path in archive_files(archive) if path != first]
        assert set(read_archive_ids(second)) == still_stored & absent
        assert set(read_archive_ids(second)) | deleted == absent
    assert stored(engine) == {event_id(PRESENT)}
    assert set(tombstones(engine)) == absent

    # And from the files, everything comes back as it was.
    restore(engine, first)
    restore(engine, second)
    assert rows(engine) == absent_store
