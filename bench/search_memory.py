"""Server memory under full-range searches, and what they do to narrow searches beside them.

Stores 200k events, starts `marquee serve`, and sends 8 concurrent /search requests with no
bounds (each answers every event) while two clients keep asking a ~50-event window. Prints the
server's RSS increase (peak during minus before, whole process tree, polled from /proc) and the
narrow searches' p50/p99 during the full-range requests against the same clients run idle first.
A server that builds whole answers in memory grows by about 8 answers' worth; one that streams
them grows little, and a server that shares its workers fairly keeps the narrow p99 near idle.
The full-range requests are made by curl, so the Python clients timing narrow searches do not
share an interpreter with 8 large downloads.
"""

import argparse
import statistics
import subprocess
import threading
import time

import _harness as h

FULL_RANGE = 8
NARROW_CLIENTS = 2
FULL_TIMEOUT = 240


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--events", type=int, default=200_000)
    return parser.parse_args()


class NarrowClients:
    """Clients asking the same narrow window back to back until stopped; latencies in ms."""

    def __init__(self, port: int, path: str) -> None:
        self.port, self.path = port, path
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                status, _ = h.get(self.port, self.path, timeout=30)
            except OSError as exc:
                self.failures.append(type(exc).__name__)
                continue
            self.latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                self.failures.append(f"HTTP {status}")

    def __enter__(self) -> "NarrowClients":
        self._threads = [threading.Thread(target=self._loop) for _ in range(NARROW_CLIENTS)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def row(self, name: str) -> list[object]:
        ordered = sorted(self.latencies) or [float("nan")]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return [name, len(self.latencies), statistics.median(ordered), p99, len(self.failures)]


def full_range(port: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["curl", "-s", "-o", "/dev/null", "--max-time", str(FULL_TIMEOUT), "-w",
         "%{http_code} %{size_download} %{time_total}", f"http://{h.HOST}:{port}/search"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def main() -> None:
    args = parse_args()
    narrow = f"/search?{h.window(args.events // 2)}"
    with h.seeded(args.database, args.events) as seed:
        port = h.free_port()
        with h.marquee_server(seed.env, seed.workdir, port) as server:
            with NarrowClients(port, narrow) as idle:
                time.sleep(3)
            h.settle(server.proc.pid)
            before = h.tree_rss_mb(server.proc.pid)
            with h.RssSampler(server.proc.pid) as rss, NarrowClients(port, narrow) as during:
                started = time.perf_counter()
                answers = [
                    p.communicate()[0].split()
                    for p in [full_range(port) for _ in range(FULL_RANGE)]
                ]
                elapsed = time.perf_counter() - started
    print(
        f"\n{FULL_RANGE} concurrent full-range /search over {args.events:,} events, {elapsed:.1f} s"
    )
    for code, size, seconds in answers:
        print(f"  HTTP {code}, {int(size):,} bytes in {float(seconds):.1f} s")
    print(f"server RSS: before {before:,.0f} MB, peak {rss.peak_mb:,.0f} MB")
    print(f"server RSS increase: {rss.peak_mb - before:,.0f} MB\n")
    h.print_table(
        ["narrow /search", "requests", "p50 ms", "p99 ms", "failures"],
        [idle.row("idle"), during.row("beside full-range")],
    )
    idle_p99, during_p99 = idle.row("")[3], during.row("")[3]
    print(f"narrow p99 during/idle: {h.ratio(during_p99, idle_p99)}")


if __name__ == "__main__":
    main()
