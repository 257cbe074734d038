"""How the none runtime reads an ended executor's exit code from bwrap's status and stderr.

Each case re-attaches to a bwrap that is gone (a ref whose start time matches no process), so
only the files bwrap left behind decide."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from toolferry.runtimes.base import ExecSpec, RuntimeFailure
from toolferry.runtimes.none import NoneRuntime

STARTED = {"child-pid": 4242, "pid-namespace": 1}


def ended(tmp_path: Path, status: list[dict[str, int]], stderr: str, *command: str) -> int:
    status_file = tmp_path / "status.json"
    status_file.write_text("".join(json.dumps(item) + "\n" for item in status))
    (tmp_path / "err").write_text(stderr)
    spec = ExecSpec(
        task_id="t1",
        index=0,
        image="ignored",
        command=command or ("no-such-program", "arg"),
        stdout=tmp_path / "out",
        stderr=tmp_path / "err",
        scratch=tmp_path,
    )
    ref = f"pid:{os.getpid()}:1:{status_file}"  # start time 1: not this process
    return NoneRuntime("bwrap").wait(ref, spec)


def test_missing_program_is_127(tmp_path: Path) -> None:
    message = "bwrap: execvp no-such-program: No such file or directory\n"
    assert ended(tmp_path, [STARTED], message) == 127
    assert (tmp_path / "err").read_text() == message  # bwrap's line, naming the program, stays


@pytest.mark.parametrize("reason", ["Permission denied", "Not a directory", "Exec format error"])
def test_program_that_cannot_be_executed_is_126(tmp_path: Path, reason: str) -> None:
    message = f"bwrap: execvp /inputs/tool: {reason}\n"
    assert ended(tmp_path, [STARTED], message, "/inputs/tool") == 126


def test_a_recorded_exit_code_wins_over_what_stderr_says(tmp_path: Path) -> None:
    """bwrap records an exit code only for a program it exec'd, which may print anything."""
    message = "bwrap: execvp no-such-program: No such file or directory\n"
    assert ended(tmp_path, [STARTED, {"exit-code": 1}], message) == 1


def test_other_bwrap_errors_mean_the_sandbox_could_not_be_set_up(tmp_path: Path) -> None:
    message = "bwrap: Can't mkdir /usr/x: Read-only file system\n"
    with pytest.raises(RuntimeFailure, match="could not set up the sandbox of executor 0 of task"):
        ended(tmp_path, [STARTED], message)


def test_execvp_of_another_program_is_not_this_executors(tmp_path: Path) -> None:
    message = "bwrap: execvp other: No such file or directory\n"
    with pytest.raises(RuntimeFailure, match="execvp other"):
        ended(tmp_path, [STARTED], message)


def test_output_of_a_program_is_never_taken_for_bwraps(tmp_path: Path) -> None:
    """No exit code and output that is not only bwrap's: bwrap was killed, not a failed exec."""
    stderr = "working\nbwrap: execvp no-such-program: No such file or directory\n"
    assert ended(tmp_path, [STARTED], stderr) == 137
    assert (tmp_path / "err").read_text().endswith("before it could record the exit code\n")


def test_killed_before_the_program_started_is_137(tmp_path: Path) -> None:
    assert ended(tmp_path, [STARTED], "") == 137


def test_no_status_at_all_is_a_runtime_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="without recording an exit code"):
        ended(tmp_path, [], "bwrap: execvp no-such-program: No such file or directory\n")
