"""SIGINT and SIGTERM during a fetch close its run as interrupted; a worker's warm shutdown lets
the fetch finish, and compose gives it the time to."""

import signal
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.plugins.contract import ProviderSettings
from core.runs import records
from core.scheduling.celery_app import create_celery_app
from core.scheduling.schedule import TASK_FETCH_PROVIDER
from core.settings import Settings
from core.store.models import Event
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import (
    ROOT,
    interrupt,
    recorded,
    start_command,
    wait_for,
)
from tests.support.feed_server import Answer, FeedServer


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_fetch_closes_its_run_as_interrupted_and_keeps_stored_events(
    signum: int,
    code: int,
    database_url: str,
    feed_server: FeedServer,
    engine: Engine,
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": database_url, "MARQUEE_FEVER_URL": feed_server.url("/fever")}
    feed_server.serve(
        "/fever",
        fixture_bytes("fever", "response_1.xml"),
        Answer(fixture_bytes("fever", "response_2.xml"), delay=30),
    )
    assert start_command(["fetch", "fever"], env, tmp_path / "first.log").wait(timeout=60) == 0
    fetch = start_command(["fetch", "fever"], env, tmp_path / "cut.log")
    wait_for(lambda: feed_server.hits("/fever") == 2, timeout=30, what="the second download")

    assert interrupt(fetch, signum) == code

    output = (tmp_path / "cut.log").read_text()
    name = signal.Signals(signum).name
    assert f"fetch of fever interrupted by {name}" in output
    assert "Traceback" not in output
    [first, cut] = recorded(engine)
    assert (first.outcome, first.inserted) == ("success", 3)
    assert (cut.outcome, cut.reason, cut.error) == (
        "failed",
        "interrupted",
        f"interrupted: {name} during the fetch",
    )
    assert cut.finished_at is not None
    with Session(engine) as session:
        assert len(session.exec(select(Event)).all()) == 3
        assert records.consecutive_failures(session=session, provider="fever") == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_warm_shutdown_lets_its_fetch_finish(
    start_worker,
    redis_env: dict[str, str],
    database_url: str,
    feed_server: FeedServer,
    engine: Engine,
) -> None:
    env = {
        **redis_env,
        "DATABASE_URL": database_url,
        "MARQUEE_FEVER_URL": feed_server.url("/fever"),
    }
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=3.0))
    worker = start_worker(env)
    sender = create_celery_app(Settings())
    sender.send_task(TASK_FETCH_PROVIDER, args=["fever"], kwargs={"trigger": "schedule"})
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=30, what="the fetch")

    assert interrupt(worker.process, signal.SIGTERM) == 0

    assert [(run.outcome, run.inserted) for run in recorded(engine)] == [("success", 3)]
    assert "Traceback" not in worker.output()


def seconds(duration: str) -> float:
    """A compose duration such as `11m` or `1m30s`, in seconds."""
    total, number = 0.0, ""
    for char in duration:
        if char.isdigit() or char == ".":
            number += char
            continue
        total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
        number = ""
    return total + (float(number) if number else 0.0)


@pytest.mark.parametrize("service", ["worker", "beat"])
def test_compose_gives_fetching_services_a_stop_grace_longer_than_the_longest_fetch(
    service: str,
) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    longest_deadline = ProviderSettings.model_fields["timeout_seconds"].metadata
    [limit] = [m.le for m in longest_deadline if getattr(m, "le", None) is not None]

    grace = seconds(compose["services"][service]["stop_grace_period"])

    # The download's own deadline, then its upsert and record: a warm shutdown never gets killed.
    assert grace > limit + 30
