"""The backend registry: names to lazily built backends; one that does not answer is listed
with why, and never stops the hub."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.unit.backends.fakes import FakeBackend
from toolferry.backends import registry
from toolferry.backends.base import Backend, BackendUnavailable
from toolferry.config import Settings
from toolferry.runtimes.base import Runtime


def answers(settings: Settings, runtimes: Mapping[str, Runtime]) -> Backend:
    return FakeBackend("slurm", cpus=len(runtimes))


def unavailable(settings: Settings, runtimes: Mapping[str, Runtime]) -> Backend:
    raise BackendUnavailable("sinfo is not installed or not on PATH")


def broken(settings: Settings, runtimes: Mapping[str, Runtime]) -> Backend:
    raise KeyError()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_every_backend_has_a_name() -> None:
    assert registry.NAMES == ("local", "slurm", "swarm")


def test_nothing_is_built_when_the_setting_enables_none(settings: Settings) -> None:
    available, why = registry.discover(settings, {}, only=[])
    assert available == []
    assert why == {
        "slurm": "not enabled by the backends setting",
        "swarm": "not enabled by the backends setting",
    }


def test_backends_that_answer_are_used_and_the_others_say_why(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = f"{__name__}:"
    monkeypatch.setitem(registry._REGISTRY, "slurm", here + "answers")
    monkeypatch.setitem(registry._REGISTRY, "swarm", here + "unavailable")
    available, why = registry.discover(settings, {"a": object(), "b": object()})  # type: ignore[dict-item]
    assert [b.name for b in available] == ["slurm"] and available[0].capabilities.total.cpus == 2
    assert why == {"swarm": "sinfo is not installed or not on PATH"}
    monkeypatch.setitem(registry._REGISTRY, "swarm", here + "broken")
    _, why = registry.discover(settings, {}, only=["swarm"])
    assert why == {"slurm": "not enabled by the backends setting", "swarm": "KeyError"}
