"""A push parser turned into an iterator: order kept, errors surfaced, memory bounded, stoppable."""

import threading
import time
from collections.abc import Callable

import pytest

from core.feeds.streaming import iterate_pushed


def count_to(limit: int) -> Callable[[Callable[[int], None]], None]:
    def produce(emit: Callable[[int], None]) -> None:
        for number in range(limit):
            emit(number)

    return produce


@pytest.mark.parametrize("limit", [0, 1, 127, 128, 129, 1000])
def test_iterate_pushed_yields_every_item_in_order(limit: int) -> None:
    assert list(iterate_pushed(count_to(limit))) == list(range(limit))


def test_iterate_pushed_reraises_producer_error_to_the_consumer() -> None:
    def produce(emit: Callable[[int], None]) -> None:
        emit(1)
        raise ValueError("broken feed")

    with pytest.raises(ValueError, match="broken feed"):
        list(iterate_pushed(produce))


def test_iterate_pushed_keeps_producer_bounded_by_a_slow_consumer() -> None:
    emitted = 0

    def produce(emit: Callable[[int], None]) -> None:
        nonlocal emitted
        while True:
            emit(emitted)
            emitted += 1

    items = iterate_pushed(produce, batch=10, buffer=2)
    assert next(items) == 0
    wait_until_parked(lambda: emitted)

    # At most the buffered lists, the one being consumed and the one being filled.
    assert emitted <= 10 * (2 + 2)
    items.close()


def wait_until_parked(progress: Callable[[], int], *, polls: int = 5) -> None:
    """Return once the producer has made no progress over `polls` consecutive checks: it is blocked
    on the full buffer (a producer that is not bounded never stops)."""
    last, still, deadline = progress(), 0, time.monotonic() + 10
    while still < polls:
        assert time.monotonic() < deadline, "the producer never stopped: it is not bounded"
        time.sleep(0.02)
        now = progress()
        still = still + 1 if now == last else 0
        last = now


def test_iterate_pushed_stops_the_producer_when_closed_early() -> None:
    stopped = threading.Event()

    def produce(emit: Callable[[int], None]) -> None:
        try:
            number = 0
            while True:
                emit(number)
                number += 1
        finally:
            stopped.set()

    items = iterate_pushed(produce, batch=5, buffer=1)
    assert [next(items) for _ in range(3)] == [0, 1, 2]

    items.close()

    assert stopped.wait(2)
