"""The beat schedule and the retry policy are pure functions of the settings."""

from typing import Any

import pytest

from core.plugins.contract import Provider
from core.plugins.hookspecs import hookimpl
from core.plugins.registry import load_registry
from core.scheduling.retry import RetryPolicy
from core.scheduling.schedule import TASK_FETCH_PROVIDER, build_beat_schedule
from core.settings import Settings


class ToyProvider(Provider):
    name = "toy"


class ToyPlugin:
    @hookimpl
    def register_providers(self) -> list[Provider]:
        return [ToyProvider()]


def schedule_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    registry = load_registry(Settings(), extra_plugins={"toy": ToyPlugin()})
    return build_beat_schedule(registry.enabled(), queue="fetches")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"fetch-fever": 60}),
        ({"MARQUEE_FEVER_INTERVAL_SECONDS": "600"}, {"fetch-fever": 600}),
        (
            {"MARQUEE_PROVIDERS": "fever,toy", "MARQUEE_TOY_INTERVAL_SECONDS": "30"},
            {"fetch-fever": 60, "fetch-toy": 30},
        ),
        ({"MARQUEE_PROVIDERS": "toy"}, {"fetch-toy": 300}),
        ({"MARQUEE_PROVIDERS": ","}, {}),
        ({"MARQUEE_PROVIDERS": ""}, {"fetch-fever": 60}),  # empty means the default
    ],
)
def test_beat_schedule_has_one_entry_per_enabled_provider_at_its_interval(
    env: dict[str, str], expected: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = schedule_for(env, monkeypatch)

    assert {name: entry["schedule"] for name, entry in schedule.items()} == expected
    for name, entry in schedule.items():
        assert entry["task"] == TASK_FETCH_PROVIDER
        assert entry["args"] == (name.removeprefix("fetch-"),)
        assert entry["options"]["queue"] == "fetches"
        assert 0 < entry["options"]["expires"] < entry["schedule"]


POLICY = RetryPolicy(max_attempts=5, backoff_seconds=2.0, backoff_max_seconds=10.0)


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_retry_delays_grow_exponentially_up_to_the_cap(jitter: float) -> None:
    delays = [
        POLICY.delay(attempt=n, elapsed_seconds=0, span_seconds=1000, rng=lambda: jitter)
        for n in (1, 2, 3, 4)
    ]

    assert all(delay is not None for delay in delays)
    assert delays[0] < delays[1] < delays[2]
    assert 1.5 <= delays[0] <= 2.0
    assert delays[3] <= 10.0


def test_retry_gives_up_after_the_last_attempt() -> None:
    assert POLICY.delay(attempt=5, elapsed_seconds=0, span_seconds=1000) is None


def test_retry_honours_retry_after_when_longer_than_the_backoff() -> None:
    assert POLICY.delay(attempt=1, elapsed_seconds=0, span_seconds=1000, retry_after=42) == 42


def test_retry_gives_up_when_the_next_attempt_would_start_past_the_span() -> None:
    assert POLICY.delay(attempt=1, elapsed_seconds=29, span_seconds=30) is None
    assert POLICY.delay(attempt=1, elapsed_seconds=0, span_seconds=30, retry_after=3600) is None
