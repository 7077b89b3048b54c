"""Peak memory of the Fever parse step grows with one base, not with the feed.

Generates feeds of N and 10*N base events, parses each through the provider (a stream of expat
events, one event at a time), and prints the peak traced memory of both and their ratio. A parser
that builds the whole document would show a ratio near 10; a streaming one stays near 1.
"""

import io
import sys
import time
import tracemalloc

from providers.fever.parser import parse_feed

BASE = (
    '<base_event base_event_id="{i}" sell_mode="online" title="Event {i}">'
    '<event event_start_date="2021-06-30T21:00:00" event_end_date="2021-06-30T22:00:00" '
    'event_id="{i}" sell_from="2020-07-01T00:00:00" sell_to="2021-06-30T20:00:00" sold_out="false">'
    '<zone zone_id="1" capacity="10" price="20.00" name="A" numbered="true"/>'
    '<zone zone_id="2" capacity="10" price="30.00" name="B" numbered="true"/>'
    "</event></base_event>"
)


def feed(count: int) -> bytes:
    body = "".join(BASE.format(i=i) for i in range(count))
    return f'<?xml version="1.0"?><eventList version="1.0"><output>{body}</output></eventList>'.encode()


def peak_parse(document: bytes) -> tuple[int, int, float]:
    """Events parsed, peak traced memory, and seconds of an untraced run (tracing slows allocation)."""
    started = time.perf_counter()
    events = sum(1 for _ in parse_feed(io.BytesIO(document)))
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    sum(1 for _ in parse_feed(io.BytesIO(document)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return events, peak, elapsed


def main() -> None:
    small_n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    small_doc, large_doc = feed(small_n), feed(small_n * 10)
    small_events, small_peak, small_time = peak_parse(small_doc)
    large_events, large_peak, large_time = peak_parse(large_doc)
    print(
        f"feed of {small_events:>7} events ({len(small_doc) / 1e6:6.1f} MB): peak {small_peak / 1e6:6.2f} MB, {small_time:.2f}s"
    )
    print(
        f"feed of {large_events:>7} events ({len(large_doc) / 1e6:6.1f} MB): peak {large_peak / 1e6:6.2f} MB, {large_time:.2f}s"
    )
    print(f"feed size ratio: {len(large_doc) / len(small_doc):.1f}x")
    print(f"peak memory ratio: {large_peak / small_peak:.2f}x (streaming target: < 2x)")
    print(
        f"throughput ratio (events/s large vs small): {(large_events / large_time) / (small_events / small_time):.2f}x"
    )


if __name__ == "__main__":
    main()
