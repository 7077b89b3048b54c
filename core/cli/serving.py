"""`marquee migrate`, `serve` and `run`: the schema and the HTTP API, with or without a scheduler."""

import argparse
import logging

from core.cli.common import check_startup, load_settings, say
from core.settings import Settings

# uvicorn imports the app itself, from this name: the command never imports the HTTP layer.
APP_FACTORY = "api.app:create_app"


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


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    _check_before_serving(args)
    _serve(args)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from core.scheduling.context import build_context
    from core.scheduling.embedded import EmbeddedScheduler

    settings = _check_before_serving(args)
    scheduler = None
    if settings.REDIS_URL:
        logging.getLogger("marquee.run").info(
            "REDIS_URL is set: Celery beat and workers schedule fetches; this process only serves"
        )
    else:
        scheduler = EmbeddedScheduler(build_context(settings)).start()
    try:
        _serve(args)
    finally:
        if scheduler is not None:
            scheduler.stop()
    return 0


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first (one process only; a fleet runs `marquee migrate` once)",
    )
