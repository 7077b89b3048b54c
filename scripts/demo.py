"""`make demo`: Marquee against a local stand-in for the Fever feed, offline, in under a minute.

The stand-in serves the three sample responses (tests/fixtures/fever/response_1.xml, _2, _3) in
turn, one per request, then keeps answering the last; `marquee run` fetches it every 10 seconds
into a scratch SQLite file, so the worked example (291, 322 and 1591 with their latest values,
never 444) is searchable within half a minute. Ctrl-C stops both and deletes the scratch file.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
RESPONSES = [ROOT / "tests" / "fixtures" / "fever" / f"response_{n}.xml" for n in (1, 2, 3)]
FEED_PATH = "/api/events"
INTERVAL_SECONDS = 10  # the shortest interval a provider accepts
# The demo's configuration is its own: nothing from the shell or a `.env` may change it.
OWN_VARIABLES = ("MARQUEE_", "DATABASE_", "REDIS_URL")


class StandInFeed(ThreadingHTTPServer):
    """Answers GET FEED_PATH with each sample response in turn, then the last one forever."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.served = 0
        self.lock = threading.Lock()

    def next_body(self) -> tuple[str, bytes]:
        with self.lock:
            path = RESPONSES[min(self.served, len(RESPONSES) - 1)]
            self.served += 1
        return path.name, path.read_bytes()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{FEED_PATH}"


class _Handler(BaseHTTPRequestHandler):
    server: StandInFeed

    def do_GET(self) -> None:
        if self.path.split("?")[0] != FEED_PATH:
            self.send_error(404)
            return
        name, body = self.server.next_body()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"demo: the stand-in feed answered {name}", file=sys.stderr, flush=True)

    def log_message(self, *args: object) -> None:
        pass


def demo_environment(scratch: Path, feed_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(OWN_VARIABLES)}
    env.update(
        DATABASE_URL=f"sqlite:///{scratch / 'demo.db'}",
        MARQUEE_PROVIDERS="fever",
        MARQUEE_FEVER_URL=feed_url,
        MARQUEE_FEVER_INTERVAL_SECONDS=str(INTERVAL_SECONDS),
    )
    return env


def banner(host: str, port: int, feed_url: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    return f"""
Marquee demo: a stand-in for the Fever feed at {feed_url} answers the three sample
responses in turn, one per fetch (every {INTERVAL_SECONDS} s), then keeps answering the last.
Within half a minute the search shows Pantomima Full (322), Camela en concierto (291) and
Los Morancos (1591) with the values of the last response; Tributo a Juanito Valderrama (444),
never on sale online, never appears. Try:

    curl '{base}/search?starts_at=2021-01-01T00:00:00Z&ends_at=2021-12-31T23:59:59Z'
    curl '{base}/search.ics?starts_at=2021-01-01T00:00:00Z'
    curl '{base}/providers'
    open {base}/docs

Ctrl-C stops the demo.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    marquee = str(Path(sys.executable).parent / "marquee")
    feed = StandInFeed()
    threading.Thread(target=feed.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="marquee-demo-") as directory:
            scratch = Path(directory)
            env = demo_environment(scratch, feed.url)
            subprocess.run(
                [marquee, "migrate"], env=env, cwd=scratch, check=True, stdout=subprocess.DEVNULL
            )
            print(banner(args.host, args.port, feed.url), flush=True)
            server = subprocess.Popen(
                [marquee, "run", "--host", args.host, "--port", str(args.port)],
                env=env,
                cwd=scratch,
            )

            def stop(_signal: int, _frame: FrameType | None) -> None:
                # Ctrl-C in a terminal reaches the server too; SIGTERM is graceful either way.
                if server.poll() is None:
                    server.terminate()

            signal.signal(signal.SIGINT, stop)
            signal.signal(signal.SIGTERM, stop)
            code = server.wait()
            return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
    finally:
        feed.shutdown()
        feed.server_close()


if __name__ == "__main__":
    sys.exit(main())
