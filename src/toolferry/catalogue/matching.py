"""Matching environments against execution environments: the hub's sites, classified as ViCE
classifies execution environments (hardware, runtime technology, management layer).

Today a hub has one site, its own, with the local backend; later backends and federated sites
add their own :class:`ExecutionEnvironment` to the list the hub gives here.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolferry.domain.environment import Environment, Hardware, ManagementLayer
from toolferry.domain.execution import ExecutionEnvironment, Fit, fit

__all__ = ["Match", "host_operating_system", "local_execution_environment", "match"]


@dataclass(frozen=True, kw_only=True)
class Match:
    where: ExecutionEnvironment
    env: Environment
    fit: Fit


def host_operating_system(os_release: Path = Path("/etc/os-release")) -> tuple[str, ...]:
    """``("debian 12",)`` from os-release, or the kernel's name when it is missing."""
    try:
        fields = dict(
            line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line
        )
    except OSError:
        return (platform.system().lower(),)
    name = fields.get("ID", platform.system()).strip('"').lower()
    version = fields.get("VERSION_ID", "").strip('"')
    return (f"{name} {version}".strip(),)


def local_execution_environment(
    *,
    name: str,
    cpus: float,
    ram_gb: float,
    runtimes: Sequence[str],
    disk_path: Path,
) -> ExecutionEnvironment:
    """The hub's own site: its capacity, this machine's architecture and free disk where
    tasks work, the runtimes that answer, no management layer above the machine."""
    existing = next(p for p in (disk_path, *disk_path.parents) if p.exists())
    disk_gb = shutil.disk_usage(existing).free / 2**30
    return ExecutionEnvironment(
        name=name,
        hardware=Hardware(
            cpu_cores=cpus,
            ram_gb=ram_gb,
            disk_gb=disk_gb or None,
            cpu_architecture=platform.machine(),
        ),
        runtimes=tuple(runtimes),
        management_layer=ManagementLayer.BASIC,
        operating_system=host_operating_system(),
    )


def match(envs: Iterable[Environment], places: Iterable[ExecutionEnvironment]) -> list[Match]:
    """Every (place, environment) pair with its fit, runnable entries only."""
    places = list(places)
    return [
        Match(where=where, env=env, fit=fit(env, where))
        for env in envs
        if env.runnable
        for where in places
    ]
