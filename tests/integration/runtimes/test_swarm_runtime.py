"""What only the swarm runtime does: services, placement, resources, images, kill, sweep.

The contract every runtime keeps runs in test_runtime_contract.py (swarm is one of its kinds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import pytest
from tests.integration.runtimes.harness import Harness, Runtimes, make_harness

from toolferry.runtimes.base import RuntimeFailure
from toolferry.runtimes.swarm import KILLED_CONSTRAINT, SwarmRuntime

pytestmark = pytest.mark.integration

GIB = 1024**3
NOWHERE = "node.labels.toolferry-test-nowhere==1"  # a constraint no node satisfies


@pytest.fixture
def swarm_harness(
    request: pytest.FixtureRequest, tmp_path: Path, busybox_image: str
) -> Iterator[Harness]:
    made = Runtimes(request.getfixturevalue("swarm_runtime_factory"))
    yield make_harness(made, tmp_path, busybox_image)
    made.close()


@pytest.fixture
def engine(swarm: str) -> Iterator[docker.APIClient]:
    client = docker.APIClient(base_url=swarm)
    yield client
    client.close()


def _tasks(engine: docker.APIClient, ref: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = engine.tasks(filters={"service": ref})
    return tasks


def _until(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def _running_container(engine: docker.APIClient, ref: str) -> str:
    def running() -> str:
        tasks = _tasks(engine, ref)
        if tasks and tasks[0]["Status"]["State"] == "running":
            return str(tasks[0]["Status"]["ContainerStatus"]["ContainerID"])
        return ""

    container: str = _until(running)
    return container


def test_service_is_named_labelled_limited_and_placed(
    swarm_harness: Harness, engine: docker.APIClient, busybox_image: str
) -> None:
    spec = swarm_harness.spec(
        "sleep",
        "30",
        index=2,
        cpu_cores=0.5,
        ram_gb=0.0625,
        placement=("node.role==manager",),
    )
    ref = swarm_harness.start(spec)
    service = engine.inspect_service(ref)["Spec"]
    assert service["Name"] == f"toolferry-{swarm_harness.task_id}-2"
    assert service["Labels"] == {
        "toolferry.task": swarm_harness.task_id,
        "toolferry.executor": "2",
        "toolferry.image": busybox_image,
    }
    template = service["TaskTemplate"]
    # A local image is pinned by its id: no node asks a registry for it.
    assert template["ContainerSpec"]["Image"] == engine.inspect_image(busybox_image)["Id"]
    assert template["RestartPolicy"]["Condition"] == "none"
    assert template["Placement"]["Constraints"] == ["node.role==manager"]
    amounts = {"NanoCPUs": 500_000_000, "MemoryBytes": GIB // 16}
    assert template["Resources"] == {"Limits": amounts, "Reservations": amounts}
    assert "Networks" not in template
    host = engine.inspect_container(_running_container(engine, ref))["HostConfig"]
    assert (host["NanoCpus"], host["Memory"]) == (500_000_000, GIB // 16)
    assert {(m["Target"], m.get("ReadOnly", False)) for m in host["Mounts"]} == {
        ("/data", False),
        ("/inputs", True),
    }
    assert swarm_harness.runtime.find(spec) == ref
    assert swarm_harness.runtime.find(swarm_harness.spec("true", index=3)) is None
    swarm_harness.runtime.kill(ref)


def test_limits_are_seen_inside_the_container(swarm_harness: Harness) -> None:
    script = (
        "cat /sys/fs/cgroup/memory.max 2>/dev/null"
        " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes;"
        " cat /sys/fs/cgroup/cpu.max 2>/dev/null"
        " || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
    )
    spec = swarm_harness.spec("sh", "-c", script, ram_gb=0.0625, cpu_cores=0.5)
    assert swarm_harness.run(spec) == 0
    memory, cpu = swarm_harness.stdout().splitlines()
    assert int(memory) == GIB // 16
    quota, period = (int(n) for n in cpu.split())
    assert quota / period == 0.5


def test_oom_kill_is_reported_in_stderr(swarm_harness: Harness) -> None:
    # The shell keeps the whole substitution in memory: 200 MB against a 32 MiB limit.
    hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"
    code = swarm_harness.run(swarm_harness.spec("sh", "-c", hog, ram_gb=0.03125))
    assert code == 137
    assert swarm_harness.stdout() == ""
    assert swarm_harness.stderr().endswith(
        "toolferry: the executor was killed for exceeding its memory limit of 0.03125 GB\n"
    )


def test_manager_placement_runs(swarm_harness: Harness) -> None:
    spec = swarm_harness.spec("echo", "placed", placement=("node.role==manager",))
    assert swarm_harness.run(spec) == 0
    assert swarm_harness.stdout() == "placed\n"


def test_placement_no_node_satisfies_stays_pending_until_killed(
    swarm_harness: Harness, engine: docker.APIClient
) -> None:
    spec = swarm_harness.spec("echo", "never", placement=(NOWHERE,))
    ref = swarm_harness.start(spec)
    task = _until(lambda: [t for t in _tasks(engine, ref) if t["Status"].get("Err")])[0]
    assert task["Status"]["State"] == "pending"
    assert "no suitable node" in task["Status"]["Err"]
    time.sleep(1)
    assert swarm_harness.runtime.is_alive(ref) is True
    began = time.monotonic()
    swarm_harness.runtime.kill(ref)
    assert swarm_harness.runtime.wait(ref, spec) == 137
    assert time.monotonic() - began < 5
    assert swarm_harness.stdout() == ""
    assert swarm_harness.stderr() == "toolferry: the executor was killed before it started\n"
    assert swarm_harness.runtime.is_alive(ref) is False
    swarm_harness.runtime.cleanup(ref)
    with pytest.raises(docker.errors.NotFound):
        engine.inspect_service(ref)
    assert swarm_harness.runtime.is_alive(ref) is None


def test_kill_through_the_swarm_keeps_exit_code_and_logs(
    swarm_harness: Harness, engine: docker.APIClient
) -> None:
    """The path for an executor on another node, whose container this engine cannot reach."""
    runtime: Any = swarm_harness.runtime
    spec = swarm_harness.spec("sh", "-c", "echo started; exec sleep 300")
    ref = swarm_harness.start(spec)
    _running_container(engine, ref)
    began = time.monotonic()
    with runtime._api("killing") as api:
        runtime._stop_through_swarm(api, ref)
    assert runtime.wait(ref, spec) == 137
    assert time.monotonic() - began < 5
    assert swarm_harness.stdout() == "started\n"
    assert swarm_harness.stderr() == ""  # killed by toolferry: no note
    assert runtime.is_alive(ref) is False
    # The placeholder that replaced the task waits for a node that does not exist.
    states = sorted(
        (t["Status"]["State"], KILLED_CONSTRAINT in t["Spec"]["Placement"].get("Constraints", []))
        for t in _tasks(engine, ref)
    )
    assert states == [("pending", True), ("shutdown", False)]
    runtime.kill(ref)  # harmless a second time
    assert len(_tasks(engine, ref)) == 2


def test_kill_right_after_start_ends_the_wait(swarm_harness: Harness) -> None:
    spec = swarm_harness.spec("sleep", "300")
    ref = swarm_harness.start(spec)
    began = time.monotonic()
    swarm_harness.runtime.kill(ref)
    assert swarm_harness.runtime.wait(ref, spec) == 137
    assert time.monotonic() - began < 5
    assert swarm_harness.runtime.is_alive(ref) is False


def test_missing_image_is_a_runtime_failure_naming_it_quickly(swarm_harness: Harness) -> None:
    image = "toolferry-test/absent:1"
    spec = swarm_harness.spec("true", image=image)
    began = time.monotonic()
    ref = swarm_harness.start(spec)
    with pytest.raises(RuntimeFailure) as failure:
        swarm_harness.runtime.wait(ref, spec)
    assert time.monotonic() - began < 5
    message = str(failure.value)
    assert message.startswith(f"image '{image}' is not available on swarm node ")
    assert message.endswith(f"No such image: {image}")


def test_image_given_by_id_runs(
    swarm_harness: Harness, engine: docker.APIClient, busybox_image: str
) -> None:
    image_id = engine.inspect_image(busybox_image)["Id"]
    assert image_id.startswith("sha256:")
    assert swarm_harness.run(swarm_harness.spec("echo", "by id", image=image_id)) == 0
    assert swarm_harness.stdout() == "by id\n"


def test_missing_image_id_is_a_runtime_failure(swarm_harness: Harness) -> None:
    image = "sha256:" + "0" * 64
    spec = swarm_harness.spec("true", image=image)
    ref = swarm_harness.start(spec)
    with pytest.raises(RuntimeFailure, match=f"image '{image}' is not available on swarm node"):
        swarm_harness.runtime.wait(ref, spec)


def test_network_isolation_is_promised_on_an_engine_without_a_default_bridge(
    swarm: str, engine: docker.APIClient
) -> None:
    runtime = SwarmRuntime(swarm)
    try:
        assert runtime.unavailable_reason() is None
    finally:
        runtime.close()
    assert not [n for n in engine.networks() if n["Name"] == "bridge"]  # dockerd --bridge=none
    assert runtime.capabilities.isolates_network


def test_no_network_without_network(swarm_harness: Harness) -> None:
    # Loopback only: nothing beyond it can be reached (the contract checks the interfaces).
    spec = swarm_harness.spec("sh", "-c", "ls /sys/class/net; cat /proc/net/route | wc -l")
    assert swarm_harness.run(spec) == 0
    assert swarm_harness.stdout() == "lo\n1\n"  # the route table has its header only


def test_stdin_is_refused_at_start(swarm_harness: Harness) -> None:
    stdin = swarm_harness.root / "stdin"
    stdin.write_bytes(b"x")
    with pytest.raises(RuntimeFailure, match="cannot feed an executor's stdin"):
        swarm_harness.start(swarm_harness.spec("cat", stdin=stdin))
    assert swarm_harness.runtime.find(swarm_harness.spec("cat")) is None


def test_ended_service_with_the_same_name_is_replaced(swarm_harness: Harness) -> None:
    first = swarm_harness.start(swarm_harness.spec("echo", "old"))
    assert swarm_harness.runtime.wait(first, swarm_harness.spec("echo", "old")) == 0
    assert swarm_harness.run(swarm_harness.spec("echo", "fresh")) == 0
    assert swarm_harness.stdout() == "fresh\n"
    assert swarm_harness.runtime.is_alive(first) is None


def test_running_service_with_the_same_name_is_not_touched(swarm_harness: Harness) -> None:
    first = swarm_harness.start(swarm_harness.spec("sleep", "30"))
    with pytest.raises(RuntimeFailure, match="already running"):
        swarm_harness.runtime.start(swarm_harness.spec("true"))
    assert swarm_harness.runtime.is_alive(first) is True


def test_wait_on_a_removed_service_is_a_runtime_failure(swarm_harness: Harness) -> None:
    spec = swarm_harness.spec("true")
    ref = swarm_harness.start(spec)
    swarm_harness.runtime.cleanup(ref)
    with pytest.raises(RuntimeFailure, match="no longer exists"):
        swarm_harness.runtime.wait(ref, spec)


def test_large_output_is_complete_right_after_the_end(swarm_harness: Harness) -> None:
    # 4 MB of stdout and 1 MB of stderr, read as soon as the task is complete.
    script = "head -c 4000000 /dev/zero | tr '\\0' o; head -c 1000000 /dev/zero | tr '\\0' e >&2"
    for _ in range(3):
        assert swarm_harness.run(swarm_harness.spec("sh", "-c", script)) == 0
        assert swarm_harness.stdout() == "o" * 4_000_000
        assert swarm_harness.stderr() == "e" * 1_000_000


def test_engine_that_does_not_answer() -> None:
    runtime = SwarmRuntime("unix:///nonexistent/docker.sock")
    reason = runtime.unavailable_reason()
    assert reason is not None
    assert "dockerd --iptables=false --bridge=none" in reason
    with pytest.raises(RuntimeFailure, match=r"Docker Engine at unix:///nonexistent/docker\.sock"):
        runtime.is_alive("0123456789ab")
    runtime.close()


def test_sweep_removes_only_services_of_tasks_not_kept(
    swarm_harness: Harness, engine: docker.APIClient
) -> None:
    runtime = swarm_harness.runtime
    keep_spec = swarm_harness.spec("true")
    gone_spec = swarm_harness.spec("sleep", "300", task_id=keep_spec.task_id + "x")
    kept = swarm_harness.start(keep_spec)
    gone = swarm_harness.start(gone_spec)
    runtime.wait(kept, keep_spec)
    removed = runtime.sweep(lambda task_id: task_id != gone_spec.task_id)
    assert removed == 1
    assert runtime.is_alive(gone) is None
    assert runtime.is_alive(kept) is False
    with suppress(docker.errors.NotFound):
        engine.remove_service(gone)
