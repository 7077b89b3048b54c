"""/search throughput while a 100k-event feed is being fetched, against the same server idle.

Seeds 100k events, then measures hot /search with wrk (64 connections) in four cases:
- `marquee run` fetching: its embedded scheduler re-fetches the 100k-event feed every 10 s
  (MARQUEE_FEVER_INTERVAL_SECONDS=10, the minimum; a fetch lasts longer, so they follow one
  another), against `marquee run` idle (its one fetch, of an empty feed, done before measuring).
  The scheduler runs in `marquee run`'s supervisor process, requests in its worker process (one,
  `--workers 1`, as the baseline); a Marquee without --workers fetched in its serving process;
- `marquee serve` beside a separate `marquee fetch` process, against `marquee serve` alone.
Ratios during/idle (of 2xx answers per second) say how much a fetch takes from serving,
under `marquee run` or from a process beside it. Each measurement starts on a fresh server 2 s after the fetch has begun downloading; each says
whether the fetch was still running when wrk stopped. Cases alternate by round, medians printed.
"""

import argparse
import contextlib
import json
import subprocess
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import _harness as h

INTERVAL = "10"
LEAD_SECONDS = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    return parser.parse_args()


def wait_for_request(feed: h.FeedServer, seen: int, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while len(feed.requests) <= seen and time.monotonic() < deadline:
        time.sleep(0.05)


def still_fetching(port: int, since: datetime) -> str:
    """Whether the provider's last run was still going (or ended after `since`), from /providers."""
    try:
        _, body = h.get(port, "/providers", timeout=20)
        providers = json.loads(body)["data"]["providers"]
        run = next(p["last_run"] for p in providers if p["name"] == "fever") or {}
    except (OSError, ValueError, KeyError, StopIteration):
        return "unknown"
    finished = run.get("finished_at")
    if finished is None:
        return "yes" if run.get("outcome") == "running" else "no run"
    return "yes" if datetime.fromisoformat(finished) >= since else f"no ({run.get('outcome')})"


def run_case(
    seed: h.Seeded, port: int, feed: h.FeedServer, interval: str, args: argparse.Namespace
) -> tuple:
    """`marquee run` fetching `feed` every `interval` seconds; wrk from 2 s into a fetch."""
    env = {**seed.env, "MARQUEE_FEVER_URL": feed.url, "MARQUEE_FEVER_INTERVAL_SECONDS": interval}
    seen = len(feed.requests)
    with h.marquee_server(env, seed.workdir, port, command="run", grace=1):
        wait_for_request(feed, seen)
        h.get(port, hot_path(args))
        time.sleep(LEAD_SECONDS)
        result = h.wrk(port, hot_path(args), 64, args.seconds, None, "10s")
        return result, still_fetching(port, datetime.now(UTC))


def serve_case(seed: h.Seeded, port: int, with_fetch: bool, args: argparse.Namespace) -> tuple:
    """`marquee serve`, alone or beside a `marquee fetch` process started 2 s before wrk."""
    with h.marquee_server(seed.env, seed.workdir, port, grace=1):
        if not with_fetch:
            h.get(port, hot_path(args))
            return h.wrk(port, hot_path(args), 64, args.seconds, None, "10s"), "-"
        seen = len(seed.feed.requests)
        fetcher = subprocess.Popen(
            [h.MARQUEE, "fetch", "fever"], env=seed.env, cwd=seed.workdir,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_request(seed.feed, seen)
            time.sleep(LEAD_SECONDS)
            result = h.wrk(port, hot_path(args), 64, args.seconds, None, "10s")
            return result, "yes" if fetcher.poll() is None else "no"
        finally:
            fetcher.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                fetcher.wait(10)
            fetcher.kill()
            fetcher.wait()


def hot_path(args: argparse.Namespace) -> str:
    return f"/search?{h.window(args.events // 2)}"


def empty_feed(workdir: Path) -> Path:
    path = workdir / "empty.xml"
    path.write_text('<?xml version="1.0"?><eventList version="1.0"><output></output></eventList>')
    return path


def main() -> None:
    args = parse_args()
    h.print_load("at start")
    results: defaultdict = defaultdict(list)
    covered: defaultdict = defaultdict(list)
    with (
        h.seeded(args.database, args.events) as seed,
        h.FeedServer(empty_feed(seed.workdir)) as empty,
    ):
        port = h.free_port()
        cases = {
            "run, idle": lambda: run_case(seed, port, empty, "86400", args),
            "run, fetching": lambda: run_case(seed, port, seed.feed, INTERVAL, args),
            "serve, idle": lambda: serve_case(seed, port, False, args),
            "serve + marquee fetch": lambda: serve_case(seed, port, True, args),
        }
        for round_ in range(args.rounds):
            for name, case in cases.items() if round_ % 2 == 0 else reversed(cases.items()):
                result, fetching = case()
                results[name].append(result)
                covered[name].append(fetching)
    report(results, covered, args)


def report(results: dict, covered: dict, args: argparse.Namespace) -> None:
    median = {name: h.median_result(runs) for name, runs in results.items()}
    print(f"\nhot /search, 64 connections, median of {args.rounds} rounds of {args.seconds:g} s:")
    h.wrk_rows(median)
    for name, flags in covered.items():
        print(f"  {name}: fetch still running when wrk stopped: {', '.join(flags)}")
    rps = {name: r.ok_rps for name, r in median.items()}
    print()
    h.print_table(
        ["ratio", "value"],
        [
            ["run: fetching/idle", h.ratio(rps["run, fetching"], rps["run, idle"])],
            ["serve: beside fetch/idle", h.ratio(rps["serve + marquee fetch"], rps["serve, idle"])],
        ],
    )


if __name__ == "__main__":
    main()
    h.print_load("at end")
