"""What only the podman runtime does: images, resource limits, labels, podman's own errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import services
from tests.integration.runtimes.harness import Harness

from toolferry.runtimes.base import RuntimeFailure
from toolferry.runtimes.podman import PodmanRuntime

pytestmark = pytest.mark.integration

GIB = 1024**3


def _inspect(name: str) -> dict[str, Any] | None:
    proc = services.podman("container", "inspect", "--format", "json", name)
    if proc.returncode != 0:
        return None
    found: list[dict[str, Any]] = json.loads(proc.stdout)
    return found[0]


def test_capabilities() -> None:
    caps = PodmanRuntime.capabilities
    assert (caps.name, caps.uses_images, caps.enforces_cpu, caps.enforces_ram) == (
        "podman",
        True,
        True,
        True,
    )
    assert caps.isolates_network


def test_container_is_named_labelled_and_limited(podman_harness: Harness) -> None:
    spec = podman_harness.spec("sleep", "30", index=2, cpu_cores=0.5, ram_gb=0.0625)
    ref = podman_harness.start(spec)
    info = _inspect(ref)
    assert info is not None
    assert info["Name"] == f"toolferry-{podman_harness.task_id}-2"
    assert info["Config"]["Labels"] == {
        "toolferry.task": podman_harness.task_id,
        "toolferry.executor": "2",
    }
    host = info["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == host["MemorySwap"] == GIB // 16
    assert host["NetworkMode"] == "none"
    assert host["AutoRemove"] is False
    assert {(u["Name"], u["Soft"], u["Hard"]) for u in host["Ulimits"]} == {
        ("RLIMIT_NOFILE", 1024, 1024),
        ("RLIMIT_NPROC", 1024, 1024),
    }
    mounts = {(m["Destination"], m["RW"]) for m in info["Mounts"]}
    assert mounts == {("/data", True), ("/inputs", False)}
    podman_harness.runtime.kill(ref)


def test_memory_limit_is_seen_inside_the_container(podman_harness: Harness) -> None:
    spec = podman_harness.spec(
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ram_gb=0.0625,
    )
    assert podman_harness.run(spec) == 0
    assert int(podman_harness.stdout()) == GIB // 16


def test_oom_kill_is_reported_in_stderr(podman_harness: Harness) -> None:
    # The shell keeps the whole substitution in memory: 200 MB against a 32 MiB limit.
    hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"
    code = podman_harness.run(podman_harness.spec("sh", "-c", hog, ram_gb=0.03125))
    assert code == 137
    # conmon does not report OOM kills under this host's cgroup v1: the runtime infers it.
    assert podman_harness.stderr().endswith(
        "toolferry: the executor was killed (SIGKILL), most likely for exceeding its memory "
        "limit of 0.03125 GB\n"
    )


def test_a_kill_by_the_runtime_is_not_blamed_on_memory(podman_harness: Harness) -> None:
    spec = podman_harness.spec("sleep", "300", ram_gb=0.0625)
    ref = podman_harness.start(spec)
    podman_harness.runtime.kill(ref)
    assert podman_harness.runtime.wait(ref, spec) == 137
    assert podman_harness.stderr() == ""


def test_image_entrypoint_is_replaced_by_the_command(podman_harness: Harness) -> None:
    assert podman_harness.run(podman_harness.spec("echo", "argv", "-kept", "[x]")) == 0
    assert podman_harness.stdout() == "argv -kept [x]\n"


def test_stale_container_with_the_same_name_is_replaced(podman_harness: Harness) -> None:
    name = f"toolferry-{podman_harness.task_id}-0"
    created = services.podman("create", "--name", name, podman_harness.image, "true")
    assert created.returncode == 0, created.stderr
    stale = created.stdout.decode().strip()
    try:
        assert podman_harness.run(podman_harness.spec("echo", "fresh")) == 0
        assert podman_harness.stdout() == "fresh\n"
        assert _inspect(stale) is None
    finally:
        services.podman("rm", "--force", "--ignore", stale)


def test_running_container_with_the_same_name_is_not_touched(podman_harness: Harness) -> None:
    first = podman_harness.start(podman_harness.spec("sleep", "30"))
    with pytest.raises(RuntimeFailure, match="already running"):
        podman_harness.runtime.start(podman_harness.spec("true"))
    assert podman_harness.runtime.is_alive(first) is True


def test_find_returns_the_started_container_and_nothing_else(podman_harness: Harness) -> None:
    runtime = podman_harness.runtime
    spec = podman_harness.spec("sleep", "30")
    assert runtime.find(spec) is None
    ref = podman_harness.start(spec)
    assert podman_harness.runtimes.new().find(spec) == ref


def test_find_removes_a_container_that_was_only_created(podman_harness: Harness) -> None:
    name = f"toolferry-{podman_harness.task_id}-0"
    created = services.podman("create", "--name", name, podman_harness.image, "true")
    assert created.returncode == 0, created.stderr
    assert podman_harness.runtime.find(podman_harness.spec("true")) is None
    assert _inspect(name) is None


def test_find_keeps_a_container_whose_program_could_not_run(podman_harness: Harness) -> None:
    spec = podman_harness.spec("no-such-program")
    ref = podman_harness.start(spec)
    successor = podman_harness.runtimes.new()
    assert successor.find(spec) == ref
    assert successor.is_alive(ref) is False
    assert successor.wait(ref, spec) == 127


def test_missing_image_that_cannot_be_pulled_is_a_runtime_failure(
    podman_harness: Harness,
) -> None:
    # A registry on a closed port fails at once; the message carries podman's reason.
    image = "127.0.0.1:1/toolferry-test/absent:1"
    with pytest.raises(RuntimeFailure) as failure:
        podman_harness.runtime.start(podman_harness.spec("true", image=image))
    message = str(failure.value)
    assert message.startswith(f"image '{image}' is not available locally and could not be pulled: ")
    assert "connection refused" in message


def test_wait_on_a_removed_container_is_a_runtime_failure(podman_harness: Harness) -> None:
    spec = podman_harness.spec("true")
    ref = podman_harness.start(spec)
    podman_harness.runtime.cleanup(ref)
    with pytest.raises(RuntimeFailure, match="no longer exists"):
        podman_harness.runtime.wait(ref, spec)


def test_executor_survives_its_runtime_process(podman_harness: Harness, tmp_path: Path) -> None:
    """A hub process that exits leaves the container running, as with docker."""
    stdin = tmp_path / "stdin.txt"
    stdin.write_text("fed after the hub left\n")
    spec = podman_harness.spec("sh", "-c", "sleep 1; cat", stdin=stdin)
    script = (
        "import sys, pickle; from toolferry.runtimes.podman import PodmanRuntime; "
        "spec = pickle.loads(sys.stdin.buffer.read()); "
        f"print(PodmanRuntime('podman', {services.PODMAN_GLOBAL_ARGS!r}, "
        f"{services.PODMAN_ULIMITS!r}).start(spec))"
    )
    hub = subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps(spec),
        capture_output=True,
        check=True,
        timeout=60,
    )
    ref = hub.stdout.decode().strip()
    podman_harness.runtimes.started.append((podman_harness.runtime, ref))
    assert podman_harness.runtime.wait(ref, spec) == 0
    assert podman_harness.stdout() == "fed after the hub left\n"


def test_missing_podman_says_how_to_install_it() -> None:
    reason = PodmanRuntime("/nonexistent/podman").unavailable_reason()
    assert reason is not None
    assert "podman is not installed (no /nonexistent/podman)" in reason
    assert "apt-get install podman runc" in reason


def test_trial_failure_names_the_command_and_podmans_reason(podman: str) -> None:
    runtime = PodmanRuntime(podman, ("--runtime", "/nonexistent/runc"), services.PODMAN_ULIMITS)
    reason = runtime.unavailable_reason()
    assert reason is not None
    assert "/nonexistent/runc" in reason
    assert "set podman_global_args and podman_ulimits" in reason


def test_sweep_removes_only_containers_of_tasks_not_kept(podman_harness: Harness) -> None:
    runtime = podman_harness.runtime
    keep_spec = podman_harness.spec("true")
    gone_spec = podman_harness.spec("true", task_id=keep_spec.task_id + "x")
    kept = podman_harness.start(keep_spec)
    gone = podman_harness.start(gone_spec)
    runtime.wait(kept, keep_spec)
    runtime.wait(gone, gone_spec)
    removed = runtime.sweep(lambda task_id: task_id != gone_spec.task_id)
    assert removed >= 1
    assert runtime.is_alive(gone) is None
    assert runtime.is_alive(kept) is False
