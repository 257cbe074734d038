"""Per-state time limits: a task past its QUEUED or RUNNING limit ends in SYSTEM_ERROR saying
which limit it hit; tasks may only tighten the site's limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.fakes import FakeRuntime
from toolferry.config import Settings
from toolferry.hub import serve_embedded
from toolferry.runtimes.base import ExecSpec

TES = "/ga4gh/tes/v1"


def holding(spec: ExecSpec, rt: FakeRuntime) -> int:
    rt.release.wait(20)
    return 137


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[httpx.Client, FakeRuntime]]:
    runtime = FakeRuntime(holding)
    settings = Settings(data_dir=tmp_path, capacity_cpus=1, time_limit_running_s=30)
    with (
        serve_embedded(settings, runtimes={"fake": runtime}) as (_, url),
        httpx.Client(base_url=url) as http,
    ):
        yield http, runtime
        runtime.release.set()


def task(**parameters: str) -> dict[str, Any]:
    return {
        "executors": [{"image": "x", "command": ["sleep", "60"]}],
        "resources": {"cpu_cores": 1, "backend_parameters": parameters},
    }


def until_ended(http: httpx.Client, task_id: str) -> dict[str, Any]:
    for _ in range(500):
        shown: dict[str, Any] = http.get(f"{TES}/tasks/{task_id}?view=FULL").json()
        if shown["state"] in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"):
            return shown
        time.sleep(0.02)
    raise AssertionError(f"{task_id} did not end")


def test_a_task_past_its_running_limit_is_stopped(
    client: tuple[httpx.Client, FakeRuntime],
) -> None:
    http, runtime = client
    task_id = http.post(f"{TES}/tasks", json=task(time_limit_running_s="0.3")).json()["id"]
    done = until_ended(http, task_id)
    assert done["state"] == "SYSTEM_ERROR"
    assert "RUNNING for more than 0.3 s: the time limit of that state" in "\n".join(
        done["logs"][-1]["system_logs"]
    )
    assert runtime.killed  # the executor was stopped, not left running


def test_a_task_waiting_past_its_queue_limit_ends(
    client: tuple[httpx.Client, FakeRuntime],
) -> None:
    http, runtime = client
    first = http.post(f"{TES}/tasks", json=task()).json()["id"]
    second = http.post(f"{TES}/tasks", json=task(time_limit_queued_s="0.5")).json()["id"]
    done = until_ended(http, second)
    assert done["state"] == "SYSTEM_ERROR"
    assert "QUEUED for more than 0.5 s" in str(done["logs"])
    assert http.get(f"{TES}/tasks/{first}").json()["state"] == "RUNNING"
    runtime.release.set()


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_a_bad_limit_is_refused(client: tuple[httpx.Client, FakeRuntime], value: str) -> None:
    http, _ = client
    answer = http.post(f"{TES}/tasks", json=task(time_limit_running_s=value))
    assert answer.status_code == 400 and "time_limit_running_s" in answer.json()["detail"]


def test_tasks_only_tighten_the_sites_limits() -> None:
    from datetime import UTC, datetime

    from toolferry.domain.limits import TimeLimits
    from toolferry.domain.states import State
    from toolferry.domain.task import Executor, Resources, Task, TaskSpec

    def with_params(**params: str) -> Task:
        spec = TaskSpec(
            executors=(Executor(image="x", command=("true",)),),
            resources=Resources(backend_parameters=params),
        )
        return Task(id="t", owner="u", spec=spec, creation_time=datetime.now(UTC))

    limits = TimeLimits(running_s=30)
    assert limits.of(with_params(time_limit_running_s="100"), State.RUNNING) == 30
    assert limits.of(with_params(time_limit_running_s="5"), State.RUNNING) == 5
    assert limits.of(with_params(), State.QUEUED) is None
    assert limits.of(with_params(time_limit_queued_s="7"), State.QUEUED) == 7
