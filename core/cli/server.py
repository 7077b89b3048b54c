"""Serving the API with uvicorn: the port bound first, then one process or a supervisor of worker
processes, each of which logs as Marquee does.

uvicorn imports the app itself, from its import string: the command never imports the HTTP layer.
"""

import logging
import os
import socket
from collections.abc import Callable

import uvicorn
from uvicorn.supervisors import Multiprocess

from core.errors import ConfigError

APP_FACTORY = "api.app:create_app"
BACKLOG = 2048

log = logging.getLogger("marquee.serve")


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class WorkerConfig(uvicorn.Config):
    """uvicorn's configuration, which also sets up Marquee's logging in every process it is used
    in: a worker is a fresh (spawned) interpreter, with no handler of its own."""

    def configure_logging(self) -> None:
        from core.cli.common import load_settings
        from core.logs import configure_logging

        super().configure_logging()
        configure_logging(load_settings())


def worker_config(host: str, port: int, workers: int) -> WorkerConfig:
    return WorkerConfig(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        backlog=BACKLOG,
        # A worker must answer the supervisor's ping in this time, or it is replaced: 5 s (the
        # default) kills workers still importing on a busy machine, over and over.
        timeout_worker_healthcheck=30,
        log_config=None,
        access_log=False,
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a ConfigError naming the address: nothing else has started yet."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening at once: a client that connects while the workers start waits, not refused.
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    config: WorkerConfig,
    sock: socket.socket,
    *,
    supervise: bool,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve on `sock` until SIGINT/SIGTERM: in this process, or (`supervise`, or more than one
    worker) from worker processes this one restarts if they die; then call `on_stop`."""
    host, port = sock.getsockname()[:2]
    try:
        if supervise or config.workers > 1:
            log.info("serving on http://%s:%s with %d worker processes", host, port, config.workers)
            Multiprocess(config, sockets=[sock]).run()
        else:
            log.info("serving on http://%s:%s", host, port)
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        try:
            if on_stop is not None:
                on_stop()
        finally:
            sock.close()
