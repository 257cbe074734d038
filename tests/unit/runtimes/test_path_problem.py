"""``path_problem``: container paths a runtime cannot provide, refused at submission."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolferry.runtimes.base import ExecSpec, Mount, RuntimeFailure
from toolferry.runtimes.docker import DockerRuntime
from toolferry.runtimes.none import HostRoot, NoneRuntime, bwrap_args

ROOT = HostRoot(
    dirs=("/usr",),
    symlinks=(("/bin", "usr/bin"),),
    extras=("/etc/passwd", "/etc/ssl/certs"),
)


def none_runtime() -> NoneRuntime:
    return NoneRuntime("bwrap", host_root=ROOT)


@pytest.mark.parametrize(
    "path",
    [
        "/data",
        "/data/out.txt",
        "/tmp/x",
        "/opt/out",
        "/etc/app.conf",
        "/usrdata",
        "/usr/bin",
        "/etc/passwd",
    ],
)
def test_none_accepts_paths_it_can_create_or_mount_over(path: str) -> None:
    assert none_runtime().path_problem([path]) is None


def test_none_names_the_path_and_the_shared_directory() -> None:
    problem = none_runtime().path_problem(["/data", "/usr/local/out", "/usr/x"])
    assert problem is not None
    assert problem.startswith("/usr/local/out cannot be used with the none runtime: ")
    assert "lies under /usr, which the none runtime shares read-only from the host" in problem


def test_none_follows_merged_usr_symlinks() -> None:
    problem = none_runtime().path_problem(["/bin/new-tool"])
    assert problem is not None
    assert "/usr/bin/new-tool (where /bin/new-tool leads) does not exist" in problem


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/ssl/certs/extra.pem", "lies under /etc/ssl/certs"),
        ("/", "root"),
        ("//", "root"),
        ("/proc", "/proc is the sandbox's own"),
        ("/proc/self/x", "/proc is the sandbox's own"),
        ("relative", "not an absolute path"),
    ],
)
def test_none_refuses(path: str, reason: str) -> None:
    problem = none_runtime().path_problem([path])
    assert problem is not None
    assert reason in problem


def test_none_refuses_at_submission_what_start_would_refuse() -> None:
    """One rule: the message at submission is the one start() raises, after its subject."""
    target = "/usr/local/out"
    problem = none_runtime().path_problem([target])
    spec = ExecSpec(
        task_id="t",
        index=0,
        image="ignored",
        command=("true",),
        mounts=(Mount(host=Path("/h"), container=target),),
        stdout=Path("/o"),
        stderr=Path("/e"),
        scratch=Path("/s"),
    )
    with pytest.raises(RuntimeFailure) as failure:
        bwrap_args(spec, host_root=ROOT, status_fd=3, exists=lambda _: False)
    assert str(failure.value) == f"mount target {problem}"


def test_none_checks_the_real_host_when_not_given_a_root() -> None:
    runtime = NoneRuntime("bwrap")
    assert runtime.path_problem(["/usr/bin", "/data", "/opt/x"]) is None
    assert runtime.path_problem(["/usr/toolferry-no-such-dir/out"]) is not None


def test_none_with_no_paths_has_no_problem() -> None:
    assert none_runtime().path_problem([]) is None


@pytest.mark.parametrize("path", ["/", "//", "/.", "/./"])
def test_docker_refuses_the_root(path: str) -> None:
    problem = DockerRuntime("unix:///nonexistent/docker.sock").path_problem(["/data", path])
    assert problem == f"{path} cannot be used with the docker runtime: docker cannot mount over /"


@pytest.mark.parametrize("path", ["/data", "/usr/local/out", "/proc2", "/etc/passwd"])
def test_docker_accepts_other_paths(path: str) -> None:
    assert DockerRuntime("unix:///nonexistent/docker.sock").path_problem([path]) is None
