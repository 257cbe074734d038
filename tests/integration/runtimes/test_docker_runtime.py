"""What only the docker runtime does: images, resource limits, labels, engine errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

import docker
import pytest
from tests.integration.runtimes.harness import Harness

from toolferry.runtimes.base import RuntimeFailure
from toolferry.runtimes.docker import DockerRuntime

pytestmark = pytest.mark.integration

GIB = 1024**3


@pytest.fixture
def engine(docker_engine: str) -> Iterator[docker.APIClient]:
    client = docker.APIClient(base_url=docker_engine)
    yield client
    client.close()


def test_capabilities() -> None:
    caps = DockerRuntime.capabilities
    assert (caps.name, caps.uses_images, caps.enforces_cpu, caps.enforces_ram) == (
        "docker",
        True,
        True,
        True,
    )
    assert caps.isolates_network


def test_container_is_named_labelled_and_limited(
    docker_harness: Harness, engine: docker.APIClient
) -> None:
    spec = docker_harness.spec("sleep", "30", index=2, cpu_cores=0.5, ram_gb=0.0625)
    ref = docker_harness.start(spec)
    info = engine.inspect_container(ref)
    assert info["Name"] == f"/toolferry-{docker_harness.task_id}-2"
    assert info["Config"]["Labels"] == {
        "toolferry.task": docker_harness.task_id,
        "toolferry.executor": "2",
    }
    host = info["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == host["MemorySwap"] == GIB // 16
    assert host["NetworkMode"] == "none"
    assert host["AutoRemove"] is False
    assert {(m["Target"], m.get("ReadOnly", False)) for m in host["Mounts"]} == {
        ("/data", False),
        ("/inputs", True),
    }
    docker_harness.runtime.kill(ref)


def test_memory_limit_is_seen_inside_the_container(docker_harness: Harness) -> None:
    spec = docker_harness.spec(
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ram_gb=0.0625,
    )
    assert docker_harness.run(spec) == 0
    assert int(docker_harness.stdout()) == GIB // 16


def test_oom_kill_is_reported_in_stderr(docker_harness: Harness) -> None:
    # The shell keeps the whole substitution in memory: 200 MB against a 32 MiB limit.
    hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"
    code = docker_harness.run(docker_harness.spec("sh", "-c", hog, ram_gb=0.03125))
    assert code == 137
    assert docker_harness.stderr().endswith(
        "toolferry: the executor was killed for exceeding its memory limit of 0.03125 GB\n"
    )


def test_image_entrypoint_is_replaced_by_the_command(docker_harness: Harness) -> None:
    assert docker_harness.run(docker_harness.spec("echo", "argv", "kept")) == 0
    assert docker_harness.stdout() == "argv kept\n"


def test_stale_container_with_the_same_name_is_replaced(
    docker_harness: Harness, engine: docker.APIClient
) -> None:
    name = f"toolferry-{docker_harness.task_id}-0"
    stale = engine.create_container(docker_harness.image, ["true"], name=name)["Id"]
    try:
        assert docker_harness.run(docker_harness.spec("echo", "fresh")) == 0
        assert docker_harness.stdout() == "fresh\n"
        with pytest.raises(docker.errors.NotFound):
            engine.inspect_container(stale)
    finally:
        with suppress(docker.errors.NotFound):
            engine.remove_container(stale, force=True)


def test_running_container_with_the_same_name_is_not_touched(
    docker_harness: Harness, engine: docker.APIClient
) -> None:
    first = docker_harness.start(docker_harness.spec("sleep", "30"))
    with pytest.raises(RuntimeFailure, match="already running"):
        docker_harness.runtime.start(docker_harness.spec("true"))
    assert docker_harness.runtime.is_alive(first) is True


def test_missing_image_that_cannot_be_pulled_is_a_runtime_failure(
    docker_harness: Harness,
) -> None:
    # A registry on a closed port fails at once; the message carries the engine's reason.
    image = "127.0.0.1:1/toolferry-test/absent:1"
    with pytest.raises(RuntimeFailure) as failure:
        docker_harness.runtime.start(docker_harness.spec("true", image=image))
    message = str(failure.value)
    assert message.startswith(f"image '{image}' is not available locally and could not be pulled: ")
    assert "connection refused" in message


def test_wait_on_a_removed_container_is_a_runtime_failure(docker_harness: Harness) -> None:
    spec = docker_harness.spec("true")
    ref = docker_harness.start(spec)
    docker_harness.runtime.cleanup(ref)
    with pytest.raises(RuntimeFailure, match="no longer exists"):
        docker_harness.runtime.wait(ref, spec)


def test_engine_that_does_not_answer() -> None:
    runtime = DockerRuntime("unix:///nonexistent/docker.sock")
    reason = runtime.unavailable_reason()
    assert reason is not None
    assert "dockerd --iptables=false --bridge=none" in reason
    with pytest.raises(RuntimeFailure, match=r"Docker Engine at unix:///nonexistent/docker\.sock"):
        runtime.is_alive("0123456789ab")
    runtime.close()


def test_sweep_removes_only_containers_of_tasks_not_kept(docker_harness: Harness) -> None:
    runtime = docker_harness.runtime
    keep_spec = docker_harness.spec("true")
    gone_spec = docker_harness.spec("true", task_id=keep_spec.task_id + "x")
    kept = docker_harness.start(keep_spec)
    gone = docker_harness.start(gone_spec)
    runtime.wait(kept, keep_spec)
    runtime.wait(gone, gone_spec)
    removed = runtime.sweep(lambda task_id: task_id != gone_spec.task_id)
    assert removed >= 1
    assert runtime.is_alive(gone) is None
    assert runtime.is_alive(kept) is False
