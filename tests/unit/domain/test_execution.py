"""Which environments run where: ViCE's Table IV as data, extended to toolferry's runtimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from toolferry.domain.environment import Classification, ContentType, Environment, Hardware, Kind
from toolferry.domain.execution import (
    CROSS_PLATFORM,
    KIND_PLATFORMS,
    ExecutionEnvironment,
    Platform,
    fit,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
CONTENT = {
    Kind.OCI_IMAGE: ContentType.OCI,
    Kind.RECIPE: ContentType.DOCKERFILE,
    Kind.VM_DISK: ContentType.QCOW2,
    Kind.APPTAINER_SIF: ContentType.SIF,
}


def env(kind: Kind = Kind.OCI_IMAGE, **classification: Any) -> Environment:
    return Environment(
        id="e1",
        name="lab/tool",
        version=1,
        kind=kind,
        digest="sha256:" + "a" * 64,
        classification=Classification(title="Tool", content_type=CONTENT[kind], **classification),
        created=T0,
        updated=T0,
        owner_id="alice",
    )


SITE = ExecutionEnvironment(
    name="local",
    hardware=Hardware(cpu_cores=2, ram_gb=24, disk_gb=80, cpu_architecture="amd64"),
    runtimes=("docker", "none"),
)

# The seed's Table IV, rows "from", columns "to".
SEED = ["openstack", "bwlehrpool", "docker", "singularity"]
TABLE_IV = {
    "openstack": "✓✓✗✗",
    "bwlehrpool": "✓✓✗✗",
    "docker": "✓✓✓✓",
    "singularity": "✓✓✓✓",
}


@pytest.mark.parametrize("source", SEED)
def test_the_seeds_table_four_holds(source: str) -> None:
    for target, mark in zip(SEED, TABLE_IV[source], strict=True):
        supported = (Platform(source), Platform(target)) in CROSS_PLATFORM
        assert supported == (mark == "✓"), (source, target)


def test_every_kind_has_a_platform() -> None:
    assert set(KIND_PLATFORMS) == set(Kind)


def test_an_image_runs_on_docker() -> None:
    result = fit(env(), SITE)
    assert result.ok and result.runtime == "docker"


def test_a_vm_disk_cannot_run_on_containers() -> None:
    result = fit(env(Kind.VM_DISK), SITE)
    assert not result.ok
    assert result.reasons == ("a vm-disk made for openstack cannot run on docker, none",)


def test_an_apptainer_image_runs_where_podman_or_docker_does() -> None:
    assert fit(env(Kind.APPTAINER_SIF), SITE).runtime == "docker"
    only_host = ExecutionEnvironment(name="h", hardware=Hardware(), runtimes=("none",))
    assert not fit(env(Kind.APPTAINER_SIF), only_host).ok


def test_hardware_shortfalls_are_each_named() -> None:
    need = Hardware(cpu_cores=8, ram_gb=64, gpus=1, cpu_architecture="arm64")
    result = fit(env(minimal_hardware=need), SITE)
    assert result.runtime == "docker" and not result.ok
    assert result.reasons == (
        "needs 8 CPU cores, has 2",
        "needs 64 GB of memory, has 24",
        "needs 1 GPUs, has 0",
        "built for arm64, the hardware is amd64",
    )


def test_enough_hardware_fits() -> None:
    need = Hardware(cpu_cores=1, ram_gb=8, cpu_architecture="x86_64")
    assert fit(env(minimal_hardware=need), SITE).ok
