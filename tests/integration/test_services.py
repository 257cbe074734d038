"""The real services behind the integration fixtures answer and do what the tests rely on."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_busybox_image_runs_a_shell_without_network(docker_engine: str, busybox_image: str) -> None:
    proc = _run(
        "docker",
        "--host",
        docker_engine,
        "run",
        "--rm",
        "--network",
        "none",
        busybox_image,
        "sh",
        "-c",
        "echo hello from $(uname -s); ls /sys/class/net",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["hello from Linux", "lo"]


def test_bwrap_runs_a_command_in_a_sandbox(bwrap: str) -> None:
    proc = _run(bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "true")
    assert proc.returncode == 0, proc.stderr


def test_pytes04_python_imports_the_old_client(pytes04_python: Path) -> None:
    proc = _run(pytes04_python, "-c", "import tes; print(tes.HTTPClient('http://127.0.0.1:1').url)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "http://127.0.0.1:1"


def _poll(probe: Callable[[], str | None], timeout: float) -> str:
    """Calls ``probe`` every 0.1 s until it returns a string (the result) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        assert time.monotonic() < deadline, f"nothing after {timeout}s"
        time.sleep(0.1)
    return found


def test_slurm_runs_a_batch_job_and_writes_its_output(slurm: str, tmp_path: Path) -> None:
    output = tmp_path / "job.out"
    submitted = _run(
        "sbatch", "--parsable", "--partition", slurm, "--output", output, "--wrap", "echo hi"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    assert job_id.isdigit(), submitted.stdout

    def ended() -> str | None:
        # -t all: without it squeue leaves out jobs that have ended.
        proc = _run("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T")
        state = proc.stdout.strip()
        return (
            state if state not in {"", "PENDING", "CONFIGURING", "RUNNING", "COMPLETING"} else None
        )

    try:
        assert _poll(ended, timeout=60) == "COMPLETED"
    finally:
        _run("scancel", job_id)
    assert output.read_text() == "hi\n"


def test_swarm_runs_a_service_to_completion(swarm: str, busybox_image: str) -> None:
    name = f"toolferry-svc-test-{uuid.uuid4().hex[:12]}"
    docker = ("docker", "--host", swarm)
    created = _run(
        *docker,
        "service",
        "create",
        "--detach",
        "--quiet",
        "--no-resolve-image",  # the image is local: do not ask a registry for its digest
        "--restart-condition",
        "none",
        "--name",
        name,
        busybox_image,
        "true",
    )
    try:
        assert created.returncode == 0, created.stderr

        def ended() -> str | None:
            proc = _run(
                *docker,
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.CurrentState}}|{{.Error}}",
                name,
            )
            state = proc.stdout.strip()
            terminal = ("Complete", "Failed", "Rejected", "Shutdown", "Orphaned")
            return state if state.startswith(terminal) else None

        assert _poll(ended, timeout=60).startswith("Complete")
    finally:
        _run(*docker, "service", "rm", name)
    assert _run(*docker, "service", "inspect", name).returncode != 0
