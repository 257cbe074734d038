"""The podman command line built for an executor, and the paths podman refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from toolferry.runtimes.base import ExecSpec, Mount
from toolferry.runtimes.podman import DEFAULT_ULIMITS, PodmanRuntime, run_args


def spec(**changes: object) -> ExecSpec:
    base: dict[str, object] = {
        "task_id": "t1",
        "index": 3,
        "image": "-odd/image:1",
        "command": ("[not-json", "-x", "a b"),
        "stdout": Path("/w/out"),
        "stderr": Path("/w/err"),
        "scratch": Path("/w/scratch"),
    }
    base.update(changes)
    return ExecSpec(**base)  # type: ignore[arg-type]


def option_values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == option]


def test_minimal_executor_is_detached_named_labelled_and_without_network() -> None:
    args = run_args(spec(), DEFAULT_ULIMITS)
    assert args[:2] == ["run", "--detach"]
    assert option_values(args, "--name") == ["toolferry-t1-3"]
    assert option_values(args, "--label") == ["toolferry.task=t1", "toolferry.executor=3"]
    assert option_values(args, "--network") == ["none"]
    assert option_values(args, "--pull") == ["never"]
    assert option_values(args, "--ulimit") == ["nofile=1024:1024", "nproc=1024:1024"]
    assert "--interactive" not in args and "--rm" not in args
    assert not {"--cpus", "--memory", "--workdir", "--env", "--mount"} & set(args)


def test_command_replaces_the_entrypoint_and_follows_the_image_verbatim() -> None:
    args = run_args(spec(), ())
    assert json.loads(option_values(args, "--entrypoint")[0]) == ["[not-json"]
    assert args[-4:] == ["--", "-odd/image:1", "-x", "a b"]


def test_limits_network_mounts_env_workdir_and_stdin() -> None:
    args = run_args(
        spec(
            cpu_cores=0.5,
            ram_gb=0.0625,
            network=True,
            workdir="/data/sub",
            env={"A": "x=y", "EMPTY": ""},
            stdin=Path("/w/stdin"),
            mounts=(
                Mount(host=Path("/w/data"), container="/data"),
                Mount(host=Path("/w/in"), container="/inputs", read_only=True),
            ),
        ),
        ("nofile=10:20",),
    )
    assert option_values(args, "--cpus") == ["0.5"]
    assert option_values(args, "--memory") == option_values(args, "--memory-swap") == ["67108864"]
    assert option_values(args, "--network") == ["host"]
    assert option_values(args, "--workdir") == ["/data/sub"]
    assert option_values(args, "--env") == ["A=x=y", "EMPTY="]
    assert option_values(args, "--mount") == [
        "type=bind,source=/w/data,target=/data",
        "type=bind,source=/w/in,target=/inputs,readonly=true",
    ]
    assert option_values(args, "--ulimit") == ["nofile=10:20"]
    assert "--interactive" in args


def test_cpu_limit_is_capped_at_the_hosts_cores() -> None:
    args = run_args(spec(cpu_cores=10_000.0), ())
    assert option_values(args, "--cpus") == [f"{os.cpu_count() or 1:g}"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/", "cannot mount over /"), ("//", "cannot mount over /"), ("/a,b", "comma")],
)
def test_path_problem_refuses(path: str, reason: str) -> None:
    problem = PodmanRuntime().path_problem(["/data", path])
    assert problem is not None
    assert problem.startswith(f"{path} cannot be used with the podman runtime: ")
    assert reason in problem


def test_path_problem_accepts_ordinary_paths() -> None:
    assert PodmanRuntime().path_problem(["/data", "/tmp/x", "/etc/app.conf"]) is None
