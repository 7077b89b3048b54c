"""Hostile or broken feeds fail the fetch with a clear error and lose nothing already stored."""

import gzip

import pytest
from sqlalchemy.engine import Engine

from core.errors import FeedError
from tests.providers.fever.feeds import fetch_fever, fever_body, stored_rows
from tests.support.feed_server import Answer, FeedServer


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer) -> dict:
    """The store after response_1, which every failed fetch below must leave exactly as it is."""
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    return stored_rows(engine)


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_fetch_refuses_entity_declarations_and_keeps_stored_events(
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    stored: dict,
) -> None:
    with pytest.raises(FeedError, match="entities"):
        fetch_fever(monkeypatch, engine, feed_server, fever_body(name))

    assert stored_rows(engine) == stored


def test_fetch_failing_on_malformed_xml_midway_rolls_back_earlier_batches(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, stored: dict
) -> None:
    # batch_size=1: the bases before the break are already upserted when the parser fails.
    with pytest.raises(FeedError, match="well-formed"):
        fetch_fever(
            monkeypatch, engine, feed_server, fever_body("malformed_midway.xml"), batch_size=1
        )

    rows = stored_rows(engine)
    assert rows == stored
    assert rows["291/291"]["title"] == "Camela en concierto"
    assert "777/7771" not in rows


def test_fetch_refuses_body_whose_content_length_is_over_the_cap(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, stored: dict
) -> None:
    body = fever_body("response_2.xml")
    assert len(body) > 1024

    with pytest.raises(FeedError, match=f"feed is {len(body)} bytes, over the 1024-byte cap"):
        fetch_fever(monkeypatch, engine, feed_server, body, max_bytes="1024")

    assert stored_rows(engine) == stored


def test_fetch_refuses_compressed_body_that_expands_over_the_cap(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, stored: dict
) -> None:
    # A few hundred bytes on the wire (under the cap) that decode to far more than the cap.
    bomb = gzip.compress(fever_body("response_2.xml") + b"<!--" + b" " * 500_000 + b"-->")
    answer = Answer(bomb, headers={"Content-Encoding": "gzip"})
    assert len(bomb) < 4096

    with pytest.raises(FeedError, match="over the 4096-byte cap"):
        fetch_fever(monkeypatch, engine, feed_server, answer, max_bytes="4096")

    assert stored_rows(engine) == stored


def test_fetch_of_body_within_the_cap_succeeds(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, stored: dict
) -> None:
    body = fever_body("response_2.xml")

    report = fetch_fever(monkeypatch, engine, feed_server, body, max_bytes=str(len(body)))

    assert report.bytes == len(body)
    assert report.updated == 1
