"""/search throughput of `marquee serve` against a bare FastAPI floor, at 64, 256 and 1,024
connections, hot and cold.

Seeds 100k events (one every 10 minutes) through `marquee fetch fever`, then measures with wrk:
- hot: the same ~50-event window every request; cold: a different ~50-event window every request
  (a wrk Lua script), so a cache of recent answers cannot serve it;
- baseline: a bare FastAPI app on uvicorn answering /search with one captured Marquee response
  body, under the same host, port, worker count and uvicorn options. It is what the framework
  alone costs, the ceiling Marquee's own work is measured against.
Ratios: hot/baseline and cold/baseline (at 64 connections) say what Marquee's work costs;
256/64 and 1024/64 say whether throughput holds as connections grow. Marquee and the baseline
alternate by round and each figure is the median of its rounds, so drift on this shared machine
hits both alike.
"""

import argparse
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import _harness as h

CONNECTIONS = (64, 256, 1024)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--workers", type=int, default=1, help="server workers, if serve has them")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6)
    return parser.parse_args()


def choose_workers(asked: int) -> int:
    if asked > 1 and not h.workers_supported():
        print(f"`marquee serve` takes no --workers: measuring 1 worker, not {asked}")
        return 1
    return asked


@dataclass
class Setup:
    seed: h.Seeded
    port: int
    workers: int
    hot: str
    cold: Path
    body: Path
    seconds: float
    results: defaultdict = field(default_factory=lambda: defaultdict(list))


def capture_body(setup: Setup) -> None:
    """The baseline serves the very bytes Marquee answers the hot URL with."""
    with h.marquee_server(setup.seed.env, setup.seed.workdir, setup.port, workers=setup.workers):
        status, payload = h.get(setup.port, setup.hot)
    setup.body.write_bytes(payload)
    print(f"hot response: HTTP {status}, {len(payload):,} bytes; workers {setup.workers}")


def marquee_round(setup: Setup) -> None:
    """A fresh server per case: today's server is still stuck on the requests of the previous case
    long after their clients have gone."""
    for c in CONNECTIONS:
        for kind, path, script in (("hot", setup.hot, None), ("cold", "/search", setup.cold)):
            with h.marquee_server(
                setup.seed.env, setup.seed.workdir, setup.port, workers=setup.workers, grace=3
            ):
                h.get(setup.port, path if script is None else setup.hot)
                run = h.wrk(setup.port, path, c, setup.seconds, script, "10s")
            setup.results[f"{kind} {c}"].append(run)


def baseline_round(setup: Setup) -> None:
    """The baseline holds no backlog: one server serves its three cases."""
    with h.baseline_server(setup.body, setup.seed.workdir, setup.port, setup.workers) as server:
        for c in CONNECTIONS:
            h.settle(server.proc.pid)
            run = h.wrk(setup.port, setup.hot, c, setup.seconds, None, "10s")
            setup.results[f"baseline {c}"].append(run)


def main() -> None:
    args = parse_args()
    h.raise_fd_limit()
    workers = choose_workers(args.workers)
    with h.seeded(args.database, args.events) as seed:
        setup = Setup(
            seed=seed,
            port=h.free_port(),
            workers=workers,
            hot=f"/search?{h.window(args.events // 2)}",
            cold=h.cold_script(seed.workdir / "cold.lua", args.events),
            body=seed.workdir / "body.json",
            seconds=args.seconds,
        )
        capture_body(setup)
        for round_ in range(args.rounds):
            order = (
                (marquee_round, baseline_round)
                if round_ % 2 == 0
                else (baseline_round, marquee_round)
            )
            for measure in order:
                measure(setup)
    report({name: h.median_result(runs) for name, runs in setup.results.items()}, args)


def report(median: dict[str, h.WrkResult], args: argparse.Namespace) -> None:
    print(f"\nmedian of {args.rounds} rounds of {args.seconds:g} s, {args.database}:")
    h.wrk_rows(median)
    rps = {name: r.rps for name, r in median.items()}
    print()
    h.print_table(
        ["ratio", "value"],
        [
            ["hot/baseline (64)", h.ratio(rps["hot 64"], rps["baseline 64"])],
            ["cold/baseline (64)", h.ratio(rps["cold 64"], rps["baseline 64"])],
            *(
                [f"{kind} {c}/64", h.ratio(rps[f"{kind} {c}"], rps[f"{kind} 64"])]
                for kind in ("hot", "cold", "baseline")
                for c in CONNECTIONS[1:]
            ),
        ],
    )


if __name__ == "__main__":
    main()
