"""`marquee retention`: apply the retention policy now (or show what it would do), and restore an
archive file."""

import argparse
from pathlib import Path

from core.cli.common import EXIT_FAILED, complain, load_settings, say

VERBS = {"hidden": "hide", "archived": "archive", "purged": "purge"}


def cmd_retention(args: argparse.Namespace) -> int:
    if args.action == "restore":
        return _restore(args)
    from core.logs import configure_logging
    from core.plugins.registry import load_registry
    from core.scheduling.context import build_context
    from core.scheduling.retention import run_retention
    from core.store.models import Trigger

    settings = load_settings()
    configure_logging(settings)
    json_mode = settings.MARQUEE_LOG_FORMAT == "json"
    context = build_context(settings, registry=load_registry(settings))
    results = run_retention(
        context,
        trigger=Trigger.CLI,
        providers=[args.provider] if args.provider else None,
        dry_run=args.dry_run,
    )
    if not any(result.policy.active for result in results):
        say(
            "retention is off: no MARQUEE_RETENTION_*_AFTER_DAYS (or per-provider override) is set",
            json_mode=json_mode,
        )
    for result in results:
        if not result.policy.active:
            continue
        counts = result.counts.as_dict()
        days = result.policy.days()
        parts = []
        for moved, n in counts.items():
            stage = VERBS[moved]
            if days[stage] is None:
                parts.append(f"{stage} off")
            else:
                parts.append(f"would {stage} {n}" if args.dry_run else f"{n} {moved}")
        moves = ", ".join(parts)
        if result.counts.archive_file:
            moves += f" (archive {result.counts.archive_file})"
        fields = {"provider": result.provider, "dry_run": args.dry_run, **counts}
        if result.failed:
            complain(
                f"retention of {result.provider} failed: {result.error} (so far: {moves})",
                json_mode=json_mode,
                **fields,
            )
        else:
            say(f"{result.provider}: {moves}", json_mode=json_mode, **fields)
    return EXIT_FAILED if any(result.failed for result in results) else 0


def _restore(args: argparse.Namespace) -> int:
    from core.logs import configure_logging
    from core.retention.stages import ArchiveError, restore
    from core.store.db import create_db_engine

    settings = load_settings()
    configure_logging(settings)
    json_mode = settings.MARQUEE_LOG_FORMAT == "json"
    path = Path(args.path)
    engine = create_db_engine(settings)
    try:
        restored, present = restore(engine, path)
    except ArchiveError as exc:
        complain(f"restore failed, nothing restored: {exc}", json_mode=json_mode)
        return EXIT_FAILED
    finally:
        engine.dispose()
    say(
        f"{path}: {restored} events restored, {present} already stored",
        json_mode=json_mode,
        restored=restored,
        already_stored=present,
    )
    return 0


def add_retention_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    retention = commands.add_parser(
        "retention",
        help="hide, archive and purge inactive events now, as MARQUEE_RETENTION_* say",
        description="Apply the retention policy now; `marquee retention restore PATH` puts an "
        "archive file's events back.",
    )
    retention.add_argument("--dry-run", action="store_true", help="count, change nothing")
    retention.add_argument("--provider", help="only this provider")
    retention.set_defaults(handler=cmd_retention, action="apply")
    actions = retention.add_subparsers(dest="action", metavar="ACTION")
    restore = actions.add_parser("restore", help="put an archive file's events back (idempotent)")
    restore.add_argument("path", help="an archive file written by retention (*.jsonl.gz)")
