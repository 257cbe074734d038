"""Fixtures shared by unit tests: a real hub in this process, on a fake runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.unit.fakes import FakeRuntime
from toolferry.config import Settings
from toolferry.hub import Hub, serve_embedded


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Hub, str]]:
    """An embedded hub on ``tmp_path`` with the fake runtime, and its URL."""
    settings = Settings(data_dir=tmp_path, capacity_cpus=2)
    with serve_embedded(settings, runtimes={"fake": FakeRuntime()}) as pair:
        yield pair


@pytest.fixture
def hub(served: tuple[Hub, str]) -> Hub:
    return served[0]


@pytest.fixture
def client(served: tuple[Hub, str]) -> Iterator[httpx.Client]:
    """A plain HTTP client of ``served`` (no auth: the hub has no tokens)."""
    with httpx.Client(base_url=served[1]) as c:
        yield c
