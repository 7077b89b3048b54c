"""Shared helpers of the benchmarks: they drive Marquee only through its CLI and HTTP.

Nothing here imports Marquee's own modules, so the benchmarks keep working while its internals
move. Feeds are generated on disk and served from 127.0.0.1; every load stays on loopback and
every wrk run is bounded by its duration and a subprocess timeout.

Run as a script (`python bench/_harness.py baseline BODY_FILE HOST PORT WORKERS`) it serves the
baseline app: a bare FastAPI app answering /search with constant bytes.
"""

import contextlib
import functools
import http.client
import http.server
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MARQUEE = str(ROOT / ".venv" / "bin" / "marquee")
PYTHON = sys.executable
HOST = "127.0.0.1"
POSTGRES_ADMIN = os.environ.get("MARQUEE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
WRK = shutil.which("wrk") or "/usr/bin/wrk"

ORIGIN = datetime(2020, 1, 1)
STEP = timedelta(minutes=10)
DURATION = timedelta(hours=1)
ORIGIN_EPOCH = 1577836800  # ORIGIN as a Unix time, for wrk's Lua (feed times are read as UTC)

# --- feeds -------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def write_feed(path: Path, events: int, zones: int = 2, per_base: int = 1) -> int:
    """A Fever feed of `events` online events, one every STEP from ORIGIN, each lasting DURATION,
    with `zones` priced zones each; returns its size in bytes."""
    zone_xml = "".join(
        f'<zone zone_id="{z}" capacity="100" price="{10 + z}.00" name="Zone {z}" numbered="true"/>'
        for z in range(zones)
    )
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<eventList version="1.0"><output>\n')
        for base in range(0, events, per_base):
            out.write(
                f'<base_event base_event_id="{base}" sell_mode="online" title="Event {base}">'
            )
            for i in range(base, min(base + per_base, events)):
                begins = ORIGIN + i * STEP
                out.write(
                    f'<event event_start_date="{_stamp(begins)}" '
                    f'event_end_date="{_stamp(begins + DURATION)}" event_id="{i}" '
                    f'sell_from="2019-01-01T00:00:00" sell_to="{_stamp(begins)}" sold_out="false">'
                    f"{zone_xml}</event>"
                )
            out.write("</base_event>\n")
        out.write("</output></eventList>\n")
    return path.stat().st_size


def window(first: int, count: int = 50) -> str:
    """Query string of a /search window holding exactly events first .. first+count-1."""
    starts = ORIGIN + first * STEP
    ends = ORIGIN + (first + count - 1) * STEP + DURATION
    return f"starts_at={_stamp(starts)}Z&ends_at={_stamp(ends)}Z"


class _FeedHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: FeedServer = self.server  # type: ignore[assignment]
        server.requests.append(time.monotonic())
        size = server.path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with server.path.open("rb") as feed, contextlib.suppress(OSError):
            shutil.copyfileobj(feed, self.wfile, 1 << 20)

    def log_message(self, *args: object) -> None:
        pass


class FeedServer(http.server.ThreadingHTTPServer):
    """Serves one feed file on 127.0.0.1 from a thread; `requests` holds when each GET came."""

    daemon_threads = True

    def __init__(self, path: Path) -> None:
        super().__init__((HOST, 0), _FeedHandler)
        self.path = path
        self.requests: list[float] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/feed.xml"

    def __enter__(self) -> "FeedServer":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


# --- environment, databases, CLI ---------------------------------------------------------------


def scratch_dir() -> Path:
    """A temp dir to run Marquee in, so no `.env` of the checkout leaks into the measurement."""
    return Path(tempfile.mkdtemp(prefix="marquee-bench-"))


def clean_env(database_url: str, **settings: str) -> dict[str, str]:
    """os.environ without any Marquee, database or Redis setting, plus the given ones."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MARQUEE_", "DATABASE_")) and key != "REDIS_URL"
    }
    env.update(
        DATABASE_URL=database_url,
        MARQUEE_PROVIDERS="fever",
        MARQUEE_LOG_LEVEL="WARNING",
        MARQUEE_FEVER_TIMEOUT_SECONDS="600",
    )
    env.update(settings)
    return env


def _admin(sql: str, database_url: str = f"{POSTGRES_ADMIN}/postgres") -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql)


def settle_database(database_url: str) -> None:
    """After a bulk load, PostgreSQL's autovacuum and checkpoint would slow whichever case runs
    first; doing both now starts every case from the steady state of a long-running database."""
    if database_url.startswith("postgresql"):
        _admin("VACUUM ANALYZE", database_url)
        _admin("CHECKPOINT", database_url)


@contextlib.contextmanager
def scratch_database(kind: str, workdir: Path, template: str | None = None) -> Iterator[str]:
    """DATABASE_URL of a fresh PostgreSQL database (dropped afterwards) or SQLite file; on
    PostgreSQL, a copy of the scratch database at the URL `template` when given (nobody may be
    connected to that one meanwhile)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    name = f"marquee_bench_{uuid.uuid4().hex[:10]}"
    copy = f" TEMPLATE {template.rsplit('/', 1)[1]}" if template else ""
    _admin(f"CREATE DATABASE {name}{copy}")
    try:
        yield f"{POSTGRES_ADMIN}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def marquee(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600) -> str:
    """Run one `marquee` command to completion; its stdout, or an error with its stderr."""
    done = subprocess.run(
        [MARQUEE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"marquee {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


@dataclass
class FetchRun:
    seconds: float
    returncode: int
    peak_rss_mb: float
    report: dict | None
    stderr: str


def fetch(env: dict[str, str], cwd: Path, timeout: float = 600) -> FetchRun:
    """`marquee fetch fever --json`, timed, with the peak RSS of that very process (wait4)."""
    out_path, err_path = cwd / "fetch.out", cwd / "fetch.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [MARQUEE, "fetch", "fever", "--json"], env=env, cwd=cwd, stdout=out, stderr=err
        )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out_path.read_text()
    report = json.loads(text) if proc.returncode == 0 and text.strip() else None
    stderr = err_path.read_text().strip()
    return FetchRun(seconds, proc.returncode, usage.ru_maxrss / 1024, report, stderr)


@dataclass
class Seeded:
    workdir: Path
    env: dict[str, str]
    feed: FeedServer
    load: FetchRun


@contextlib.contextmanager
def seeded(database: str, events: int, zones: int = 1, **settings: str) -> Iterator[Seeded]:
    """A scratch database holding `events` events, loaded by `marquee fetch fever` from a feed
    served on 127.0.0.1 (which keeps being served); dropped afterwards."""
    workdir = scratch_dir()
    try:
        write_feed(workdir / "feed.xml", events, zones)
        with (
            scratch_database(database, workdir) as url,
            FeedServer(workdir / "feed.xml") as feed,
        ):
            env = clean_env(url, MARQUEE_FEVER_URL=feed.url, MARQUEE_FEVER_MAX_BYTES=str(1 << 31))
            env.update(settings)
            marquee(env, workdir, "migrate")
            load = fetch(env, workdir)
            if load.report is None:
                raise RuntimeError(f"seeding fetch failed: {load.stderr[-2000:]}")
            settle_database(url)
            print(f"seeded {events:,} events ({database}) in {load.seconds:.1f} s", flush=True)
            yield Seeded(workdir, env, feed, load)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def get(port: int, path: str, timeout: float = 120) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """A server subprocess in its own process group, started and waited for until it answers."""

    def __init__(
        self, cmd: list[str], env: dict[str, str], cwd: Path, port: int, grace: float = 15
    ) -> None:
        self.cmd, self.env, self.cwd, self.port, self.grace = cmd, env, cwd, port, grace
        self.log = cwd / f"server-{port}-{time.monotonic_ns()}.log"

    def __enter__(self) -> "Server":
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, cwd=self.cwd, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[:3]} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                get(self.port, "/health", timeout=2)
                return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"{self.cmd[:3]} did not answer within 60 s")

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(self.grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@functools.cache
def workers_supported() -> bool:
    """Whether this Marquee's `serve` takes --workers (read from its --help)."""
    done = subprocess.run([MARQUEE, "serve", "--help"], capture_output=True, text=True, timeout=60)
    return "--workers" in done.stdout


def marquee_server(
    env: dict[str, str],
    cwd: Path,
    port: int,
    command: str = "serve",
    workers: int = 1,
    grace: float = 15,
) -> Server:
    """`marquee serve` (or `run`); `grace` is how long a SIGTERM is given before SIGKILL."""
    cmd = [MARQUEE, command, "--host", HOST, "--port", str(port)]
    # Said even for one: a Marquee with --workers defaults to one per CPU, not to one.
    if workers_supported():
        cmd += ["--workers", str(workers)]
    return Server(cmd, env, cwd, port, grace)


def baseline_server(body: Path, cwd: Path, port: int, workers: int = 1) -> Server:
    """The bare FastAPI app of this module, under the uvicorn options `marquee serve` uses."""
    cmd = [PYTHON, str(Path(__file__)), "baseline", str(body), HOST, str(port), str(workers)]
    return Server(cmd, clean_env("unused"), cwd, port)


def baseline_app():  # type: ignore[no-untyped-def]
    """/search answers the captured body as is: what FastAPI and uvicorn alone cost."""
    from fastapi import FastAPI, Response

    body = Path(os.environ["BENCH_BASELINE_BODY"]).read_bytes()
    app = FastAPI()

    @app.get("/search")
    async def search() -> Response:
        return Response(content=body, media_type="application/json")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    return app


def _serve_baseline(body: str, host: str, port: str, workers: str) -> None:
    import uvicorn

    os.environ["BENCH_BASELINE_BODY"] = body
    uvicorn.run(
        "_harness:baseline_app",
        factory=True,
        app_dir=str(BENCH),
        host=host,
        port=int(port),
        workers=int(workers),
        log_config=None,
        access_log=False,
    )


# --- memory ------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    tree, todo, total = _children(), [pid], 0
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _tree_cpu_seconds(pid: int) -> float:
    tree, todo, ticks = _children(), [pid], 0
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(pid: int, limit: float = 30, busy: float = 0.05) -> bool:
    """Wait until a process tree is idle (under `busy` of one core over half a second): a server
    keeps working on requests whose client has gone, which would otherwise leak into the next
    measurement. False when it was still busy after `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = _tree_cpu_seconds(pid)
        time.sleep(0.5)
        if _tree_cpu_seconds(pid) - before < busy * 0.5:
            return True
    return False


class RssSampler:
    """Polls a process tree's RSS from a thread and keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "RssSampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def raise_fd_limit(wanted: int = 65536) -> None:
    """1,024 connections need more descriptors than the usual soft limit, in wrk and the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- wrk ---------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    requests: int = 0
    non_2xx: int = 0
    socket_errors: int = 0
    note: str = ""
    ok_rps: float = 0.0  # answered with 2xx: a 500 given up after the pool timeout is no answer
    runs: str = "0"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> WrkResult:
    result = WrkResult()
    if found := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result.rps = float(found.group(1))
    if found := re.search(r"(\d+) requests in", output):
        result.requests = int(found.group(1))
    for percent, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        if result.requests and (
            found := re.search(rf"^\s+{percent}(?:\.000)?%\s+(\S+)", output, re.M)
        ):
            setattr(result, attr, _ms(found.group(1)))
    if found := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        result.non_2xx = int(found.group(1))
    if found := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        result.socket_errors = sum(int(n) for n in found.groups())
    if result.requests:
        result.ok_rps = result.rps * (result.requests - result.non_2xx) / result.requests
    result.runs = f"{result.ok_rps:.0f}"
    return result


def wrk(
    port: int,
    path: str,
    connections: int = 64,
    seconds: float = 5,
    script: Path | None = None,
    timeout: str = "5s",
) -> WrkResult:
    """One bounded wrk run against 127.0.0.1:port; a hung or failed run reads as 0 req/s."""
    threads = min(2, connections)
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", f"--timeout={timeout}"]
    cmd += ["--latency", *(["-s", str(script)] if script else []), f"http://{HOST}:{port}{path}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        return WrkResult(note="wrk hung")
    result = parse_wrk(done.stdout)
    if done.returncode != 0:
        result.note = f"wrk exited {done.returncode}: {done.stderr.strip()[:80]}"
    elif not result.requests:
        result.note = "nothing answered during the run"
    return result


def cold_script(path: Path, events: int, count: int = 50) -> Path:
    """A wrk Lua script asking a different ~`count`-event window each request: each thread walks
    the event range by a large prime stride from its own start."""
    path.write_text(
        f"""
local origin, step, span, slots = {ORIGIN_EPOCH}, 600, {(count - 1) * 600 + 3600}, {events - count}
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args) position = (id * 104729) % slots end
function request()
  position = (position + 7919) % slots
  local s = origin + position * step
  return wrk.format("GET", string.format("/search?starts_at=%sZ&ends_at=%sZ",
    os.date("!%Y-%m-%dT%H:%M:%S", s), os.date("!%Y-%m-%dT%H:%M:%S", s + span)))
end
"""
    )
    return path


def _median(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else float("nan")


def median_result(results: list[WrkResult]) -> WrkResult:
    """Per-field medians of repeated runs (latencies of runs that answered nothing left out);
    requests and errors are summed, notes kept."""
    return WrkResult(
        rps=statistics.median(r.rps for r in results),
        ok_rps=statistics.median(r.ok_rps for r in results),
        runs="/".join(r.runs for r in results),
        p50_ms=_median([r.p50_ms for r in results]),
        p99_ms=_median([r.p99_ms for r in results]),
        requests=sum(r.requests for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        note="; ".join(sorted({r.note for r in results if r.note})),
    )


# --- output ------------------------------------------------------------------------------------


def print_load(when: str) -> None:
    """This machine is shared: the load average says how much else ran beside a measurement."""
    one, five, _ = os.getloadavg()
    print(f"load average {when}: {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} cores")


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "n/a"


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:,.1f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


WRK_COLUMNS = ["case", "req/s", "2xx/s", "2xx/s each run", "p50 ms", "p99 ms", "requests"]


def wrk_rows(named: dict[str, WrkResult]) -> None:
    rows = [
        [name, r.rps, r.ok_rps, r.runs, r.p50_ms, r.p99_ms, r.requests, r.non_2xx, r.socket_errors]
        for name, r in named.items()
    ]
    notes = [r.note for r in named.values()]
    print_table(
        [*WRK_COLUMNS, "non-2xx", "sock err", "note"],
        [[*row, note] for row, note in zip(rows, notes, strict=True)],
    )


if __name__ == "__main__" and sys.argv[1:2] == ["baseline"]:
    _serve_baseline(*sys.argv[2:6])
