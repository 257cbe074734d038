"""Fixtures for tests that need real services (docker and its swarm, bubblewrap, Slurm, an old TES
client, WebDAV, S3 and FTP servers).

A service that is missing fails the test with how to start it; nothing is skipped.
Every test in this folder is marked ``integration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from tests.helpers import services
from tests.integration.catalogue.registry_server import (
    RegistryServer,
    TokenService,
    make_signing_pair,
)
from tests.integration.storage.fixtures import (  # noqa: F401 -- fixtures for every test here
    ftp_area,
    ftp_server,
    moto_server,
    s3_bucket,
    webdav_area,
    webdav_auth_area,
    webdav_auth_server,
    webdav_server,
)

T = TypeVar("T")
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


def _require(check: Callable[[], T]) -> T:
    try:
        return check()
    except services.ServiceUnavailable as exc:
        problem = str(exc)
    # Failing outside the except block keeps the report to the one line that says what to do.
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The address (DOCKER_HOST form) of a Docker Engine that answers."""
    return _require(services.check_docker_engine)


@pytest.fixture(scope="session")
def busybox_image(docker_engine: str) -> str:
    """`toolferry-test/busybox:1`, built from the host's static busybox if missing."""
    return _require(services.ensure_busybox_image)


@pytest.fixture(scope="session")
def bwrap() -> str:
    """Path of a bubblewrap binary that can start a sandbox."""
    return _require(services.check_bwrap)


@pytest.fixture(scope="session")
def pytes04_python() -> Path:
    """Interpreter of `.venv-pytes04`, where `import tes` is py-tes 0.4.2."""
    return _require(services.check_pytes04_python)


@pytest.fixture(scope="session")
def qemu_img() -> str:
    """Path of a working qemu-img (Debian qemu-utils)."""
    return _require(services.check_qemu_img)


# -- OCI registry and skopeo (tests/integration/catalogue) --------------------------------


@pytest.fixture(scope="session")
def skopeo() -> str:
    """Path of a working skopeo."""
    return _require(services.check_skopeo)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Debian's docker-registry on a free loopback port, anonymous, deletes enabled."""
    binary = _require(services.check_registry_binary)
    with RegistryServer(binary, tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A docker-registry behind the Docker token protocol (``.token.users`` may push)."""
    binary = _require(services.check_registry_binary)
    root = tmp_path_factory.mktemp("token-registry")
    key, cert = make_signing_pair(root)
    with (
        TokenService(key, cert, {"alice": "wonderland"}) as token,
        RegistryServer(binary, root / "registry", token) as server,
    ):
        yield server


# -- podman (tests/integration/runtimes) ---------------------------------------------------


@pytest.fixture(scope="session")
def podman() -> str:
    """Path of a podman that answers with the options this host needs."""
    return _require(services.check_podman)


@pytest.fixture(scope="session")
def podman_busybox_image(podman: str) -> str:
    """`toolferry-test/busybox:1` in podman's storage, built from the host's static busybox."""
    return _require(services.ensure_busybox_image_podman)


# -- PostgreSQL (tests/integration/store) --------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> str:
    """The URL of a PostgreSQL database that answers, as a user who may create databases
    (tests/integration/store/postgres.py makes a fresh one per test from it)."""
    return _require(services.check_postgres)


# -- Slurm and Docker Swarm (the batch backends) -------------------------------------------


@pytest.fixture(scope="session")
def slurm() -> str:
    """The default partition of a Slurm cluster that answers and has a usable node."""
    return _require(services.check_slurm)


@pytest.fixture(scope="session")
def swarm(docker_engine: str) -> str:
    """The address (DOCKER_HOST form) of a Docker Engine that manages an active Swarm."""
    return _require(services.check_swarm)
