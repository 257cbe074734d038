"""Runtime fixtures: the same suite runs against every runtime through ``runtime_kind``.

A runtime that cannot run here fails its tests with how to start it (scripts/setup.sh does);
the Docker Engine, podman, the busybox test image and bubblewrap come from the integration
conftest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers import services
from tests.integration.runtimes.harness import Harness, Runtimes, make_harness

from toolferry.runtimes.docker import DockerRuntime
from toolferry.runtimes.none import NoneRuntime
from toolferry.runtimes.podman import PodmanRuntime
from toolferry.runtimes.swarm import SwarmRuntime

RUNTIME_KINDS = ("docker", "none", "podman", "swarm")


@pytest.fixture(scope="session")
def docker_runtime_factory(docker_engine: str, busybox_image: str) -> Callable[[], DockerRuntime]:
    """Builds DockerRuntimes on the test engine; fails if the runtime itself says it cannot run."""
    reason = DockerRuntime(docker_engine).unavailable_reason()
    if reason:
        pytest.fail(f"docker runtime unavailable: {reason}", pytrace=False)
    return lambda: DockerRuntime(docker_engine)


@pytest.fixture(scope="session")
def none_runtime_factory(bwrap: str) -> Callable[[], NoneRuntime]:
    """Builds NoneRuntimes; fails if bubblewrap cannot build a sandbox here."""
    reason = NoneRuntime(bwrap).unavailable_reason()
    if reason:
        pytest.fail(f"none runtime unavailable: {reason}", pytrace=False)
    return lambda: NoneRuntime(bwrap)


@pytest.fixture(scope="session")
def podman_runtime_factory(podman: str, podman_busybox_image: str) -> Callable[[], PodmanRuntime]:
    """Builds PodmanRuntimes with this host's options; fails if the runtime's trial run fails."""
    reason = PodmanRuntime(
        podman, services.PODMAN_GLOBAL_ARGS, services.PODMAN_ULIMITS
    ).unavailable_reason()
    if reason:
        pytest.fail(f"podman runtime unavailable: {reason}", pytrace=False)
    return lambda: PodmanRuntime(podman, services.PODMAN_GLOBAL_ARGS, services.PODMAN_ULIMITS)


@pytest.fixture(scope="session")
def swarm_runtime_factory(swarm: str, busybox_image: str) -> Callable[[], SwarmRuntime]:
    """Builds SwarmRuntimes on the test swarm's manager; fails if the runtime says it cannot run."""
    probe = SwarmRuntime(swarm)
    try:
        reason = probe.unavailable_reason()
    finally:
        probe.close()
    if reason:
        pytest.fail(f"swarm runtime unavailable: {reason}", pytrace=False)
    return lambda: SwarmRuntime(swarm)


@pytest.fixture(params=RUNTIME_KINDS)
def runtime_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def runtimes(request: pytest.FixtureRequest, runtime_kind: str) -> Iterator[Runtimes]:
    factory = request.getfixturevalue(f"{runtime_kind}_runtime_factory")
    made = Runtimes(factory)
    yield made
    made.close()


@pytest.fixture
def harness(runtimes: Runtimes, tmp_path: Path) -> Harness:
    """A harness on the parametrised runtime kind (docker runs the busybox test image)."""
    return make_harness(runtimes, tmp_path, services.TEST_IMAGE)


@pytest.fixture
def docker_harness(
    docker_runtime_factory: Callable[[], DockerRuntime], tmp_path: Path, busybox_image: str
) -> Iterator[Harness]:
    made = Runtimes(docker_runtime_factory)
    yield make_harness(made, tmp_path, busybox_image)
    made.close()


@pytest.fixture
def none_harness(
    none_runtime_factory: Callable[[], NoneRuntime], tmp_path: Path
) -> Iterator[Harness]:
    made = Runtimes(none_runtime_factory)
    yield make_harness(made, tmp_path, "ignored/by-the-none-runtime:1")
    made.close()


@pytest.fixture
def podman_harness(
    podman_runtime_factory: Callable[[], PodmanRuntime], tmp_path: Path, podman_busybox_image: str
) -> Iterator[Harness]:
    made = Runtimes(podman_runtime_factory)
    yield make_harness(made, tmp_path, podman_busybox_image)
    made.close()
