"""Fixtures for CLI tests: commands that talk to a real served hub (fake runtime)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from toolferry.cli.client import TesClient
from toolferry.cli.session import CliDeps, Session
from toolferry.config import Settings
from toolferry.hub import Hub


@pytest.fixture
def deps(served: tuple[Hub, str]) -> CliDeps:
    """Commands talk to the served hub as its local operator (user "local")."""

    @contextmanager
    def connect(_: Settings) -> Iterator[Session]:
        with TesClient(served[1], None) as client:
            yield Session(client=client, url=served[1], embedded=False)

    return CliDeps(connect=connect)
