"""`marquee new-provider` writes a package whose own tests pass and which Marquee discovers once it
is installed: the author's whole path, through the real command."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.devkit.scaffold import new_provider
from tests.support.example_plugin import EXAMPLE
from tests.support.example_plugin import NAME as EXAMPLE_NAME
from tests.support.feed_server import FeedServer

BIN = Path(sys.executable).parent
NAME = "acme_tickets"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Plugin Author",
    "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Plugin Author",
    "GIT_COMMITTER_EMAIL": "author@example.org",
}


def run(
    *command: str | Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def package(tmp_path: Path) -> Path:
    target = tmp_path / "plugins" / "acme"
    result = run(BIN / "marquee", "new-provider", NAME, "--directory", target)
    assert result.returncode == 0, result.stderr
    return target


def test_new_provider_writes_a_package_declaring_the_marquee_entry_point(package: Path) -> None:
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["name"] == "marquee-acme-tickets"
    assert project["entry-points"]["marquee"] == {NAME: "marquee_acme_tickets.plugin"}
    assert (package / "marquee_acme_tickets" / "plugin.py").is_file()
    assert (package / "tests" / "fixtures" / "feed.json").is_file()
    assert "ProviderContract" in (package / "tests" / f"test_{NAME}_contract.py").read_text()


def test_generated_package_passes_its_own_contract_tests_and_lint(package: Path) -> None:
    result = run(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        cwd=package,
        PYTHONPATH=str(package),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert "skipped" not in result.stdout, "every contract check applies to the generated provider"
    for check in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        linted = run(BIN / "ruff", *check, ".", cwd=package)
        assert linted.returncode == 0, linted.stdout


def test_installed_generated_package_is_discovered_enabled_and_fetched(
    package: Path, tmp_path: Path, feed_server: FeedServer
) -> None:
    # A real build and install (the package's own pyproject and build backend), into a directory
    # rather than the shared virtualenv, so nothing leaks into other tests.
    site = tmp_path / "site"
    installed = run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        site,
        package,
    )
    assert installed.returncode == 0, installed.stderr
    url = feed_server.serve(
        "/acme.json", (package / "tests" / "fixtures" / "feed.json").read_bytes()
    )
    env = {
        "PYTHONPATH": str(site),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'marquee.db'}",
        "MARQUEE_PROVIDERS": f"fever,{NAME}",
        "MARQUEE_ACME_TICKETS_URL": url,
    }

    listing = run(BIN / "marquee", "providers", "--json", **env)
    assert listing.returncode == 0, listing.stderr
    entry = {item["name"]: item for item in json.loads(listing.stdout)["providers"]}[NAME]
    assert (entry["enabled"], entry["distribution"], entry["version"]) == (
        True,
        "marquee-acme-tickets",
        "0.1.0",
    )

    assert run(BIN / "marquee", "migrate", **env).returncode == 0
    fetched = run(BIN / "marquee", "fetch", NAME, "--json", **env)
    assert fetched.returncode == 0, fetched.stderr
    report = json.loads(fetched.stdout)
    # Every item of the generated fixture is stored, the sold-out one included; none is skipped.
    assert (report["inserted"], report["skipped"]) == (4, 0)


def test_new_provider_refuses_a_bad_name_or_a_used_directory(tmp_path: Path) -> None:
    bad = run(BIN / "marquee", "new-provider", "Acme-Tickets", cwd=tmp_path)
    assert bad.returncode == 2
    assert "provider name 'Acme-Tickets' must be lower-case" in bad.stderr
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    refused = run(BIN / "marquee", "new-provider", NAME, "--directory", used)
    assert refused.returncode == 2
    assert "already exists and is not empty" in refused.stderr
    assert sorted(p.name for p in used.iterdir()) == ["keep.txt"]
    assert "Traceback" not in bad.stderr + refused.stderr


def test_new_provider_writes_into_marquee_name_by_default(tmp_path: Path) -> None:
    result = run(BIN / "marquee", "new-provider", NAME, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "marquee-acme-tickets" / "pyproject.toml").is_file()


def test_example_plugin_is_exactly_what_the_scaffold_writes_for_its_name(tmp_path: Path) -> None:
    written = new_provider(EXAMPLE_NAME, tmp_path / "example")
    expected = {path.relative_to(tmp_path / "example"): path.read_text() for path in written}
    shipped = {
        path.relative_to(EXAMPLE): path.read_text()
        for path in EXAMPLE.rglob("*")
        if path.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__"
            for part in path.relative_to(EXAMPLE).parts
        )
    }
    assert shipped == expected


@pytest.mark.parametrize("source", ["path", "git"])
def test_generated_package_resolves_against_marquees_own_environment(
    package: Path, tmp_path: Path, source: str
) -> None:
    # pip resolves the declared `marquee-events` range against what is installed here, with no
    # index: the guide's install lines need nothing more than Marquee's environment.
    if source == "git":
        repository = tmp_path / "repo"
        shutil.copytree(package, repository)
        for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "plugin"]):
            git = run("git", *command, cwd=repository, **GIT_IDENTITY)
            assert git.returncode == 0, git.stderr
        target = f"marquee-acme-tickets @ git+file://{repository}"
    else:
        target = str(package)
    report = tmp_path / "report.json"
    resolved = run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--no-build-isolation",
        "--no-index",
        "--report",
        report,
        target,
    )
    assert resolved.returncode == 0, resolved.stderr
    names = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert names == ["marquee-acme-tickets"], "the marquee-events dependency is already met"
    requires = tomllib.loads((package / "pyproject.toml").read_text())["project"]["dependencies"]
    assert requires == ["marquee-events>=0.1,<1"]
