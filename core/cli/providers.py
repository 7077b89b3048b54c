"""`marquee fetch`, `providers` and `new-provider`: what the providers are and what they hold."""

import argparse
import json
import signal
import sys

from core.cli.common import EXIT_CONFIG, EXIT_FAILED, load_settings

# Exit codes of a fetch cut short by a signal, as a shell reports one: 128 + the signal number.
EXIT_SIGNAL = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}


def _interrupt(signum: int, _frame: object) -> None:
    from core.scheduling.lease import Interrupted

    # Once is enough: closing the run's record must not be cut short by a second Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def cmd_fetch(args: argparse.Namespace) -> int:
    from core.logs import configure_logging, json_line
    from core.plugins.registry import load_registry
    from core.scheduling.context import build_context
    from core.scheduling.job import run_fetch
    from core.scheduling.lease import Interrupted
    from core.store.models import Outcome, Trigger

    settings = load_settings()
    configure_logging(settings)
    json_mode = settings.MARQUEE_LOG_FORMAT == "json"
    registry = load_registry(settings)
    entry = registry.configured(args.provider)
    # The same job the scheduler runs, so this run is locked and recorded too; no retries here.
    context = build_context(settings, registry=registry)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run_fetch(context, entry.name, trigger=Trigger.CLI, retry=False)
    except Interrupted as exc:
        print(
            f"fetch of {entry.name} interrupted by {exc.signal_name}: "
            "the run it started is recorded as failed (interrupted); stored events are unchanged",
            file=sys.stderr,
        )
        return EXIT_SIGNAL[exc.signal_name]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report = result.report
    if report is None:
        verb = "skipped" if result.outcome == Outcome.SKIPPED else "failed"
        line = f"fetch of {entry.name} {verb}: {result.error}"
        print(json_line("ERROR", "marquee", line) if json_mode else line, file=sys.stderr)
        return EXIT_FAILED
    if args.json or json_mode:
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


def cmd_providers(args: argparse.Namespace) -> int:
    from core.plugins.registry import load_registry

    settings = load_settings()
    registry = load_registry(settings)
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
    plugins = [
        {
            "name": name,
            "distribution": status.info.distribution,
            "version": status.info.version,
            "providers": list(status.providers),
            "hint": status.hint,
            "description": status.describe(),
        }
        for name, status in registry.plugins.items()
    ]
    if args.json or settings.MARQUEE_LOG_FORMAT == "json":
        # One line per document in JSON log mode, so a log shipper can read it too.
        indent = None if settings.MARQUEE_LOG_FORMAT == "json" else 2
        print(json.dumps({"providers": listing, "plugins": plugins}, indent=indent, default=str))
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
    print("plugins:")
    for plugin in plugins:
        origin = (
            f" ({plugin['distribution']} {plugin['version']})" if plugin["distribution"] else ""
        )
        print(f"    {plugin['name']}{origin}: {plugin['description']}")
    return 0


def cmd_new_provider(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.devkit.scaffold import ScaffoldError, new_provider

    try:
        written = new_provider(args.name, Path(args.directory) if args.directory else None)
    except ScaffoldError as exc:
        print(f"marquee: new-provider: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    root = written[0].parent
    print(f"wrote plugin package {root}/ ({len(written)} files); next:")
    print(f"    pip install -e {root} && (cd {root} && pytest)")
    return 0
