"""The bwrap command line of the none runtime, built without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolferry.runtimes.base import ExecSpec, Mount, RuntimeFailure
from toolferry.runtimes.none import DEFAULT_ENV, HostRoot, bwrap_args, scan_host_root

MERGED_USR = HostRoot(
    dirs=("/usr", "/etc", "/opt"),
    symlinks=(("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/sbin", "usr/sbin")),
)
EXISTING = {"/usr/share/data", "/usr/bin/tool", "/opt"}


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
    assert pairs(argv, "--ro-bind", 2)[:3] == [("/usr", "/usr"), ("/etc", "/etc"), ("/opt", "/opt")]
    assert pairs(argv, "--symlink", 2) == [
        ("usr/bin", "/bin"),
        ("usr/lib", "/lib"),
        ("usr/sbin", "/sbin"),
    ]
    assert pairs(argv, "--proc", 1) == [("/proc",)]
    assert pairs(argv, "--dev", 1) == [("/dev",)]
    assert pairs(argv, "--tmpfs", 1) == [("/",), ("/tmp",)]


def test_task_mounts_come_after_the_system_in_their_order() -> None:
    argv = args(spec())
    binds = [(i, a) for i, a in enumerate(argv) if a in {"--bind", "--ro-bind"}]
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


def test_existing_workdir_in_a_system_dir_is_used_as_is() -> None:
    argv = args(spec(workdir="/opt"))
    assert "--dir" not in argv
    assert pairs(argv, "--chdir", 1) == [("/opt",)]


@pytest.mark.parametrize("target", ["/usr/share/new", "/bin/new-tool", "/etc/x/y"])
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


@pytest.mark.parametrize("target", ["relative/path", "/"])
def test_unusable_targets_are_refused(target: str) -> None:
    with pytest.raises(RuntimeFailure):
        args(spec(mounts=(Mount(host=Path("/h"), container=target),)))


def test_paths_that_only_share_a_prefix_with_a_system_dir_are_free() -> None:
    s = spec(mounts=(Mount(host=Path("/h"), container="/usrdata/x"),))
    assert pairs(args(s), "--bind", 2)[-1] == ("/h", "/usrdata/x")


def test_scan_finds_dirs_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "opt").write_text("a file, not a directory")
    root = scan_host_root(str(tmp_path))
    assert root == HostRoot(dirs=("/usr", "/etc"), symlinks=(("/bin", "usr/bin"),))
    assert root.resolve("/bin/sh") == "/usr/bin/sh"
    assert root.system_dir_of("/usr/bin/sh") == "/usr"
