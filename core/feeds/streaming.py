"""Turn a push-style parser (one that calls back per item) into an iterator with bounded memory."""

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_DONE = object()


class _Cancelled(Exception):
    pass


def iterate_pushed[T](
    produce: Callable[[Callable[[T], None]], None], *, batch: int = 128, buffer: int = 8
) -> Iterator[T]:
    """Run `produce(emit)` in a thread and yield each item it emits, in order.

    Items cross threads in lists of `batch` (one handoff per item would cost more than parsing),
    and at most `buffer` lists wait at once, so the parser never runs far ahead of a consumer that
    writes to a database. An exception in `produce` is re-raised here; closing the iterator early
    stops the producer.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=buffer)
    stop = threading.Event()
    pending: list[T] = []

    def put(message: Any) -> None:
        while not stop.is_set():
            try:
                handoff.put(message, timeout=0.05)
                return
            except queue.Full:
                continue
        raise _Cancelled

    def emit(item: T) -> None:
        pending.append(item)
        if len(pending) >= batch:
            put(pending.copy())
            pending.clear()

    def run() -> None:
        error: BaseException | None = None
        try:
            produce(emit)
            if pending:
                put(pending.copy())
        except _Cancelled:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            error = exc
        try:
            put((_DONE, error))
        except _Cancelled:
            return

    worker = threading.Thread(target=run, name="marquee-parse", daemon=True)
    worker.start()
    try:
        while True:
            message = handoff.get()
            if type(message) is tuple:
                if message[1] is not None:
                    raise message[1]
                return
            yield from message
    finally:
        stop.set()
        worker.join()
