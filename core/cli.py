"""The `marquee` command."""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from core.errors import ConfigError
from core.logs import redact
from core.migrate import require_current_schema
from core.settings import Settings

EXIT_CONFIG = 2
EXIT_FETCH_FAILED = 1
EXIT_FAILED = 1


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        from core.registry import format_validation_error

        raise ConfigError(f"invalid setting {format_validation_error('', exc)}") from exc


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.migrate import upgrade

    upgrade(_settings().DATABASE_URL, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from core.jobs import build_context, run_fetch
    from core.logs import configure_logging
    from core.registry import load_registry

    settings = _settings()
    configure_logging(settings)
    registry = load_registry(settings)
    entry = registry.get(args.provider)
    if entry.settings is None:
        raise ConfigError(f"provider {entry.name!r} has invalid settings: {entry.settings_error}")
    # The same job the scheduler runs, so this run is locked and recorded too; no retries here.
    context = build_context(settings, registry=registry)
    result = run_fetch(context, entry.name, trigger="cli", retry=False)
    report = result.report
    if report is None:
        verb = "skipped" if result.outcome == "skipped" else "failed"
        print(f"fetch of {entry.name} {verb}: {result.error}", file=sys.stderr)
        return EXIT_FETCH_FAILED
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(
            f"{entry.name}: {report.inserted} inserted, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.skipped} skipped "
            f"({report.bytes} bytes in {report.seconds:.2f}s)"
        )
        for reason in report.skip_reasons:
            print(f"  skipped {reason}")
    return 0


def _serving_app(args: argparse.Namespace) -> tuple[Settings, Any]:
    """Settings, logging, migrations if asked, and an app whose providers and schema are checked
    before the port opens."""
    from api.app import create_app
    from core.logs import configure_logging
    from core.migrate import upgrade

    settings = _settings()
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


def _celery_app(settings: Settings):  # type: ignore[no-untyped-def]
    from core.db import create_db_engine
    from core.registry import load_registry

    if not settings.REDIS_URL:
        raise ConfigError(
            "REDIS_URL is not set: workers and beat need Redis (`marquee run` needs none)"
        )
    load_registry(settings)  # a bad provider configuration stops the process before it starts
    engine = create_db_engine(settings)
    try:
        require_current_schema(engine)
    finally:
        engine.dispose()
    from core.celery_app import app

    return app


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    app = _celery_app(settings)
    app.worker_main(["worker", "--queues", settings.MARQUEE_CELERY_QUEUE, *args.celery_args])
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    app = _celery_app(_settings())
    app.start(["beat", *args.celery_args])
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import logging

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


def cmd_providers(args: argparse.Namespace) -> int:
    from core.registry import load_registry

    registry = load_registry(_settings())
    listing = [
        {
            "name": entry.name,
            "enabled": entry.enabled,
            "plugin": entry.plugin.name,
            "distribution": entry.plugin.distribution,
            "version": entry.plugin.version,
            "settings": entry.masked_settings(),
            "settings_error": entry.settings_error,
        }
        for entry in registry.entries.values()
    ]
    if args.json:
        print(json.dumps(listing, indent=2, default=str))
        return 0
    for item in listing:
        state = "enabled" if item["enabled"] else "disabled"
        origin = (
            f"{item['distribution']} {item['version']}" if item["distribution"] else item["plugin"]
        )
        print(f"{item['name']} ({state}; plugin {item['plugin']} from {origin})")
        for key, value in item["settings"].items():
            print(f"    {key} = {value}")
        if item["settings_error"]:
            print(f"    invalid settings: {item['settings_error']}")
    return 0


def cmd_new_provider(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.scaffold import ScaffoldError, new_provider

    try:
        written = new_provider(args.name, Path(args.directory) if args.directory else None)
    except ScaffoldError as exc:
        print(f"marquee: new-provider: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    root = written[0].parent
    print(f"wrote plugin package {root}/ ({len(written)} files); next:")
    print(f"    pip install -e {root} && (cd {root} && pytest)")
    return 0


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first (one process only; a fleet runs `marquee migrate` once)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marquee", description="Marquee: one search API over many event providers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    fetch = commands.add_parser("fetch", help="fetch one provider now and store its events")
    fetch.add_argument("provider")
    fetch.add_argument("--json", action="store_true", help="print the counts as JSON")
    fetch.set_defaults(handler=cmd_fetch)

    serve = commands.add_parser("serve", help="serve the HTTP API (no scheduler)")
    _add_server_options(serve)
    serve.set_defaults(handler=cmd_serve)

    run = commands.add_parser(
        "run", help="serve the HTTP API and fetch every provider on schedule, in one process"
    )
    _add_server_options(run)
    run.set_defaults(handler=cmd_run)

    celery_args = "extra Celery options after `--`, e.g. `-- --concurrency 4`"
    worker = commands.add_parser("worker", help="run a Celery worker that fetches providers")
    worker.add_argument("celery_args", nargs="*", help=celery_args)
    worker.set_defaults(handler=cmd_worker)
    beat = commands.add_parser("beat", help="run Celery beat, the one scheduler of a fleet")
    beat.add_argument("celery_args", nargs="*", help=celery_args)
    beat.set_defaults(handler=cmd_beat)

    providers = commands.add_parser(
        "providers", help="list registered providers and their settings"
    )
    providers.add_argument("--json", action="store_true")
    providers.set_defaults(handler=cmd_providers)

    new = commands.add_parser(
        "new-provider", help="write a new provider plugin package, with contract tests"
    )
    new.add_argument("name", help="provider name: lower-case letters, digits, underscores")
    new.add_argument("--directory", help="where to write it (default ./marquee-<name>)")
    new.set_defaults(handler=cmd_new_provider)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"marquee: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(f"marquee: database unreachable: {redact(reason)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`marquee providers | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
