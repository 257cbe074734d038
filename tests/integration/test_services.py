"""The real services behind the integration fixtures answer and do what the tests rely on."""

from __future__ import annotations

import subprocess
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
