"""The `marquee` command: its parser and entry point; each group of subcommands has its module."""

import argparse
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import OperationalError, ProgrammingError

from core.cli.common import EXIT_CONFIG, EXIT_FAILED, complain, log_format, schema_problem
from core.cli.providers import cmd_fetch, cmd_new_provider, cmd_providers
from core.cli.retention import add_retention_parser
from core.cli.serving import add_server_options, cmd_migrate, cmd_run, cmd_serve
from core.cli.workers import cmd_beat, cmd_worker
from core.errors import ConfigError
from core.logs import redact

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "build_parser", "main"]


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
    add_server_options(serve)
    serve.set_defaults(handler=cmd_serve)

    run = commands.add_parser(
        "run", help="serve the HTTP API and fetch every provider on schedule, in one process"
    )
    add_server_options(run)
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

    add_retention_parser(commands)

    new = commands.add_parser(
        "new-provider", help="write a new provider plugin package, with contract tests"
    )
    new.add_argument("name", help="provider name: lower-case letters, digits, underscores")
    new.add_argument("--directory", help="where to write it (default ./marquee-<name>)")
    new.set_defaults(handler=cmd_new_provider)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    json_mode = log_format() == "json"
    if json_mode:
        # Before parsing: even a usage error reaches a log shipper as JSON.
        from core.logs.capture import enable_json_output

        enable_json_output()
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        complain(f"configuration error: {exc}", json_mode=json_mode)
        return EXIT_CONFIG
    except (OperationalError, ProgrammingError) as exc:
        # A database without Marquee's tables fails a command with "no such table": say the fix.
        problem = schema_problem()
        if problem:
            complain(f"configuration error: {problem}", json_mode=json_mode)
            return EXIT_CONFIG
        reason = redact(str(exc.orig or exc).strip().splitlines()[0])
        kind = "unreachable" if isinstance(exc, OperationalError) else "error"
        complain(f"database {kind}: {reason}", json_mode=json_mode)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`marquee providers | head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
