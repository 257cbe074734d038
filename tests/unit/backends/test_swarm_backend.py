"""The swarm backend without a swarm: its size from ``docker node inspect`` documents, its
placement constraints check, and when it refuses to start."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.backends.fakes import spec
from tests.unit.fakes import FakeRuntime
from toolferry.backends.base import BackendUnavailable, Size
from toolferry.backends.swarm import SwarmBackend, swarm_size

GIB = 1 << 30


def node(
    cpus: float, ram_gib: float, *, state: str = "ready", availability: str = "active"
) -> dict[str, Any]:
    """A node as ``docker node inspect`` shows it (the parts the backend reads)."""
    return {
        "ID": "abc",
        "Spec": {"Role": "manager", "Availability": availability},
        "Description": {
            "Hostname": "vm",
            "Resources": {"NanoCPUs": int(cpus * 1e9), "MemoryBytes": int(ram_gib * GIB)},
        },
        "Status": {"State": state, "Addr": "127.0.0.1"},
    }


class Unreachable(FakeRuntime):
    def unavailable_reason(self) -> str | None:
        return "this node is not a swarm manager"


def test_the_size_counts_ready_active_nodes_only() -> None:
    nodes = [
        node(2, 4),
        node(8, 16),
        node(64, 256, state="down"),
        node(64, 256, availability="drain"),
        node(64, 256, availability="pause"),
        {"Status": {"State": "ready"}},  # no Spec: not active
    ]
    assert swarm_size(nodes) == (Size(cpus=10, ram_gb=20), Size(cpus=8, ram_gb=16))
    assert swarm_size([]) == (Size(cpus=0, ram_gb=0), Size(cpus=0, ram_gb=0))


def test_capabilities_name_its_runtime_and_constraints_parameter() -> None:
    runtime = FakeRuntime()
    backend = SwarmBackend(runtime, lambda: [node(2, 4), node(4, 8)])
    caps = backend.capabilities
    assert caps.name == backend.name == "swarm"
    assert caps.total == Size(cpus=6, ram_gb=12) and caps.largest == Size(cpus=4, ram_gb=8)
    assert caps.runtimes == ("fake",) and caps.default_runtime == "fake"
    assert list(caps.parameters) == ["constraints"] and caps.workers_in_hub
    assert backend.runtimes == {"fake": runtime}


def test_a_runtime_that_does_not_answer_or_no_usable_node_is_refused() -> None:
    with pytest.raises(BackendUnavailable, match="not a swarm manager"):
        SwarmBackend(Unreachable(), lambda: [node(2, 4)])
    with pytest.raises(BackendUnavailable, match="no ready, active node"):
        SwarmBackend(FakeRuntime(), lambda: [node(2, 4, state="down")])


@pytest.mark.parametrize(
    "constraints",
    [
        "node.role==manager",
        "node.labels.zone==a, node.role!=worker",
        "engine.labels.gpu==yes",
        "node.hostname == vm",
    ],
)
def test_swarm_placement_constraints_are_accepted(constraints: str) -> None:
    backend = SwarmBackend(FakeRuntime(), lambda: [node(2, 4)])
    assert backend.check(spec(constraints=constraints)) is None


@pytest.mark.parametrize(
    "bad", ["zone==a", "node.role=manager", "node.role==", "node.labels.zone==a b", "$(id)==x"]
)
def test_other_constraints_are_refused_naming_the_parameter(bad: str) -> None:
    backend = SwarmBackend(FakeRuntime(), lambda: [node(2, 4)])
    reason = backend.check(spec(constraints=f"node.role==manager,{bad}"))
    assert reason is not None and reason.startswith(f"constraints: {bad.strip()!r} is not")
    assert backend.check(spec()) is None
