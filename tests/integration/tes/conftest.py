"""Fixtures of the TES tests: real hubs (``serve_embedded``) with a spec-checking client each.

A hub is torn down only after every task it still runs has been canceled and has ended, so no
container, sandbox or worker thread outlives its test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.tes.tessupport import HubFactory, RunningHub, running_hub

from toolferry.config import Settings


@pytest.fixture
def start_hub(tmp_path: Path) -> Iterator[HubFactory]:
    """``start_hub(**settings)``: a hub on its own data dir (``runtime`` defaults to docker,
    which then needs the test image)."""
    with contextlib.ExitStack() as stack:
        count = 0

        def start(**fields: Any) -> RunningHub:
            nonlocal count
            count += 1
            fields.setdefault("data_dir", tmp_path / f"hub{count}")
            fields.setdefault("runtime", "docker")
            return stack.enter_context(running_hub(Settings(**fields)))

        yield start


def _shared_hub(tmp_path_factory: pytest.TempPathFactory, runtime: str) -> Iterator[RunningHub]:
    root = tmp_path_factory.mktemp(f"tes-hub-{runtime}")
    allowed = root / "allowed"
    allowed.mkdir()
    settings = Settings(
        data_dir=root / "data",
        runtime=runtime,
        max_content_bytes=1024,
        file_allowed_dirs=[allowed],
        capacity_cpus=8,
    )
    with running_hub(settings) as running:
        yield running


@pytest.fixture(scope="module")
def docker_hub(
    busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    """One docker-runtime hub shared by a module's tests; tests keep apart by unique names.

    ``max_content_bytes`` is small (1024) so that the limit is cheap to exceed; an extra
    allowed directory (``settings.file_allowed_dirs[0]``) holds file:// inputs outside the
    storage; capacity for 8 one-core tasks at once.
    """
    yield from _shared_hub(tmp_path_factory, "docker")


@pytest.fixture(scope="module")
def none_hub(bwrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """As ``docker_hub``, with the none runtime (host processes in bubblewrap)."""
    yield from _shared_hub(tmp_path_factory, "none")


@pytest.fixture(scope="module", params=["docker", "none"])
def run_hub(request: pytest.FixtureRequest) -> RunningHub:
    """``docker_hub``, then ``none_hub``: for what every runtime must do the same way."""
    return request.getfixturevalue(f"{request.param}_hub")  # type: ignore[no-any-return]
