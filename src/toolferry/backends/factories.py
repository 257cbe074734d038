"""How each optional backend is built from the settings (imported only when asked for)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from toolferry.backends.base import Backend, BackendUnavailable
from toolferry.backends.batch import BatchBackend
from toolferry.backends.slurm import SlurmDialect
from toolferry.backends.swarm import SwarmBackend
from toolferry.config import Settings
from toolferry.runtimes.base import Runtime
from toolferry.wiring import settings_values


def slurm(settings: Settings, runtimes: Mapping[str, Runtime]) -> Backend:
    dialect = SlurmDialect(
        partition=settings.slurm_partition,
        extra_args=tuple(settings.slurm_sbatch_args),
        bin_dir=settings.slurm_bin_dir,
    )
    return BatchBackend(
        dialect,
        settings=settings_values(settings),
        work_dir=settings.work_dir,
        python=settings.worker_python or sys.executable,
        poll_s=settings.batch_poll_s,
        # The worker on the node uses the site's runtimes (the nodes are set up alike).
        runtimes=tuple(sorted(runtimes)),
    )


def swarm(settings: Settings, runtimes: Mapping[str, Runtime]) -> Backend:
    import docker

    from toolferry.runtimes.swarm import SwarmRuntime

    runtime = SwarmRuntime(settings.docker_host)

    def nodes() -> list[dict[str, Any]]:
        try:
            client = docker.DockerClient(base_url=settings.docker_host or None, timeout=10)
        except docker.errors.DockerException as exc:
            raise BackendUnavailable(f"no Docker Engine answers: {exc}") from None
        try:
            return [n.attrs for n in client.nodes.list()]
        except docker.errors.APIError as exc:
            raise BackendUnavailable(f"cannot list the swarm's nodes: {exc}") from None
        finally:
            client.close()

    return SwarmBackend(runtime, nodes)
