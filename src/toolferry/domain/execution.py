"""Execution environments and which virtual environments can run on them.

ViCE classifies an execution environment by its hardware, its runtime technology (bare metal,
containers, virtualisation, with the software, e.g. KVM or Docker) and its management layer
(basic, cloud, container cluster, job scheduler, with the software, e.g. OpenStack or Slurm).
Its Table IV says which platform's images another platform can run; :data:`CROSS_PLATFORM`
holds that table as data, extended to the runtimes toolferry sites have (podman, apptainer, and
``host``: a process in a bubblewrap sandbox, toolferry's ``none`` runtime).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from toolferry.domain.environment import Environment, Hardware, Kind, ManagementLayer

__all__ = [
    "CROSS_PLATFORM",
    "KIND_PLATFORMS",
    "RUNTIME_PLATFORM",
    "ExecutionEnvironment",
    "Fit",
    "Platform",
    "fit",
]


class Platform(StrEnum):
    """What runs an image: the seed's four platforms, and the runtimes of toolferry sites."""

    OPENSTACK = "openstack"
    BWLEHRPOOL = "bwlehrpool"
    DOCKER = "docker"
    SINGULARITY = "singularity"
    PODMAN = "podman"
    APPTAINER = "apptainer"
    HOST = "host"


_P = Platform
# (image's platform, platform that runs it). The seed's Table IV first (OpenStack, bwLehrpool,
# Docker, Singularity rows and columns), then the extension: podman runs what docker runs and
# the other way round (both OCI); apptainer is singularity's successor and reads its images;
# a bare host process runs nothing packaged (its "image" is the host itself).
CROSS_PLATFORM: frozenset[tuple[Platform, Platform]] = frozenset(
    {
        (_P.OPENSTACK, _P.OPENSTACK),
        (_P.OPENSTACK, _P.BWLEHRPOOL),
        (_P.BWLEHRPOOL, _P.OPENSTACK),
        (_P.BWLEHRPOOL, _P.BWLEHRPOOL),
        *((_P.DOCKER, to) for to in (_P.OPENSTACK, _P.BWLEHRPOOL, _P.DOCKER, _P.SINGULARITY)),
        *((_P.SINGULARITY, to) for to in (_P.OPENSTACK, _P.BWLEHRPOOL, _P.DOCKER, _P.SINGULARITY)),
        # Extension: OCI runtimes interchangeable; apptainer = singularity.
        *((_P.DOCKER, to) for to in (_P.PODMAN, _P.APPTAINER)),
        *((_P.PODMAN, to) for to in (_P.PODMAN, _P.DOCKER, _P.APPTAINER, _P.SINGULARITY)),
        *((_P.PODMAN, to) for to in (_P.OPENSTACK, _P.BWLEHRPOOL)),
        *((_P.SINGULARITY, to) for to in (_P.APPTAINER, _P.PODMAN)),
        *((_P.APPTAINER, to) for to in (_P.APPTAINER, _P.SINGULARITY, _P.DOCKER, _P.PODMAN)),
        *((_P.APPTAINER, to) for to in (_P.OPENSTACK, _P.BWLEHRPOOL)),
        (_P.HOST, _P.HOST),
    }
)

# The platform an environment of each kind is made for (a recipe builds an OCI image).
KIND_PLATFORMS: dict[Kind, Platform] = {
    Kind.OCI_IMAGE: Platform.DOCKER,
    Kind.RECIPE: Platform.DOCKER,
    Kind.VM_DISK: Platform.OPENSTACK,
    Kind.APPTAINER_SIF: Platform.APPTAINER,
}

# toolferry runtime names → platform.
RUNTIME_PLATFORM: dict[str, Platform] = {
    "docker": Platform.DOCKER,
    "podman": Platform.PODMAN,
    "apptainer": Platform.APPTAINER,
    "singularity": Platform.SINGULARITY,
    "none": Platform.HOST,
    "openstack": Platform.OPENSTACK,
    "bwlehrpool": Platform.BWLEHRPOOL,
}


@dataclass(frozen=True, kw_only=True)
class ExecutionEnvironment:
    """A place that runs tasks (a site and its backend), classified as ViCE proposes."""

    name: str
    hardware: Hardware
    runtimes: tuple[str, ...]  # toolferry runtime names that answer there, e.g. docker, none
    management_layer: ManagementLayer = ManagementLayer.BASIC
    management_implementation: str | None = None  # e.g. "slurm 22.05", "docker swarm"
    operating_system: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True)
class Fit:
    """Whether an environment can run on an execution environment, on which runtime, and if
    not, every reason why not (one line each, for a user)."""

    runtime: str | None
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.runtime is not None and not self.reasons


def _hardware_gaps(need: Hardware | None, have: Hardware) -> list[str]:
    if need is None:
        return []
    gaps = []
    for label, wanted, offered in (
        ("CPU cores", need.cpu_cores, have.cpu_cores),
        ("GB of memory", need.ram_gb, have.ram_gb),
        ("GB of disk", need.disk_gb, have.disk_gb),
        ("GPUs", need.gpus, have.gpus),
    ):
        if wanted and (offered or 0) < wanted:
            gaps.append(f"needs {wanted:g} {label}, has {offered or 0:g}")
    arch_need, arch_have = need.cpu_architecture, have.cpu_architecture
    if arch_need and arch_have and arch_need != arch_have:
        gaps.append(f"built for {arch_need}, the hardware is {arch_have}")
    return gaps


def fit(env: Environment, where: ExecutionEnvironment) -> Fit:
    """Can ``env`` run at ``where``? The first runtime there whose platform runs the kind's
    platform (Table IV), and every hardware shortfall."""
    made_for = KIND_PLATFORMS[env.kind]
    runtime = next(
        (
            name
            for name in where.runtimes
            if (made_for, RUNTIME_PLATFORM.get(name, Platform.HOST)) in CROSS_PLATFORM
        ),
        None,
    )
    reasons = []
    if runtime is None:
        offered = ", ".join(where.runtimes) or "none"
        reasons.append(f"a {env.kind} made for {made_for} cannot run on {offered}")
    reasons += _hardware_gaps(env.classification.minimal_hardware, where.hardware)
    return Fit(runtime=runtime, reasons=tuple(reasons))
