"""A task whose attempt ends in a system error is retried with backoff, each attempt one TES
task log; an EXECUTOR_ERROR is never retried; a task may ask for its own number of attempts."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.fakes import FakeRuntime
from toolferry.config import Settings
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.task import Executor, Task, TaskLog, TaskSpec
from toolferry.hub import serve_embedded
from toolferry.runtimes.base import ExecSpec, RuntimeFailure

TES = "/ga4gh/tes/v1"


class Flaky(FakeRuntime):
    """Fails to start the first ``failures`` executors (an engine hiccup), then runs them."""

    def __init__(self, failures: int, exit_code: int = 0) -> None:
        super().__init__(lambda spec, rt: exit_code)
        self.failures = failures

    def start(self, spec: ExecSpec) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeFailure("the engine hiccupped")
        return super().start(spec)


def run(
    tmp_path: Path, runtime: FakeRuntime, task: dict[str, Any], **settings: Any
) -> dict[str, Any]:
    config = Settings(data_dir=tmp_path, capacity_cpus=2, retry_backoff_s=0.05, **settings)
    with (
        serve_embedded(config, runtimes={"fake": runtime}) as (_, url),
        httpx.Client(base_url=url) as client,
    ):
        answer = client.post(f"{TES}/tasks", json=task)
        assert answer.status_code == 200, answer.text
        for _ in range(600):
            shown: dict[str, Any] = client.get(
                f"{TES}/tasks/{answer.json()['id']}?view=FULL"
            ).json()
            if shown["state"] in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"):
                return shown
            time.sleep(0.02)
    raise AssertionError("the task did not end")


TASK = {"executors": [{"image": "x", "command": ["true"]}]}


def test_a_system_error_is_retried_and_each_attempt_has_a_log(tmp_path: Path) -> None:
    done = run(tmp_path, Flaky(2), TASK, max_attempts=3)
    assert done["state"] == "COMPLETE"
    assert len(done["logs"]) == 3
    first = "\n".join(done["logs"][0]["system_logs"])
    assert "attempt 1 of 3 ended in a system error" in first and "hiccupped" in first
    assert "retrying in 0.05 s" in first
    assert "attempt 2 of 3" in "\n".join(done["logs"][1]["system_logs"])
    starts = [datetime.fromisoformat(log["start_time"]) for log in done["logs"]]
    ends = [datetime.fromisoformat(log["end_time"]) for log in done["logs"]]
    assert starts[1] - ends[0] >= timedelta(seconds=0.05)  # the backoff was waited out
    assert starts[2] - ends[1] >= timedelta(seconds=0.1)  # and doubled


def test_attempts_run_out_in_a_system_error(tmp_path: Path) -> None:
    done = run(tmp_path, Flaky(5), TASK, max_attempts=2)
    assert done["state"] == "SYSTEM_ERROR" and len(done["logs"]) == 2
    assert "hiccupped" in "\n".join(done["logs"][1]["system_logs"])


def test_executor_errors_are_not_retried_and_tasks_may_ask_for_attempts(tmp_path: Path) -> None:
    failing = run(tmp_path / "a", Flaky(0, exit_code=3), TASK, max_attempts=3)
    assert failing["state"] == "EXECUTOR_ERROR" and len(failing["logs"]) == 1
    asked = {**TASK, "resources": {"backend_parameters": {"max_attempts": "2"}}}
    done = run(tmp_path / "b", Flaky(1), asked)  # the site's default is one attempt
    assert done["state"] == "COMPLETE" and len(done["logs"]) == 2


@pytest.mark.parametrize("value", ["0", "11", "two", "-1"])
def test_a_bad_max_attempts_is_refused(tmp_path: Path, value: str) -> None:
    config = Settings(data_dir=tmp_path, capacity_cpus=2)
    with (
        serve_embedded(config, runtimes={"fake": FakeRuntime()}) as (_, url),
        httpx.Client(base_url=url) as client,
    ):
        task = {**TASK, "resources": {"backend_parameters": {"max_attempts": value}}}
        answer = client.post(f"{TES}/tasks", json=task)
        assert answer.status_code == 400 and "max_attempts" in answer.json()["detail"]


def test_the_backoff_comes_from_the_task_itself() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_s=10, backoff_max_s=15)
    end = datetime(2026, 1, 1, tzinfo=UTC)
    spec = TaskSpec(executors=(Executor(image="x", command=("true",)),))
    task = Task(id="t", owner="u", spec=spec, creation_time=end)
    assert policy.not_before(task) is None and policy.retries(task)
    one = Task(id="t", owner="u", spec=spec, creation_time=end, logs=(TaskLog(end_time=end),))
    assert policy.not_before(one) == end + timedelta(seconds=10)
    two = Task(
        id="t", owner="u", spec=spec, creation_time=end, logs=(TaskLog(), TaskLog(end_time=end))
    )
    assert policy.not_before(two) == end + timedelta(seconds=15)  # capped
    three = Task(id="t", owner="u", spec=spec, creation_time=end, logs=(TaskLog(),) * 3)
    assert not policy.retries(three)
