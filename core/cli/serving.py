"""`marquee migrate`, `serve` and `run`: the schema and the HTTP API, with or without a scheduler."""

import argparse
import logging
from typing import Any

from core.cli.common import load_settings
from core.migrate import require_current_schema
from core.settings import Settings


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.migrate import upgrade

    upgrade(load_settings().DATABASE_URL, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def _serving_app(args: argparse.Namespace) -> tuple[Settings, Any]:
    """Settings, logging, migrations if asked, and an app whose providers and schema are checked
    before the port opens."""
    from api.app import create_app
    from core.logs import configure_logging
    from core.migrate import upgrade

    settings = load_settings()
    configure_logging(settings)
    if args.migrate:
        upgrade(settings.DATABASE_URL)
    app = create_app(settings)
    require_current_schema(app.state.engine)
    return settings, app


def _serve(app: Any, args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


def cmd_serve(args: argparse.Namespace) -> int:
    _, app = _serving_app(args)
    _serve(app, args)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from core.embedded import EmbeddedScheduler
    from core.jobs import build_context

    settings, app = _serving_app(args)
    scheduler = None
    if settings.REDIS_URL:
        logging.getLogger("marquee.run").info(
            "REDIS_URL is set: Celery beat and workers schedule fetches; this process only serves"
        )
    else:
        context = build_context(settings, registry=app.state.registry, engine=app.state.engine)
        scheduler = EmbeddedScheduler(context).start()
    try:
        _serve(app, args)
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
