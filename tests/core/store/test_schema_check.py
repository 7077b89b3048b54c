"""Processes refuse to start on a database whose schema is not the code's, and say what to run."""

import logging
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from core.errors import ConfigError
from core.store.migrate import require_current_schema, schema_revisions, upgrade
from tests.support.serving import MARQUEE


def test_schema_check_passes_on_a_migrated_database(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        current, head = schema_revisions(engine)
        assert current == head is not None
        require_current_schema(engine)
    finally:
        engine.dispose()


def test_schema_check_refuses_a_database_one_migration_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url, "0001")
    engine = sa.create_engine(url)
    try:
        with pytest.raises(ConfigError, match=r"revision 0001.*run `marquee migrate`"):
            require_current_schema(engine)
    finally:
        engine.dispose()


def test_schema_check_lets_an_unreachable_database_start_for_ready_to_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    with caplog.at_level(logging.WARNING, logger="core.store.migrate"):
        # No exception: the process starts, and /ready answers 503 until the database is back.
        require_current_schema(engine)
    assert "database unreachable at startup; schema not checked" in caplog.text


@pytest.mark.parametrize("command", [["serve", "--port", "8139"], ["run", "--port", "8139"]])
def test_serve_on_an_empty_database_exits_2_asking_for_migrate(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    done = subprocess.run(
        [MARQUEE, *command], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "run `marquee migrate`" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_with_migrate_brings_an_empty_database_up_and_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("MARQUEE_PROVIDERS", ",")  # none: an empty value means the default
    process = subprocess.Popen(
        [MARQUEE, "run", "--migrate", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/search", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, (
            process.stderr.read() if process.poll() is not None else "no answer"
        )
        assert answer.status_code == 200
        assert answer.json() == {"data": {"events": []}, "error": None}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_schema_check_lets_older_code_start_on_a_database_newer_code_migrated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A rolling deploy migrates first; old replicas must keep serving until they are replaced.
    url = f"sqlite:///{tmp_path / 'ahead.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
        require_current_schema(engine)
    finally:
        engine.dispose()
    assert "newer than this code's" in caplog.text
