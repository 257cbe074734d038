"""Docker Swarm: the worker runs in the hub and stages through the attempt's folder, which
must lie on a filesystem every node shares at the same path; each executor is a Swarm service
(restart none, the task's cores and memory as reservations and limits) that Swarm places on a
node, within the task's placement constraints (backend parameter ``constraints``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from toolferry.backends.base import BackendCapabilities, BackendUnavailable, Size, placement_of
from toolferry.backends.local import LocalBackend
from toolferry.domain.task import TaskSpec
from toolferry.runtimes.base import Runtime

# A constraint is ``ATTRIBUTE==VALUE`` or ``ATTRIBUTE!=VALUE`` (Docker's placement syntax).
_CONSTRAINT = re.compile(
    r"^(node\.[A-Za-z0-9_.\-]+|engine\.labels\.[A-Za-z0-9_.\-]+)\s*(==|!=)\s*[^,\s]+$"
)


def swarm_size(nodes: list[dict[str, Any]]) -> tuple[Size, Size]:
    """(total, largest node) of the ready, active nodes in ``docker node inspect`` form."""
    sizes = []
    for node in nodes:
        status = (node.get("Status") or {}).get("State")
        availability = (node.get("Spec") or {}).get("Availability")
        if status != "ready" or availability != "active":
            continue
        resources = (node.get("Description") or {}).get("Resources") or {}
        sizes.append(
            (resources.get("NanoCPUs", 0) / 1e9, resources.get("MemoryBytes", 0) / (1 << 30))
        )
    if not sizes:
        return Size(cpus=0, ram_gb=0), Size(cpus=0, ram_gb=0)
    total = Size(cpus=sum(s[0] for s in sizes), ram_gb=round(sum(s[1] for s in sizes), 3))
    largest = Size(cpus=max(s[0] for s in sizes), ram_gb=round(max(s[1] for s in sizes), 3))
    return total, largest


class SwarmBackend(LocalBackend):
    """Workers in hub threads (like ``local``), executors as services through ``runtime``."""

    name = "swarm"

    def __init__(self, runtime: Runtime, nodes: Callable[[], list[dict[str, Any]]]) -> None:
        """``runtime``: the Swarm runtime; ``nodes``: the swarm's nodes (``docker node
        inspect`` form). Raises :class:`BackendUnavailable`."""
        reason = runtime.unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(reason)
        total, largest = swarm_size(nodes())
        if total.cpus <= 0:
            raise BackendUnavailable("the swarm has no ready, active node")
        super().__init__(total)
        self.runtimes = {runtime.name: runtime}
        self.capabilities = BackendCapabilities(
            name=self.name,
            description="workers in the hub, each executor a Docker Swarm service on a node "
            "(the work directory must be shared by the nodes)",
            total=total,
            largest=largest,
            parameters={
                "constraints": "Swarm placement constraints, comma-separated, e.g. "
                "node.labels.zone==a,node.role!=manager",
            },
            runtimes=(runtime.name,),
            default_runtime=runtime.name,
        )

    def check(self, spec: TaskSpec) -> str | None:
        for constraint in placement_of(spec):
            if not _CONSTRAINT.match(constraint):
                return (
                    f"constraints: {constraint!r} is not a Swarm placement constraint "
                    "(ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, ATTRIBUTE node.* or engine.labels.*)"
                )
        return None
