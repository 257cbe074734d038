"""The Docker Swarm service built for an executor, and the pure rules around it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from toolferry.runtimes.base import ExecSpec, Mount
from toolferry.runtimes.swarm import (
    KILLED_CONSTRAINT,
    SwarmRuntime,
    isolates_network,
    poll_interval,
    service_spec,
    swarm_problem,
)

GIB = 1024**3


def spec(**changes: object) -> ExecSpec:
    base: dict[str, object] = {
        "task_id": "t1",
        "index": 3,
        "image": "example/tool:1",
        "command": ("prog", "-x", "a b"),
        "stdout": Path("/w/out"),
        "stderr": Path("/w/err"),
        "scratch": Path("/w/scratch"),
    }
    base.update(changes)
    return ExecSpec(**base)  # type: ignore[arg-type]


def test_minimal_executor_is_one_named_labelled_replica_never_restarted() -> None:
    body = service_spec(spec(), "sha256:abc")
    assert body["Name"] == "toolferry-t1-3"
    assert body["Labels"] == {
        "toolferry.task": "t1",
        "toolferry.executor": "3",
        "toolferry.image": "example/tool:1",
    }
    assert body["Mode"] == {"Replicated": {"Replicas": 1}}
    template = body["TaskTemplate"]
    assert template["RestartPolicy"] == {"Condition": "none", "MaxAttempts": 0}
    assert template["Resources"] == {}
    assert template["Placement"] == {"Constraints": []}
    assert "Networks" not in template  # no network at all: loopback only
    assert template["LogDriver"]["Name"] == "local"  # keeps binary output byte-exact
    container = template["ContainerSpec"]
    assert container["Image"] == "sha256:abc"
    assert (container["Env"], container["Mounts"]) == ([], [])
    assert "Dir" not in container
    # Stopping through the swarm (kill, removal) is immediate, as the docker runtime's kill.
    assert (container["StopSignal"], container["StopGracePeriod"]) == ("SIGKILL", 0)


def test_command_replaces_the_entrypoint_and_keeps_arguments_verbatim() -> None:
    container = service_spec(spec(), "img")["TaskTemplate"]["ContainerSpec"]
    assert container["Command"] == ["prog"]
    assert container["Args"] == ["-x", "a b"]
    lone = service_spec(spec(command=("true",)), "img")["TaskTemplate"]["ContainerSpec"]
    assert (lone["Command"], lone["Args"]) == (["true"], [])


def test_limits_are_reserved_too_and_mounts_env_workdir_placement_network() -> None:
    body = service_spec(
        spec(
            cpu_cores=1.5,
            ram_gb=0.0625,
            network=True,
            workdir="/data/sub",
            env={"A": "x=y", "EMPTY": ""},
            placement=("node.role==manager", "node.labels.zone==a"),
            mounts=(
                Mount(host=Path("/w/data"), container="/data"),
                Mount(host=Path("/w/in"), container="/inputs", read_only=True),
            ),
        ),
        "img",
    )
    template = body["TaskTemplate"]
    both = {"NanoCPUs": 1_500_000_000, "MemoryBytes": GIB // 16}
    assert template["Resources"] == {"Limits": both, "Reservations": both}
    assert template["Placement"] == {"Constraints": ["node.role==manager", "node.labels.zone==a"]}
    assert template["Networks"] == [{"Target": "host"}]
    container = template["ContainerSpec"]
    assert container["Dir"] == "/data/sub"
    assert container["Env"] == ["A=x=y", "EMPTY="]
    assert container["Mounts"] == [
        {"Type": "bind", "Source": "/w/data", "Target": "/data", "ReadOnly": False},
        {"Type": "bind", "Source": "/w/in", "Target": "/inputs", "ReadOnly": True},
    ]


def test_cpu_alone_or_ram_alone_is_limited_alone() -> None:
    cpu = service_spec(spec(cpu_cores=2), "img")["TaskTemplate"]["Resources"]
    assert cpu == {"Limits": {"NanoCPUs": 2 * 10**9}, "Reservations": {"NanoCPUs": 2 * 10**9}}
    ram = service_spec(spec(ram_gb=1), "img")["TaskTemplate"]["Resources"]
    assert ram == {"Limits": {"MemoryBytes": GIB}, "Reservations": {"MemoryBytes": GIB}}


def test_kill_placeholder_constraint_matches_no_node() -> None:
    # Node ids are 25 lowercase letters and digits: no node can have this one.
    field, _, value = KILLED_CONSTRAINT.partition("==")
    assert field == "node.id"
    assert not value.isalnum()


def test_polling_starts_fast_and_grows_to_half_a_second() -> None:
    assert poll_interval(0) == pytest.approx(0.05)
    assert poll_interval(1) == pytest.approx(0.15)
    assert poll_interval(2) > poll_interval(1)
    assert poll_interval(10) == poll_interval(3600) == 0.5


@pytest.mark.parametrize(
    ("swarm", "expected"),
    [
        ({"LocalNodeState": "active", "ControlAvailable": True}, None),
        (
            {"LocalNodeState": "inactive", "ControlAvailable": False},
            "not in an active swarm (state inactive); run `docker swarm init "
            "--advertise-addr 127.0.0.1`",
        ),
        (
            {"LocalNodeState": "error", "Error": "manager stopped"},
            "(state error: manager stopped)",
        ),
        ({}, "(state unknown)"),
        (
            {"LocalNodeState": "active", "ControlAvailable": False},
            "is a swarm worker, not a manager",
        ),
    ],
)
def test_swarm_problem(swarm: dict[str, Any], expected: str | None) -> None:
    problem = swarm_problem(swarm, "unix:///x.sock")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith("the Docker Engine at unix:///x.sock ")
        assert expected in problem


def test_capabilities_refuse_stdin_and_promise_limits_and_isolation() -> None:
    caps = SwarmRuntime.capabilities
    assert caps.name == SwarmRuntime.name == "swarm"
    assert (caps.uses_images, caps.enforces_cpu, caps.enforces_ram) == (True, True, True)
    assert caps.isolates_network
    assert caps.stdin is False


def test_network_is_isolated_only_without_a_default_bridge() -> None:
    # This host's answer to GET /networks?filters={"name": ["bridge"]} (dockerd --bridge=none):
    # the name filter matches parts of names too.
    gwbridge = {"Name": "docker_gwbridge", "Driver": "bridge", "Scope": "local"}
    assert isolates_network([gwbridge])
    assert isolates_network([])
    # An engine with the default bridge puts every service without networks on it.
    default = {"Name": "bridge", "Driver": "bridge", "Scope": "local"}
    assert not isolates_network([gwbridge, default])


def test_root_cannot_be_mounted_over() -> None:
    runtime = SwarmRuntime("unix:///nonexistent/docker.sock")
    assert runtime.path_problem(["/data", "/tmp/x"]) is None
    assert runtime.path_problem(["/data", "//"]) == (
        "// cannot be used with the swarm runtime: docker cannot mount over /"
    )
