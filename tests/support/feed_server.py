"""A real HTTP server on 127.0.0.1 that plays a provider: scripted answers per path, in order."""

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FeedServer:
    """Serves `Answer`s queued per path; the last answer of a path repeats once the queue is empty."""

    def __init__(self) -> None:
        self.answers: dict[str, deque[Answer]] = defaultdict(deque)
        self.requests: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = server._next(self.path)
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    headers = {"Content-Type": "application/xml", **answer.headers}
                    headers.setdefault("Content-Length", str(len(answer.body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _next(self, path: str) -> Answer:
        with self._lock:
            self.requests.append((path, time.monotonic()))
            queue = self.answers.get(path)
            if not queue:
                return Answer(b"not found", status=404)
            return queue.popleft() if len(queue) > 1 else queue[0]

    def serve(self, path: str, *answers: Answer | bytes) -> str:
        """Queue answers for `path` (replacing earlier ones); return its URL."""
        with self._lock:
            self.answers[path] = deque(a if isinstance(a, Answer) else Answer(a) for a in answers)
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for requested, _ in self.requests if requested == path)

    def start(self) -> "FeedServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
