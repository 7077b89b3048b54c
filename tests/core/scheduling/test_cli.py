"""`marquee fetch`, `worker` and `beat` as an operator meets them."""

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.cli import main
from core.scheduling.locks import RedisLocks
from core.settings import Settings
from core.store.models import FetchRun
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import REDIS_URL
from tests.support.feed_server import Answer, FeedServer


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The commands configure the root logger; later tests must not write to a closed capture."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def fever_url(settings: Settings, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> str:
    url = feed_server.url("/fever")
    monkeypatch.setenv("MARQUEE_FEVER_URL", url)
    return url


def recorded(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(run.trigger, run.outcome) for run in session.exec(select(FetchRun))]


def test_fetch_prints_counts_and_records_a_cli_run(
    fever_url: str, feed_server: FeedServer, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))

    assert main(["fetch", "fever"]) == 0

    assert capsys.readouterr().out.startswith("fever: 3 inserted, 0 updated, 0 unchanged")
    assert recorded(engine) == [("cli", "success")]


def test_fetch_exits_1_on_a_server_error_without_retrying(
    fever_url: str, feed_server: FeedServer, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.serve("/fever", Answer(b"down", status=503))

    assert main(["fetch", "fever"]) == 1

    assert "fetch of fever failed: HTTP 503" in capsys.readouterr().err
    assert feed_server.hits("/fever") == 1
    assert recorded(engine) == [("cli", "failed")]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_fetch_skips_while_a_scheduled_run_holds_the_lock(
    fever_url: str,
    feed_server: FeedServer,
    engine: Engine,
    redis_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    held = RedisLocks(REDIS_URL, prefix=redis_env["MARQUEE_REDIS_KEY_PREFIX"], lease_seconds=60)
    lock = held.for_provider("fever")
    assert lock.acquire()
    try:
        assert main(["fetch", "fever"]) == 1
    finally:
        lock.release()

    assert "fetch of fever skipped: another run" in capsys.readouterr().err
    assert feed_server.hits("/fever") == 0
    assert recorded(engine) == [("cli", "skipped")]


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_celery_commands_refuse_to_start_without_redis(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == 2

    assert "REDIS_URL is not set" in capsys.readouterr().err
