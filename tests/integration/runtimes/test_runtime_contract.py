"""The behaviour every runtime shares, run once per runtime kind (see conftest ``runtime_kind``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.runtimes.harness import Harness

from toolferry.runtimes.base import Mount, RuntimeFailure

pytestmark = pytest.mark.integration


def _refuses_stdin(harness: Harness, stdin: Path) -> bool:
    """True, having checked it, if the runtime cannot feed stdin (swarm): it then refuses an
    executor with stdin at start (the site refuses such a task at submission already)."""
    if harness.runtime.capabilities.stdin:
        return False
    with pytest.raises(RuntimeFailure, match="stdin"):
        harness.start(harness.spec("cat", stdin=stdin))
    return True


def test_exit_code_is_returned(harness: Harness) -> None:
    assert harness.run(harness.spec("sh", "-c", "exit 3")) == 3
    assert harness.run(harness.spec("true")) == 0


def test_stdout_and_stderr_go_to_separate_files(harness: Harness) -> None:
    code = harness.run(harness.spec("sh", "-c", "echo out1; echo err1 >&2; echo out2; printf tail"))
    assert code == 0
    assert harness.stdout() == "out1\nout2\ntail"
    assert harness.stderr() == "err1\n"


def test_log_directories_are_created(harness: Harness) -> None:
    spec = harness.spec(
        "echo", "deep", stdout=harness.root / "a" / "b" / "out", stderr=harness.root / "c" / "err"
    )
    assert harness.run(spec) == 0
    assert (harness.root / "a" / "b" / "out").read_text() == "deep\n"
    assert (harness.root / "c" / "err").read_bytes() == b""


def test_binary_stdout_is_byte_exact(harness: Harness) -> None:
    payload = os.urandom(300_000) + bytes(range(256))
    (harness.inputs / "blob").write_bytes(payload)
    assert harness.run(harness.spec("cat", "/inputs/blob")) == 0
    assert (harness.root / "logs" / "stdout").read_bytes() == payload


def test_stdin_file_is_piped_byte_exact(harness: Harness) -> None:
    payload = os.urandom(5_000_000)  # larger than any pipe or socket buffer
    stdin = harness.root / "stdin.bin"
    stdin.write_bytes(payload)
    if _refuses_stdin(harness, stdin):
        return
    assert harness.run(harness.spec("cat", stdin=stdin)) == 0
    assert (harness.root / "logs" / "stdout").read_bytes() == payload


def test_stdin_unread_by_the_executor_does_not_hang(harness: Harness) -> None:
    stdin = harness.root / "stdin.bin"
    stdin.write_bytes(os.urandom(2_000_000))
    if _refuses_stdin(harness, stdin):
        return
    assert harness.run(harness.spec("sh", "-c", "exit 4", stdin=stdin)) == 4


def test_without_stdin_the_executor_reads_eof(harness: Harness) -> None:
    assert harness.run(harness.spec("sh", "-c", "cat; echo done")) == 0
    assert harness.stdout() == "done\n"


def test_env_is_set(harness: Harness) -> None:
    spec = harness.spec(
        "sh", "-c", 'echo "$GREETING|$EMPTY|"', env={"GREETING": "a b", "EMPTY": ""}
    )
    assert harness.run(spec) == 0
    assert harness.stdout() == "a b||\n"


def test_workdir_is_the_current_directory(harness: Harness) -> None:
    (harness.data / "sub").mkdir()
    assert harness.run(harness.spec("pwd", workdir="/data/sub")) == 0
    assert harness.stdout() == "/data/sub\n"


def test_read_only_mount_cannot_be_written(harness: Harness) -> None:
    (harness.inputs / "f").write_text("original")
    code = harness.run(harness.spec("sh", "-c", "echo changed > /inputs/f"))
    assert code != 0
    assert "Read-only file system" in harness.stderr()
    assert (harness.inputs / "f").read_text() == "original"


def test_read_write_mount_writes_reach_the_host(harness: Harness) -> None:
    (harness.inputs / "f").write_text("input")
    assert (
        harness.run(harness.spec("sh", "-c", "mkdir /data/out && cat /inputs/f > /data/out/r")) == 0
    )
    assert (harness.data / "out" / "r").read_text() == "input"


def test_mount_target_with_missing_parents_is_created(harness: Harness) -> None:
    extra = harness.root / "extra"
    extra.mkdir()
    (extra / "x").write_text("deep")
    spec = harness.spec("cat", "/deep/nested/dir/x")
    spec = harness.spec(
        "cat",
        "/deep/nested/dir/x",
        mounts=(*spec.mounts, Mount(host=extra, container="/deep/nested/dir")),
    )
    assert harness.run(spec) == 0
    assert harness.stdout() == "deep"


def test_no_network_leaves_only_loopback(harness: Harness) -> None:
    assert harness.run(harness.spec("cat", "/proc/net/dev")) == 0
    assert _interfaces(harness.stdout()) == {"lo"}


def test_network_gives_the_hosts_interfaces(harness: Harness) -> None:
    host = _interfaces(Path("/proc/net/dev").read_text())
    assert harness.run(harness.spec("cat", "/proc/net/dev", network=True)) == 0
    assert _interfaces(harness.stdout()) == host


def test_missing_program_exits_127_naming_it_in_stderr(harness: Harness) -> None:
    assert harness.run(harness.spec("no-such-program", "x")) == 127
    assert "no-such-program" in harness.stderr()
    assert harness.run(harness.spec("/inputs/no-such-program")) == 127
    assert "/inputs/no-such-program" in harness.stderr()


def test_program_that_is_not_executable_exits_126_naming_it_in_stderr(harness: Harness) -> None:
    (harness.inputs / "script").write_text("echo never\n")
    (harness.inputs / "script").chmod(0o644)
    assert harness.run(harness.spec("/inputs/script")) == 126
    assert "/inputs/script" in harness.stderr()
    assert harness.stdout() == ""


def test_missing_program_is_127_after_a_reattach_too(harness: Harness) -> None:
    spec = harness.spec("no-such-program")
    ref = harness.start(spec)
    time.sleep(0.5)
    successor = harness.runtimes.new()
    assert successor.wait(ref, spec) == 127
    assert "no-such-program" in harness.stderr()


def test_program_failing_like_a_missing_one_keeps_its_own_exit_code(harness: Harness) -> None:
    """Only the runtime's own report of a failed exec becomes 127, not a program's output."""
    script = "echo 'bwrap: execvp sh: No such file or directory' >&2; exit 1"
    assert harness.run(harness.spec("sh", "-c", script)) == 1


def test_mounts_next_to_system_directories_are_created(harness: Harness) -> None:
    extra = harness.root / "extra"
    extra.mkdir()
    (extra / "x").write_text("conf")
    spec = harness.spec("true")
    spec = harness.spec(
        "sh",
        "-c",
        "cat /etc/toolferry-test/x /opt/toolferry-test/x",
        mounts=(
            *spec.mounts,
            Mount(host=extra, container="/etc/toolferry-test", read_only=True),
            Mount(host=extra, container="/opt/toolferry-test", read_only=True),
        ),
    )
    assert harness.run(spec) == 0
    assert harness.stdout() == "confconf"


def test_path_problem_accepts_ordinary_paths(harness: Harness) -> None:
    runtime: Any = harness.runtime  # path_problem is not part of the Runtime protocol
    check = runtime.path_problem
    assert check(["/data", "/data/out/result.txt", "/inputs/in.txt", "/tmp/work"]) is None
    problem = check(["/data", "/"])
    assert problem is not None
    assert problem.startswith("/ cannot be used with the ")


def test_kill_stops_a_long_sleep_quickly(harness: Harness) -> None:
    spec = harness.spec("sleep", "300")
    ref = harness.start(spec)
    assert harness.runtime.is_alive(ref) is True
    began = time.monotonic()
    harness.runtime.kill(ref)
    code = harness.runtime.wait(ref, spec)
    assert time.monotonic() - began < 5
    assert code == 137  # 128 + SIGKILL
    assert harness.runtime.is_alive(ref) is False


def test_kill_with_unread_stdin_does_not_hang(harness: Harness) -> None:
    stdin = harness.root / "stdin.bin"
    stdin.write_bytes(os.urandom(4_000_000))
    if _refuses_stdin(harness, stdin):
        return
    spec = harness.spec("sleep", "300", stdin=stdin)
    ref = harness.start(spec)
    began = time.monotonic()
    harness.runtime.kill(ref)
    assert harness.runtime.wait(ref, spec) == 137
    assert time.monotonic() - began < 5


def test_kill_and_cleanup_of_an_ended_executor_are_harmless(harness: Harness) -> None:
    spec = harness.spec("true")
    ref = harness.start(spec)
    assert harness.runtime.wait(ref, spec) == 0
    assert harness.runtime.is_alive(ref) is False
    harness.runtime.kill(ref)
    harness.runtime.cleanup(ref)
    assert harness.runtime.is_alive(ref) is None
    harness.runtime.kill(ref)
    harness.runtime.cleanup(ref)


def test_a_second_runtime_instance_reattaches(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "sleep 1; echo late; echo oops >&2; exit 5")
    ref = harness.start(spec)
    successor = harness.runtimes.new()  # as after a hub restart: knows only the ref
    assert successor.is_alive(ref) is True
    assert successor.wait(ref, spec) == 5
    assert harness.stdout() == "late\n"
    assert harness.stderr() == "oops\n"
    assert successor.is_alive(ref) is False
    successor.cleanup(ref)


def test_reattach_to_an_executor_that_already_ended(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "echo early; exit 6")
    ref = harness.start(spec)
    time.sleep(0.5)
    successor = harness.runtimes.new()
    assert successor.wait(ref, spec) == 6
    assert harness.stdout() == "early\n"


def test_waits_from_several_threads(harness: Harness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    specs = [
        harness.spec(
            "sh",
            "-c",
            f"sleep 0.3; echo {i}; exit {i}",
            index=i,
            stdout=harness.root / f"out{i}",
            stderr=harness.root / f"err{i}",
        )
        for i in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(harness.run, specs))
    assert codes == [0, 1, 2, 3]
    assert [(harness.root / f"out{i}").read_text() for i in range(4)] == [
        "0\n",
        "1\n",
        "2\n",
        "3\n",
    ]


def test_unreadable_stdin_is_a_runtime_failure(harness: Harness) -> None:
    with pytest.raises(RuntimeFailure, match="stdin"):
        harness.start(harness.spec("cat", stdin=harness.root / "missing"))


def test_missing_mount_source_is_a_runtime_failure(harness: Harness) -> None:
    harness.data.rmdir()
    with pytest.raises(RuntimeFailure, match="does not exist"):
        harness.start(harness.spec("true"))


def _interfaces(proc_net_dev: str) -> set[str]:
    return {line.split(":")[0].strip() for line in proc_net_dev.splitlines()[2:] if ":" in line}
