"""The container files, checked without a Docker engine: every compose command is a real `marquee`
command, and ports, variables, dependencies and the Dockerfile's stages agree with each other."""

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from core.cli import build_parser
from core.cli.serving import cmd_migrate, cmd_serve
from core.cli.workers import cmd_beat, cmd_worker
from core.plugins.contract import ProviderSettings
from core.settings import Settings
from providers.fever.plugin import FeverProvider

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
MARQUEE_SERVICES = ("migrate", "api", "worker", "beat")
# `${NAME}`, `${NAME:-default}`, `$NAME`, but not `$$NAME`, which compose leaves to the container.
VARIABLE = re.compile(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def command_of(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def parse_marquee(argv: list[str]):  # type: ignore[no-untyped-def]
    assert argv[0] == "marquee", f"{argv} does not run the marquee command"
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(argv)}` is not a valid marquee command")


@pytest.mark.parametrize(
    ("service", "subcommand", "handler"),
    [
        ("migrate", "migrate", cmd_migrate),
        ("api", "serve", cmd_serve),
        ("worker", "worker", cmd_worker),
        ("beat", "beat", cmd_beat),
    ],
)
def test_compose_runs_each_role_with_a_real_cli_command(
    service: str, subcommand: str, handler: object
) -> None:
    args = parse_marquee(command_of(service))
    assert args.command == subcommand
    assert args.handler is handler


def test_compose_defines_the_services_of_a_deployment() -> None:
    core = {name for name, service in SERVICES.items() if not service.get("profiles")}
    assert core == {"postgres", "redis", "migrate", "api", "worker", "beat"}
    assert SERVICES["postgres"]["image"].startswith("postgres:15")
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]
    assert "ping" in SERVICES["redis"]["healthcheck"]["test"]
    for name in ("postgres", "redis"):
        volume = SERVICES[name]["volumes"][0].split(":")[0]
        assert volume in COMPOSE["volumes"], f"{name} keeps its data in an undeclared volume"
    for name in ("api", "worker"):
        assert "test" in SERVICES[name]["healthcheck"], f"{name} has no health check"


def test_compose_runs_exactly_one_beat() -> None:
    beats = [
        name for name in SERVICES if name in MARQUEE_SERVICES and command_of(name)[1] == "beat"
    ]
    assert beats == ["beat"]
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_compose_migrates_once_before_anything_uses_the_database() -> None:
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("api", "worker", "beat"):
        condition = SERVICES[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_compose_depends_only_on_services_it_defines() -> None:
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
            assert dependency != name


def test_compose_publishes_the_port_the_api_listens_on() -> None:
    port = parse_marquee(command_of("api")).port
    published = [str(mapping).rsplit(":", 1)[1] for mapping in SERVICES["api"]["ports"]]
    assert published == [str(port)]
    assert f":{port}/" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert dict(dockerfile_stages()[-1])["EXPOSE"] == str(port)


def test_compose_points_marquee_at_the_compose_postgres_and_redis() -> None:
    for name in MARQUEE_SERVICES:
        environment = SERVICES[name]["environment"]
        assert "@postgres:5432/" in environment["DATABASE_URL"], name
        assert environment["REDIS_URL"].startswith("redis://redis:6379/"), name
        # The URL must be one Marquee accepts once compose has filled in the variables.
        database_url = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", environment["DATABASE_URL"])
        settings = Settings(DATABASE_URL=database_url, REDIS_URL=environment["REDIS_URL"])
        assert settings.DATABASE_URL.startswith("postgresql+psycopg://")


def test_compose_uses_only_variables_documented_in_env_example() -> None:
    used = set(VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    assert used, "the compose file reads no variables: the pattern is broken"
    assert used <= set(env_example()), f"undocumented: {sorted(used - set(env_example()))}"


def test_env_example_lists_every_setting_with_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = env_example()
    for name, field in Settings.model_fields.items():
        assert name in example, f"{name} is missing from .env.example"
        if field.default not in (None, "") and not isinstance(field.default, list):
            assert example[name] == str(field.default), name
    fever = FeverProvider()
    for name, field in fever.settings_class.model_fields.items():
        unset = field.default is None  # an empty value: the default
        expected = "" if unset else str(field.default)
        assert example[f"{fever.env_prefix}{name.upper()}"] == expected, name
    assert set(ProviderSettings.model_fields) <= set(fever.settings_class.model_fields)
    # Copied to `.env` as it is, the example is a valid configuration, and it is the default one.
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    monkeypatch.chdir(tmp_path)
    assert Settings() == Settings(_env_file=None)  # type: ignore[call-arg]
    assert fever.load_settings() == fever.settings_class(_env_file=None)  # type: ignore[call-arg]


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per stage; continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_dockerfile_builds_in_stages_and_runs_as_non_root() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the image is not multi-stage"
    assert all(stage[0][1].split()[0] == "python:3.12-slim" for stage in stages)
    final = stages[-1]
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the final stage runs as root"
    build_name = stages[0][0][1].split()[-1]
    copies = [arguments for instruction, arguments in final if instruction == "COPY"]
    assert any(f"--from={build_name} /opt/venv" in copy for copy in copies)
    runs = " ".join(arguments for instruction, arguments in final if instruction == "RUN")
    assert "poetry" not in runs, "the final stage installs build tools"


def test_dockerfile_checks_health_and_runs_migrated_by_default() -> None:
    final = dict(dockerfile_stages()[-1])
    assert "/health" in final["HEALTHCHECK"]
    default = parse_marquee(json.loads(final["CMD"]))
    assert (default.command, default.host, default.port) == ("run", "0.0.0.0", 8000)
    assert default.migrate, "a lone container has nobody else to migrate its database"
    assert final["EXPOSE"] == str(default.port)


def test_dockerfile_copies_every_package_the_distribution_ships() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {entry["include"] for entry in project["tool"]["poetry"]["packages"]}
    copied = {
        arguments.split()[0]
        for instruction, arguments in dockerfile_stages()[0]
        if instruction == "COPY"
    }
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"


# ---- secrets ----------------------------------------------------------------------------------

SECRET = "/run/secrets/postgres_password"


def test_compose_gives_the_database_password_as_a_docker_secret_never_in_a_url() -> None:
    assert "POSTGRES_PASSWORD" not in SERVICES["postgres"]["environment"]
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == SECRET
    assert COMPOSE["secrets"]["postgres_password"]["file"] == "./secrets/postgres_password"
    for name in ("postgres", *MARQUEE_SERVICES):
        assert "postgres_password" in SERVICES[name]["secrets"], name
    for name in MARQUEE_SERVICES:
        environment = SERVICES[name]["environment"]
        assert environment["DATABASE_PASSWORD_FILE"] == SECRET, name
        database_url = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", environment["DATABASE_URL"])
        assert sa.make_url(database_url).password is None, name
    # What the secret holds reaches the driver intact, whatever it contains.
    settings = Settings(DATABASE_URL=database_url, DATABASE_PASSWORD="a@b/c:d%e")
    assert sa.make_url(settings.DATABASE_URL).password == "a@b/c:d%e"


def test_the_secret_stays_out_of_git_and_out_of_the_image() -> None:
    assert "secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()


# ---- the monitoring profile -------------------------------------------------------------------


def test_monitoring_profile_runs_prometheus_and_grafana_only_when_asked() -> None:
    monitoring = {name for name, s in SERVICES.items() if "monitoring" in s.get("profiles", [])}
    assert monitoring == {"prometheus", "grafana"}


def test_prometheus_scrapes_the_api_service_and_loads_the_alert_rules() -> None:
    prometheus = SERVICES["prometheus"]
    assert "./ops/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    port = parse_marquee(command_of("api")).port
    assert job["static_configs"][0]["targets"] == [f"api:{port}"]
    assert job["metrics_path"] == "/metrics"
    assert config["rule_files"] == ["alerts.yml"]
    assert (ROOT / "ops" / "prometheus" / "alerts.yml").is_file()


def test_grafana_is_provisioned_with_the_data_source_and_the_dashboard() -> None:
    volumes = SERVICES["grafana"]["volumes"]
    assert "./ops/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./ops/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    source = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    assert (ROOT / "ops/grafana/dashboards/marquee.json").is_file()


def test_monitoring_ports_are_published_on_loopback_only() -> None:
    for name in ("prometheus", "grafana"):
        assert all(str(port).startswith("127.0.0.1:") for port in SERVICES[name]["ports"]), name


# ---- the image --------------------------------------------------------------------------------


def test_dockerfile_declares_no_volume() -> None:
    instructions = [instruction for stage in dockerfile_stages() for instruction, _ in stage]
    assert "VOLUME" not in instructions, "every role would get an anonymous volume"


def test_dependency_layer_is_built_from_the_lock_alone() -> None:
    build = dockerfile_stages()[0]
    first_install = next(
        index for index, (instruction, arguments) in enumerate(build) if "--no-root" in arguments
    )
    copied = [
        arguments for instruction, arguments in build[:first_install] if instruction == "COPY"
    ]
    assert copied == ["pyproject.toml poetry.lock ./"], "a docs edit would reinstall everything"


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_readme_builds_the_image_before_running_it() -> None:
    text = (ROOT / "README.md").read_text()
    assert "docker build -t marquee ." in text
    assert text.index("docker build -t marquee .") < text.index("docker run")
    assert "-v marquee-data:/data" in text


def test_deploying_section_walks_through_a_compose_deployment() -> None:
    deploying = readme_section("Deploying")
    for step in (
        "2.24",
        "secrets/postgres_password",
        "cp .env.example .env",
        "docker compose up -d --build",
        "--scale worker=",
        "--profile monitoring",
        "docker compose run --rm migrate",
        "/ready",
    ):
        assert step in deploying, step
