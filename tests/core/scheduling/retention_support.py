"""Shared by the retention scheduling tests: a store holding one event that dropped out of its feed."""

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.scheduling.context import build_context
from core.scheduling.job import run_fetch
from core.settings import Settings
from core.store.models import Event, RetentionRun, Trigger
from tests.conftest import fixture_bytes
from tests.support.feed_server import FeedServer

# In response_1.xml, not in response_2.xml.
ABSENT = "Pantomima Full"


def seed_absent_event(engine: Engine, feed_server: FeedServer) -> None:
    """Two real fetches of fever (MARQUEE_FEVER_URL must point at feed_server's /fever): the
    second misses ABSENT, which then ages from the first. /fever keeps serving response_2."""
    context = build_context(Settings(), engine=engine)
    for body in ("response_1.xml", "response_2.xml"):
        feed_server.serve("/fever", fixture_bytes("fever", body))
        result = run_fetch(context, "fever", trigger=Trigger.CLI, retry=False)
        assert result.outcome == "success", result.error
    stored = hidden(engine)
    assert ABSENT in stored
    assert not any(stored.values())


def titles(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(Event.title)))


def hidden(engine: Engine) -> dict[str, bool]:
    """Each stored event's title: whether it is hidden."""
    with Session(engine) as session:
        return {event.title: event.hidden_at is not None for event in session.exec(select(Event))}


def retention_runs(engine: Engine) -> list[RetentionRun]:
    with Session(engine) as session:
        return list(session.exec(select(RetentionRun).order_by(col(RetentionRun.started_at))))
