"""`marquee retention [--dry-run] [--provider NAME]` and `marquee retention restore PATH`, run as
an operator runs them: environment in, words and exit codes out, the store read back."""

import gzip
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.store.models import RetentionRun
from tests.core.retention.helpers import (
    age_absent,
    archive_files,
    feed,
    fetch,
    hidden,
    ids,
    marquee,
    snapshot,
    stored,
    tombstones,
)
from tests.support.feed_server import FeedServer


def runs(engine: Engine) -> list[RetentionRun]:
    with Session(engine) as session:
        return list(session.exec(select(RetentionRun)))


@pytest.fixture
def three_absent(monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer) -> None:
    """Shows 2, 3 and 4 gone from the feed; 4 since five days."""
    fetch(monkeypatch, engine, feed_server, feed(1, 2, 3, 4))
    fetch(monkeypatch, engine, feed_server, feed(1))
    age_absent(engine, 5, 4)


def test_a_stage_left_unset_is_reported_off_not_as_zero(
    three_absent: None, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "MARQUEE_RETENTION_HIDE_AFTER_DAYS": "0"}

    dry = marquee("retention", "--dry-run", cwd=tmp_path, **env)

    assert dry.returncode == 0, dry.stderr
    assert "fever: would hide 3, archive off, purge off" in dry.stdout


def test_dry_run_reports_what_the_real_run_then_does(
    three_absent: None, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "MARQUEE_ARCHIVE_DIR": str(tmp_path / "archive"),
        "MARQUEE_RETENTION_HIDE_AFTER_DAYS": "0",
        "MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS": "3",
        "MARQUEE_RETENTION_PURGE_AFTER_DAYS": "30",
    }
    before = snapshot(engine)

    dry = marquee("retention", "--dry-run", cwd=tmp_path, **env)

    assert dry.returncode == 0, dry.stderr
    assert "fever: would hide 3, would archive 1, would purge 0" in dry.stdout
    assert snapshot(engine) == before
    assert runs(engine) == []  # a dry run is not recorded
    assert not (tmp_path / "archive").exists()

    real = marquee("retention", cwd=tmp_path, **env)

    assert real.returncode == 0, real.stderr
    [path] = archive_files(tmp_path / "archive")
    assert f"fever: 3 hidden, 1 archived, 0 purged (archive {path})" in real.stdout
    assert stored(engine) == ids(1, 2, 3)
    assert hidden(engine) == ids(2, 3)
    assert set(tombstones(engine)) == ids(4)
    [run] = runs(engine)
    assert (run.provider, run.trigger, run.outcome) == ("fever", "cli", "success")
    assert (run.hidden, run.archived, run.purged, run.archive_file) == (3, 1, 0, str(path))
    assert run.finished_at is not None


def test_an_unwritable_archive_dir_fails_the_command_and_deletes_nothing(
    three_absent: None, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive directory's parent should be")
    archive = blocker / "archive"
    before = snapshot(engine)

    result = marquee(
        "retention",
        cwd=tmp_path,
        DATABASE_URL=database_url,
        MARQUEE_ARCHIVE_DIR=str(archive),
        MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS="0",
    )

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("marquee: retention of fever failed: cannot write archive")
    assert str(archive) in last
    assert snapshot(engine) == before
    [run] = runs(engine)
    assert run.outcome == "failed" and "cannot write archive" in (run.error or "")


def test_retention_with_no_stage_set_says_it_is_off(
    three_absent: None, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    before = snapshot(engine)

    result = marquee("retention", cwd=tmp_path, DATABASE_URL=database_url)

    assert result.returncode == 0, result.stderr
    assert "retention is off" in result.stdout
    assert snapshot(engine) == before


def test_retention_of_an_unknown_provider_is_a_config_error(
    database_url: str, tmp_path: Path
) -> None:
    result = marquee(
        "retention",
        "--provider",
        "nosuch",
        cwd=tmp_path,
        DATABASE_URL=database_url,
        MARQUEE_RETENTION_HIDE_AFTER_DAYS="0",
    )

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "nosuch" in result.stderr
    assert "Traceback" not in result.stderr


def test_restore_command_twice_then_a_corrupt_file(
    three_absent: None, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "MARQUEE_ARCHIVE_DIR": str(tmp_path / "archive")}
    archived = marquee("retention", cwd=tmp_path, MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS="0", **env)
    assert archived.returncode == 0, archived.stderr
    [path] = archive_files(tmp_path / "archive")
    assert stored(engine) == ids(1)

    first = marquee("retention", "restore", str(path), cwd=tmp_path, **env)
    after_first = snapshot(engine)
    second = marquee("retention", "restore", str(path), cwd=tmp_path, **env)

    assert first.returncode == second.returncode == 0, (first.stderr, second.stderr)
    assert f"{path}: 3 events restored, 0 already stored" in first.stdout
    assert f"{path}: 0 events restored, 3 already stored" in second.stdout
    assert snapshot(engine) == after_first
    assert stored(engine) == ids(1, 2, 3, 4)

    # A copy with its second line damaged: refused, naming it, and none of its events restored.
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"title":', b'"title":{', 1)
    corrupt = tmp_path / "corrupt.jsonl.gz"
    corrupt.write_bytes(gzip.compress(b"".join(lines)))
    archived_again = marquee(
        "retention", cwd=tmp_path, MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS="0", **env
    )
    assert archived_again.returncode == 0, archived_again.stderr
    before = snapshot(engine)

    refused = marquee("retention", "restore", str(corrupt), cwd=tmp_path, **env)

    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stderr
    assert re.search(
        r"restore failed, nothing restored: .*corrupt\.jsonl\.gz, line 2", refused.stderr
    )
    assert snapshot(engine) == before
