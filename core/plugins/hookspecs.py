"""Marquee's plugin hooks. A plugin is a module or object, named in the `marquee` entry-point group,
that implements some of these with `@hookimpl`."""

from collections.abc import Iterable

import pluggy

from core.plugins.contract import Provider

PROJECT_NAME = "marquee"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_providers() -> Iterable[Provider]:
    """Return the providers this plugin contributes, each with a unique name."""


@hookspec
def setup_hint() -> str | None:
    """One line on how this plugin's providers come to be: shown by `marquee providers`, and when
    `MARQUEE_PROVIDERS` names the plugin rather than one of its providers."""
