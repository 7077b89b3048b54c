"""The data version moves with every fetch that changes what search serves, and only then."""

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.store.db import transaction
from core.store.version import TABLE, bump_data_version, read_data_version
from tests.providers.fever.feeds import fetch_fever, fever_body
from tests.support.feed_server import FeedServer


def version(engine: Engine) -> int:
    with Session(engine) as session:
        return read_data_version(session=session)


def test_a_fetch_bumps_the_version_only_when_it_changes_something(
    engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = version(engine)
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    first = version(engine)
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    unchanged = version(engine)
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_2.xml"))
    changed = version(engine)

    assert start < first == unchanged < changed


def test_a_failed_fetch_leaves_the_version_as_it_was(
    engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    before = version(engine)
    with pytest.raises(Exception, match="feed"):
        fetch_fever(monkeypatch, engine, feed_server, fever_body("malformed_midway.xml"))

    assert version(engine) == before


def test_a_version_never_goes_back_to_one_already_handed_out(engine: Engine) -> None:
    # As after a restore from an older backup: the next bump still passes every version given out.
    with transaction(engine) as session:
        session.execute(TABLE.update().values(version=5))
    with transaction(engine) as session:
        bump_data_version(session=session)

    assert version(engine) >= time.time_ns() // 1000 - 60_000_000


def test_bumping_recreates_a_deleted_row(engine: Engine) -> None:
    with transaction(engine) as session:
        session.execute(sa.delete(TABLE))
    assert version(engine) == 0
    with transaction(engine) as session:
        bump_data_version(session=session)
        bump_data_version(session=session)

    assert version(engine) > 0
