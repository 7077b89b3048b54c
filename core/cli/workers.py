"""`marquee worker` and `marquee beat`: the Celery side of a fleet."""

import argparse

from core.cli.common import load_settings
from core.migrate import require_current_schema
from core.settings import Settings


def _celery_app(settings: Settings):  # type: ignore[no-untyped-def]
    from core.celery_app import app, require_redis
    from core.db import create_db_engine
    from core.registry import load_registry

    require_redis(settings)
    load_registry(settings)  # a bad provider configuration stops the process before it starts
    engine = create_db_engine(settings)
    try:
        require_current_schema(engine)
    finally:
        engine.dispose()
    return app


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    app = _celery_app(settings)
    app.worker_main(["worker", "--queues", settings.MARQUEE_CELERY_QUEUE, *args.celery_args])
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    app = _celery_app(load_settings())
    app.start(["beat", *args.celery_args])
    return 0
