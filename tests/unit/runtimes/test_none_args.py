"""The bwrap command line of the none runtime, built without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolferry.runtimes.base import ExecSpec, Mount, RuntimeFailure
from toolferry.runtimes.none import DEFAULT_ENV, HostRoot, bwrap_args

MERGED_USR = HostRoot(
    dirs=("/usr",),
    symlinks=(
        ("/bin", "usr/bin"),
        ("/lib", "usr/lib"),
        ("/sbin", "usr/sbin"),
        ("/etc/localtime", "/usr/share/zoneinfo/Etc/UTC"),
    ),
    extras=("/etc/passwd", "/etc/ssl/certs", "/sys/devices/system/cpu"),
)
EXISTING = {
    "/usr/share/data",
    "/usr/bin/tool",
    "/usr/local",
    "/usr/share/zoneinfo/Etc/UTC",
    "/etc/passwd",
    "/etc/ssl/certs",
}


def spec(**changes: object) -> ExecSpec:
    base: dict[str, object] = {
        "task_id": "t1",
        "index": 0,
        "image": "ignored",
        "command": ("sh", "-c", "echo hi"),
        "mounts": (
            Mount(host=Path("/work/t1/inputs"), container="/inputs", read_only=True),
            Mount(host=Path("/work/t1/data"), container="/data"),
        ),
        "stdout": Path("/work/t1/out"),
        "stderr": Path("/work/t1/err"),
        "scratch": Path("/work/t1/scratch"),
    }
    return ExecSpec(**{**base, **changes})  # type: ignore[arg-type]


def args(s: ExecSpec, root: HostRoot = MERGED_USR) -> list[str]:
    return bwrap_args(s, host_root=root, status_fd=7, exists=EXISTING.__contains__)


def pairs(argv: list[str], option: str, arity: int) -> list[tuple[str, ...]]:
    """The operands of every occurrence of ``option``."""
    return [tuple(argv[i + 1 : i + 1 + arity]) for i, a in enumerate(argv) if a == option]


def test_root_is_a_tmpfs_with_read_only_system_dirs_and_symlinks() -> None:
    argv = args(spec())
    assert argv[:3] == ["bwrap", "--tmpfs", "/"]
    assert pairs(argv, "--ro-bind", 2)[:2] == [("/usr", "/usr"), ("/work/t1/inputs", "/inputs")]
    assert pairs(argv, "--symlink", 2) == [
        ("usr/bin", "/bin"),
        ("usr/lib", "/lib"),
        ("usr/sbin", "/sbin"),
        ("/usr/share/zoneinfo/Etc/UTC", "/etc/localtime"),
    ]
    assert pairs(argv, "--proc", 1) == [("/proc",)]
    assert pairs(argv, "--dev", 1) == [("/dev",)]
    assert pairs(argv, "--tmpfs", 1) == [("/",), ("/tmp",)]


def test_etc_and_sys_entries_are_bound_one_by_one_if_still_there() -> None:
    argv = args(spec())
    assert pairs(argv, "--ro-bind-try", 2) == [
        ("/etc/passwd", "/etc/passwd"),
        ("/etc/ssl/certs", "/etc/ssl/certs"),
        ("/sys/devices/system/cpu", "/sys/devices/system/cpu"),
    ]
    binds = pairs(argv, "--ro-bind", 2) + pairs(argv, "--bind", 2)
    assert not {"/etc", "/opt", "/sys"} & {target for _, target in binds}


def test_task_mounts_come_after_the_system_in_their_order() -> None:
    argv = args(spec())
    binds = [(i, a) for i, a in enumerate(argv) if a in {"--bind", "--ro-bind", "--ro-bind-try"}]
    task = binds[-2:]
    assert [argv[i : i + 3] for i, _ in task] == [
        ["--ro-bind", "/work/t1/inputs", "/inputs"],
        ["--bind", "/work/t1/data", "/data"],
    ]
    assert task[0][0] > argv.index("/tmp")


def test_command_follows_a_double_dash_unchanged() -> None:
    argv = args(spec(command=("--weird", "a b", "")))
    assert argv[-4:] == ["--", "--weird", "a b", ""]


def test_namespaces_session_caps_and_status_fd() -> None:
    argv = args(spec())
    for flag in (
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--new-session",
    ):
        assert flag in argv
    assert pairs(argv, "--cap-drop", 1) == [("ALL",)]
    assert pairs(argv, "--json-status-fd", 1) == [("7",)]
    assert "--die-with-parent" not in argv  # executors outlive the hub


def test_network_keeps_the_host_network() -> None:
    assert "--unshare-net" not in args(spec(network=True))


def test_environment_is_cleared_then_defaults_then_task_env() -> None:
    argv = args(spec(env={"PATH": "/opt/bin", "A": "1 2"}))
    assert "--clearenv" in argv
    env = {key: value for key, value in pairs(argv, "--setenv", 2)}
    assert env == {"PATH": "/opt/bin", "HOME": DEFAULT_ENV["HOME"], "A": "1 2"}


def test_default_workdir_is_root() -> None:
    argv = args(spec())
    assert pairs(argv, "--chdir", 1) == [("/",)]
    assert "--dir" not in argv


def test_workdir_is_created_after_the_mounts() -> None:
    argv = args(spec(workdir="/data/sub/"))
    assert pairs(argv, "--dir", 1) == [("/data/sub",)]
    assert pairs(argv, "--chdir", 1) == [("/data/sub",)]
    assert argv.index("--dir") > argv.index("/data")


@pytest.mark.parametrize("workdir", ["/usr/local", "/etc/ssl/certs"])
def test_existing_workdir_in_a_shared_path_is_used_as_is(workdir: str) -> None:
    argv = args(spec(workdir=workdir))
    assert "--dir" not in argv
    assert pairs(argv, "--chdir", 1) == [(workdir,)]


@pytest.mark.parametrize("workdir", ["/opt/work", "/etc/myapp"])
def test_workdir_next_to_shared_paths_is_created(workdir: str) -> None:
    argv = args(spec(workdir=workdir))
    assert pairs(argv, "--dir", 1) == [(workdir,)]


@pytest.mark.parametrize(
    "target",
    [
        "/usr/share/new",
        "/bin/new-tool",
        "/etc/ssl/certs/extra",
        "/etc/passwd/x",
        "/sys/devices/system/cpu/x",
    ],
)
def test_new_path_below_a_read_only_system_dir_is_refused(target: str) -> None:
    s = spec(mounts=(Mount(host=Path("/h"), container=target),))
    with pytest.raises(RuntimeFailure, match="cannot be used with the none runtime") as failure:
        args(s)
    assert target in str(failure.value)


def test_existing_path_below_a_system_dir_can_be_mounted_over() -> None:
    s = spec(mounts=(Mount(host=Path("/h"), container="/bin/tool", read_only=True),))
    assert pairs(args(s), "--ro-bind", 2)[-1] == ("/h", "/bin/tool")


def test_missing_workdir_in_a_system_dir_is_refused() -> None:
    with pytest.raises(RuntimeFailure, match="workdir /usr/local/work"):
        args(spec(workdir="/usr/local/work"))


@pytest.mark.parametrize("target", ["relative/path", "/", "//", "/proc/x", "/etc/mtab/../../proc"])
def test_unusable_targets_are_refused(target: str) -> None:
    with pytest.raises(RuntimeFailure):
        args(spec(mounts=(Mount(host=Path("/h"), container=target),)))


def test_targets_are_normalised_before_they_are_checked() -> None:
    with pytest.raises(RuntimeFailure, match="lies under /usr"):
        args(spec(mounts=(Mount(host=Path("/h"), container="//usr/new/"),)))
    s = spec(mounts=(Mount(host=Path("/h"), container="//data/./x/"),))
    assert pairs(args(s), "--bind", 2)[-1] == ("/h", "/data/x")


@pytest.mark.parametrize("target", ["/usrdata/x", "/etc/myapp/conf", "/opt/tool", "/sys/x"])
def test_paths_outside_the_shared_ones_are_free(target: str) -> None:
    s = spec(mounts=(Mount(host=Path("/h"), container=target),))
    assert pairs(args(s), "--bind", 2)[-1] == ("/h", target)


def test_mounting_over_a_shared_etc_file_is_allowed() -> None:
    s = spec(mounts=(Mount(host=Path("/h"), container="/etc/passwd", read_only=True),))
    assert pairs(args(s), "--ro-bind", 2)[-1] == ("/h", "/etc/passwd")


def test_an_etc_snapshot_is_one_mount() -> None:
    from dataclasses import replace as with_

    root = with_(
        HostRoot(
            dirs=("/usr",),
            symlinks=(("/etc/localtime", "/usr/share/zoneinfo/UTC"),),
            extras=("/etc/passwd", "/etc/ssl/certs", "/sys/devices/system/cpu"),
        ),
        etc_snapshot="/tmp/snap",
    )
    spec = ExecSpec(
        task_id="t",
        index=0,
        image="none",
        command=("true",),
        stdout=Path("/w/o"),
        stderr=Path("/w/e"),
        scratch=Path("/w"),
    )
    args = bwrap_args(spec, host_root=root, status_fd=3, exists=lambda p: True)
    joined = " ".join(args)
    assert "--ro-bind /tmp/snap /etc" in joined
    assert "/etc/passwd" not in joined and "/etc/localtime" not in joined
    assert "--ro-bind-try /sys/devices/system/cpu /sys/devices/system/cpu" in joined
    # A task path below /etc needs a writable /etc skeleton: entry-by-entry binds then.
    below = with_(spec, mounts=(Mount(host=Path("/w/c"), container="/etc/tool"),))
    joined = " ".join(bwrap_args(below, host_root=root, status_fd=3, exists=lambda p: True))
    assert "/tmp/snap" not in joined and "--ro-bind-try /etc/passwd /etc/passwd" in joined


def test_the_snapshot_holds_only_allowed_entries(tmp_path: Path) -> None:
    import os

    from toolferry.runtimes.none import EtcSnapshots, scan_host_root

    root = scan_host_root()
    snap = EtcSnapshots().current(root).etc_snapshot
    assert snap is not None
    names = set(os.listdir(snap))
    assert "passwd" in names and "shadow" not in names and "sudoers" not in names
    assert EtcSnapshots().current(root).etc_snapshot == snap  # one copy per state of /etc
