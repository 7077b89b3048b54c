"""`marquee worker` and `marquee beat`: the Celery side of a fleet."""

import argparse

from core.cli.common import check_startup, load_settings
from core.settings import Settings


def _celery_app(settings: Settings):  # type: ignore[no-untyped-def]
    from core.scheduling.celery_app import app, require_redis

    require_redis(settings)
    check_startup(settings)
    return app


def _quiet(settings: Settings) -> list[str]:
    # Celery's banners are ASCII art for a terminal; a JSON log stream has its own startup lines.
    return ["--quiet"] if settings.MARQUEE_LOG_FORMAT == "json" else []


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    app = _celery_app(settings)
    app.worker_main(
        [*_quiet(settings), "worker", "--queues", settings.MARQUEE_CELERY_QUEUE, *args.celery_args]
    )
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    settings = load_settings()
    app = _celery_app(settings)
    app.start([*_quiet(settings), "beat", *args.celery_args])
    return 0
