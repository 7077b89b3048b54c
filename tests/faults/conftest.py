"""The fault suite's provider: a FaultFeed on 127.0.0.1 serving the Fever feed's URL."""

from collections.abc import Iterator

import pytest

from tests.support.fault_feed import FaultFeed


@pytest.fixture
def fault_feed() -> Iterator[FaultFeed]:
    server = FaultFeed().start()
    yield server
    server.stop()
