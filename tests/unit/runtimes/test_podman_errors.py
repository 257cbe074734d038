"""How podman's own failures are told apart from an executor that could not run (fake CLI)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from toolferry.runtimes.base import ExecSpec, Mount, RuntimeFailure
from toolferry.runtimes.podman import PodmanRuntime

RLIMIT = (
    "Error: runc: runc create failed: unable to start container process: error during container "
    "init: error setting rlimits for ready process: error setting rlimit type 7: operation not "
    "permitted: OCI permission denied"
)
NOT_FOUND = (
    'Error: runc: runc create failed: unable to start container process: exec: "nope": '
    "executable file not found in $PATH: OCI runtime attempted to invoke a command that was "
    "not found"
)
# Answers by subcommand: (exit code, stdout, stderr); `run` answers with RUN_* from the env.
FAKE = """#!{python}
import json, os, sys
args = [a for a in sys.argv[1:] if not a.startswith("--runtime") and a != "runc"]
command = args[0]
if command == "run":
    sys.stderr.write(os.environ["RUN_STDERR"] + "\\n")
    sys.exit(int(os.environ["RUN_CODE"]))
if command == "container":
    state = {{"Id": "c0ffee" * 10, "State": {{"Status": "created", "Running": False}}}}
    print(json.dumps([state]))
    sys.exit(0)
if command == "version":
    print("4.3.1")
sys.exit(0)
"""


@pytest.fixture
def fake_podman(tmp_path: Path) -> Path:
    path = tmp_path / "podman"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    return path


def runs(monkeypatch: pytest.MonkeyPatch, code: int, stderr: str) -> None:
    monkeypatch.setenv("RUN_CODE", str(code))
    monkeypatch.setenv("RUN_STDERR", stderr)


def spec(tmp_path: Path) -> ExecSpec:
    return ExecSpec(
        task_id="t1",
        index=0,
        image="img:1",
        command=("nope",),
        stdout=tmp_path / "logs" / "out",
        stderr=tmp_path / "logs" / "err",
        scratch=tmp_path / "scratch",
    )


def test_trial_that_fails_on_rlimits_is_the_reason(
    fake_podman: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs(monkeypatch, 126, RLIMIT)
    reason = PodmanRuntime(str(fake_podman), (), ()).unavailable_reason()
    assert reason is not None
    assert "error setting rlimit type 7: operation not permitted" in reason
    assert "(exit 126); set podman_global_args and podman_ulimits" in reason


def test_trial_reaching_the_absent_program_means_available(
    fake_podman: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs(monkeypatch, 127, NOT_FOUND.replace('"nope"', '"/toolferry-trial"'))
    assert PodmanRuntime(str(fake_podman), (), ()).unavailable_reason() is None


def test_a_126_from_the_host_is_a_runtime_failure_not_an_exit_code(
    fake_podman: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs(monkeypatch, 126, RLIMIT)
    with pytest.raises(RuntimeFailure, match="executor 0 of task t1 failed: runc: runc create"):
        PodmanRuntime(str(fake_podman), (), ()).start(spec(tmp_path))


def test_a_program_that_cannot_run_is_the_executors_127(
    fake_podman: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runs(monkeypatch, 127, NOT_FOUND)
    executor = spec(tmp_path)
    ref = PodmanRuntime(str(fake_podman), (), ()).start(executor)
    assert ref == "c0ffee" * 10
    record = json.loads((tmp_path / "scratch" / "podman-exec-failure-0.json").read_text())
    assert record["exit_code"] == 127
    successor = PodmanRuntime(str(fake_podman), (), ())  # as after a hub restart
    assert successor.find(executor) == ref
    assert successor.wait(ref, executor) == 127
    assert executor.stdout.read_bytes() == b""
    assert executor.stderr.read_text() == (
        f"toolferry: the executor could not be started: {NOT_FOUND.removeprefix('Error: ')}\n"
    )


def test_a_created_container_without_a_record_was_never_started(
    fake_podman: Path, tmp_path: Path
) -> None:
    runtime = PodmanRuntime(str(fake_podman), (), ())
    with pytest.raises(RuntimeFailure, match="was created but never started"):
        runtime.wait("c0ffee" * 10, spec(tmp_path))


def test_missing_stdin_and_mount_source_fail_before_podman_runs(tmp_path: Path) -> None:
    runtime = PodmanRuntime("/nonexistent/podman")
    with pytest.raises(RuntimeFailure, match="cannot read the executor's stdin file"):
        runtime.start(replace(spec(tmp_path), stdin=tmp_path / "absent"))
    absent = Mount(host=tmp_path / "absent", container="/data")
    with pytest.raises(RuntimeFailure, match=f"mount source {tmp_path}/absent does not exist"):
        runtime.start(replace(spec(tmp_path), mounts=(absent,)))


def test_a_passed_trial_is_remembered_for_the_same_podman_and_options(
    fake_podman: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs(monkeypatch, 127, NOT_FOUND.replace('"nope"', '"/toolferry-trial"'))
    assert PodmanRuntime(str(fake_podman), (), ()).unavailable_reason() is None
    runs(monkeypatch, 126, RLIMIT)  # would fail now: the remembered pass answers instead
    assert PodmanRuntime(str(fake_podman), (), ()).unavailable_reason() is None
    other = PodmanRuntime(str(fake_podman), (), ("nofile=64:64",))  # other options: a trial
    assert "error setting rlimit type 7" in (other.unavailable_reason() or "")
