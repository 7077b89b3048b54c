"""`marquee migrate`, `serve` and `run`: the schema and the HTTP API, with or without a scheduler."""

import argparse
import contextlib
import logging
import os
import threading

from core.cli.common import check_startup, load_settings, say
from core.settings import Settings


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.logs import configure_logging
    from core.store.migrate import upgrade

    settings = load_settings()
    configure_logging(settings)
    upgrade(settings.DATABASE_URL, args.revision)
    json_mode = settings.MARQUEE_LOG_FORMAT == "json"
    say(f"database migrated to {args.revision}", json_mode=json_mode, revision=args.revision)
    return 0


def _check_before_serving(args: argparse.Namespace) -> Settings:
    """Settings, logging, migrations if asked, providers and schema: all checked before the port
    opens, so a bad configuration never serves."""
    from core.logs import configure_logging
    from core.store.migrate import upgrade

    settings = load_settings()
    configure_logging(settings)
    if args.migrate:
        upgrade(settings.DATABASE_URL)
    check_startup(settings)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    from core.cli import server

    _check_before_serving(args)
    workers = args.workers or server.default_workers()
    sock = server.bind(args.host, args.port)
    server.serve(server.worker_config(args.host, args.port, workers), sock, supervise=False)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """A supervisor: it binds the port, then runs the one scheduler, then serves from worker
    processes, so fetches (CPU-heavy parsing) never share a process, nor its GIL, with requests."""
    from core.cli import server
    from core.scheduling.context import build_context
    from core.scheduling.embedded import EmbeddedScheduler

    settings = _check_before_serving(args)
    workers = args.workers or server.default_workers()
    # First, so that a port already in use stops the command before it fetches or writes anything.
    sock = server.bind(args.host, args.port)
    scheduler = None
    try:
        if settings.REDIS_URL:
            logging.getLogger("marquee.run").info(
                "REDIS_URL is set: Celery beat and workers schedule fetches; this process only serves"
            )
        else:
            scheduler = EmbeddedScheduler(build_context(settings)).start()
            _yield_cpu_to_serving()
    except BaseException:
        sock.close()
        raise
    config = server.worker_config(args.host, args.port, workers)
    server.serve(config, sock, supervise=True, on_stop=scheduler.stop if scheduler else None)
    return 0


# Fetch threads run at this niceness: on a busy machine the CPU goes to requests first.
FETCH_NICENESS = 10


def _yield_cpu_to_serving() -> None:
    """Lower the priority of every thread of this process but the main one: they are the
    scheduler's, and the threads they start inherit it (a Linux thread's niceness is its own)."""
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and thread.native_id is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, thread.native_id, FETCH_NICENESS)


def _workers(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return number


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="API worker processes (default: the number of CPUs)",
    )
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first (one process only; a fleet runs `marquee migrate` once)",
    )
