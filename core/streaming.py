"""Turn a push-style parser (one that calls back per item) into an iterator with bounded memory."""

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_DONE = object()


class _Cancelled(Exception):
    pass


def iterate_pushed[T](
    produce: Callable[[Callable[[T], None]], None], *, buffer: int = 256
) -> Iterator[T]:
    """Run `produce(emit)` in a thread and yield each item it emits.

    At most `buffer` items wait at once, so a consumer that writes batches to a database keeps the
    parser from running ahead. An exception in `produce` is re-raised here; closing the iterator
    early stops the producer.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=buffer)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return
            except queue.Full:
                continue
        raise _Cancelled

    def run() -> None:
        try:
            produce(put)
            put((_DONE, None))
        except _Cancelled:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            try:
                put((_DONE, exc))
            except _Cancelled:
                return

    worker = threading.Thread(target=run, name="marquee-parse", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if type(item) is tuple and len(item) == 2 and item[0] is _DONE:
                if item[1] is not None:
                    raise item[1]
                return
            yield item
    finally:
        stop.set()
        worker.join()
