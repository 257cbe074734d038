"""What only the none runtime does: host processes in a bubblewrap sandbox, refs by pid."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.runtimes.harness import Harness

from toolferry.runtimes.base import Mount, RuntimeFailure
from toolferry.runtimes.none import NoneRuntime, scan_host_root

pytestmark = pytest.mark.integration


def test_capabilities() -> None:
    caps = NoneRuntime.capabilities
    assert (caps.name, caps.uses_images, caps.enforces_cpu, caps.enforces_ram) == (
        "none",
        False,
        False,
        False,
    )
    assert caps.isolates_network


def test_image_is_ignored_and_host_programs_run(none_harness: Harness) -> None:
    spec = none_harness.spec("sh", "-c", "test -x /usr/bin/env && echo host", image="no/such:1")
    assert none_harness.run(spec) == 0
    assert none_harness.stdout() == "host\n"


def test_host_environment_does_not_leak(
    none_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLFERRY_TEST_SECRET", "hunter2")
    assert none_harness.run(none_harness.spec("env")) == 0
    env = dict(line.split("=", 1) for line in none_harness.stdout().splitlines())
    assert "TOOLFERRY_TEST_SECRET" not in env
    assert env["HOME"] == "/tmp"
    assert "/usr/bin" in env["PATH"].split(":")


def test_host_files_outside_the_system_dirs_are_invisible(none_harness: Harness) -> None:
    (none_harness.root / "private").write_text("secret")
    code = none_harness.run(none_harness.spec("cat", str(none_harness.root / "private")))
    assert code != 0
    assert "No such file or directory" in none_harness.stderr()


def test_system_dirs_are_read_only_and_hold_no_privilege(none_harness: Harness) -> None:
    script = "grep CapEff /proc/self/status; touch /usr/toolferry-probe"
    assert none_harness.run(none_harness.spec("sh", "-c", script)) != 0
    assert "CapEff:\t0000000000000000" in none_harness.stdout()
    assert "Read-only file system" in none_harness.stderr()
    assert not os.path.exists("/usr/toolferry-probe")


def test_only_the_allowed_host_paths_are_visible(none_harness: Harness) -> None:
    hidden = (
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/ssh",
        "/etc/ssl/private",
        "/etc/machine-id",
        "/etc/environment",
        "/etc/profile.d",
        "/opt",
        "/root",
        "/home",
        "/var",
        "/run",
        "/srv",
        "/sys/class",
        "/sys/fs",
        "/sys/firmware",
    )
    script = "for p in " + " ".join(hidden) + '; do test -e "$p" && echo "$p"; done; ls -A /etc'
    assert none_harness.run(none_harness.spec("sh", "-c", script)) == 0
    seen = none_harness.stdout().split()
    shared = scan_host_root()
    etc = [*shared.extras, *(link for link, _ in shared.symlinks)]
    allowed = {path.split("/")[2] for path in etc if path.startswith("/etc/")}
    assert set(seen) <= allowed, set(seen) - allowed
    assert {"passwd", "group", "hosts", "ld.so.cache", "ssl"} <= set(seen)


def test_common_tools_work(none_harness: Harness) -> None:
    script = """
    set -e
    echo "a b" | awk '{print $2}'
    echo hello | sed s/hello/bye/ | grep bye
    printf '2\n1\n' | sort | tr '\n' ' '; echo
    bash -c 'echo "bash $((1 + 1))"'
    whoami
    date +%Y >/dev/null
    test "$(nproc)" -ge 1
    python3 -c '
import mimetypes, os, ssl
context = ssl.create_default_context()
print("certs", context.cert_store_stats()["x509_ca"] > 0)
print(mimetypes.guess_type("a.json")[0], os.cpu_count())
'
    """
    assert none_harness.run(none_harness.spec("sh", "-c", script)) == 0, none_harness.stderr()
    assert none_harness.stdout() == (
        f"b\nbye\n1 2 \nbash 2\nroot\ncerts True\napplication/json {os.cpu_count()}\n"
    )


def test_the_cpu_topology_is_shared_read_only(none_harness: Harness) -> None:
    script = "cat /sys/devices/system/cpu/online; echo 0 > /sys/devices/system/cpu/online"
    assert none_harness.run(none_harness.spec("sh", "-c", script)) != 0
    assert none_harness.stdout() == Path("/sys/devices/system/cpu/online").read_text()
    assert "Read-only file system" in none_harness.stderr()


def test_no_privilege_can_be_regained(none_harness: Harness) -> None:
    assert none_harness.run(none_harness.spec("cat", "/proc/self/status")) == 0
    status = dict(line.split(":\t", 1) for line in none_harness.stdout().splitlines())
    assert status["NoNewPrivs"] == "1"
    assert status["CapPrm"] == status["CapEff"] == "0000000000000000"


def test_a_sandbox_that_cannot_be_set_up_is_a_runtime_failure(none_harness: Harness) -> None:
    (none_harness.data / "file").write_text("not a directory")
    spec = none_harness.spec("true", workdir="/data/file")
    ref = none_harness.start(spec)
    with pytest.raises(RuntimeFailure, match="could not set up the sandbox of executor 0"):
        none_harness.runtime.wait(ref, spec)


def test_path_problem_refuses_what_start_refuses(none_harness: Harness) -> None:
    runtime = none_harness.runtime
    assert isinstance(runtime, NoneRuntime)
    target = "/usr/toolferry-no-such-dir/out"
    problem = runtime.path_problem(["/data", target])
    assert problem is not None
    assert problem.startswith(f"{target} cannot be used with the none runtime: it lies under /usr")
    spec = none_harness.spec("true")
    spec = none_harness.spec(
        "true", mounts=(*spec.mounts, Mount(host=none_harness.data, container=target))
    )
    with pytest.raises(RuntimeFailure) as failure:
        none_harness.start(spec)
    assert str(failure.value) == f"mount target {problem}"


def test_mount_below_a_missing_system_dir_is_refused(none_harness: Harness) -> None:
    spec = none_harness.spec("true")
    spec = none_harness.spec(
        "true",
        mounts=(*spec.mounts, Mount(host=none_harness.data, container="/usr/no-such-dir/data")),
    )
    with pytest.raises(RuntimeFailure, match="cannot be used with the none runtime"):
        none_harness.start(spec)


def test_status_file_survives_and_cleanup_removes_it(none_harness: Harness) -> None:
    spec = none_harness.spec("true")
    ref = none_harness.start(spec)
    assert none_harness.runtime.wait(ref, spec) == 0
    status = Path(ref.split(":", 3)[3])
    assert status.parent == none_harness.root / "scratch"
    assert '"exit-code": 0' in status.read_text()
    none_harness.runtime.cleanup(ref)
    assert not status.exists()


def test_signal_death_is_128_plus_the_signal(none_harness: Harness) -> None:
    spec = none_harness.spec("sh", "-c", "kill -TERM $$")
    assert none_harness.run(spec) == 128 + signal.SIGTERM
    ref = none_harness.start(spec)
    time.sleep(0.5)
    assert none_harness.runtimes.new().wait(ref, spec) == 128 + signal.SIGTERM


def test_kill_reaches_every_process_of_the_executor(none_harness: Harness) -> None:
    # Durations no other test uses: the check looks at every process of the machine.
    spec = none_harness.spec("sh", "-c", "sleep 3007 & sleep 3011 & echo started; wait")
    ref = none_harness.start(spec)
    _until(lambda: none_harness.stdout() == "started\n")
    none_harness.runtime.kill(ref)
    assert none_harness.runtime.wait(ref, spec) == 137
    assert not [p for p in _process_names() if p in {"sleep 3007", "sleep 3011"}]


def test_a_reused_pid_is_not_mistaken_for_the_executor(none_harness: Harness) -> None:
    foreign = f"pid:{os.getpid()}:1:{none_harness.root / 'scratch' / 'absent.json'}"
    assert none_harness.runtime.is_alive(foreign) is None
    none_harness.runtime.kill(foreign)  # must not signal the test process
    with pytest.raises(RuntimeFailure, match="without recording an exit code"):
        none_harness.runtime.wait(foreign, none_harness.spec("true"))


def test_malformed_ref_is_a_runtime_failure(none_harness: Harness) -> None:
    with pytest.raises(RuntimeFailure, match="not a none-runtime executor ref"):
        none_harness.runtime.is_alive("0123456789ab")


def test_missing_bwrap_says_how_to_install_it() -> None:
    reason = NoneRuntime("/nonexistent/bwrap").unavailable_reason()
    assert reason is not None
    assert "apt-get install bubblewrap" in reason


def _until(check: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _process_names() -> list[str]:
    names: list[str] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    names.append(fh.read().replace(b"\0", b" ").decode(errors="replace").strip())
            except OSError:
                continue
    return names
