"""FIFO with a per-user fair share: one user's queue does not hold up another's task; with a
capacity of 2 cores, six 1-core tasks never run more than two at a time and all complete."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.unit.fakes import FakeRuntime
from toolferry.config import Settings
from toolferry.hub import serve_embedded
from toolferry.runtimes.base import ExecSpec

TES = "/ga4gh/tes/v1"


class Gate(FakeRuntime):
    """Executors run until their task's gate opens; records the order they started in."""

    def __init__(self) -> None:
        super().__init__(self._hold)
        self.order: list[str] = []
        self.running = 0
        self.most = 0
        self.gates: dict[str, threading.Event] = {}
        self._count = threading.Lock()

    def _hold(self, spec: ExecSpec, rt: FakeRuntime) -> int:
        with self._count:
            self.order.append(spec.task_id)
            self.running += 1
            self.most = max(self.most, self.running)
        self.gates.setdefault(spec.task_id, threading.Event()).wait(20)
        with self._count:
            self.running -= 1
        return 0

    def open(self, task_id: str) -> None:
        self.gates.setdefault(task_id, threading.Event()).set()


def task(tag: str) -> dict[str, Any]:
    return {
        "name": tag,
        "executors": [{"image": "x", "command": ["true"]}],
        "resources": {"cpu_cores": 1},
    }


def wait_for(check: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_another_users_task_goes_before_a_users_backlog(tmp_path: Path) -> None:
    runtime = Gate()
    settings = Settings(data_dir=tmp_path, capacity_cpus=1)
    with serve_embedded(settings, runtimes={"fake": runtime}) as (hub, url):
        _, alice = hub.tokens.create("alice")
        _, bob = hub.tokens.create("bob")
        with httpx.Client(base_url=url) as http:

            def submit(token: str, name: str) -> str:
                answer = http.post(
                    f"{TES}/tasks", json=task(name), headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 200, answer.text
                return str(answer.json()["id"])

            a1 = submit(alice, "a1")
            wait_for(lambda: runtime.order == [a1])
            a2, a3 = submit(alice, "a2"), submit(alice, "a3")
            b1 = submit(bob, "b1")
            runtime.open(a1)
            wait_for(lambda: len(runtime.order) == 2)
            assert runtime.order[1] == b1  # bob has nothing running: his task goes first
            for task_id in (b1, a2, a3):
                runtime.open(task_id)
            wait_for(lambda: len(runtime.order) == 4)
            assert runtime.order[2:] == [a2, a3]  # FIFO within a user


def test_six_one_core_tasks_on_two_cores(tmp_path: Path) -> None:
    runtime = Gate()
    settings = Settings(data_dir=tmp_path, capacity_cpus=2)
    with (
        serve_embedded(settings, runtimes={"fake": runtime}) as (_, url),
        httpx.Client(base_url=url) as http,
    ):
        ids = [http.post(f"{TES}/tasks", json=task(f"t{i}")).json()["id"] for i in range(6)]
        for _ in range(3):
            wait_for(lambda: runtime.running == 2)
            time.sleep(0.1)  # room for a third to start, were the scheduler to allow it
            for task_id in list(runtime.order):
                runtime.open(task_id)
        states = [http.get(f"{TES}/tasks/{i}").json()["state"] for i in ids]
        wait_for(
            lambda: all(http.get(f"{TES}/tasks/{i}").json()["state"] == "COMPLETE" for i in ids)
        )
        assert runtime.most == 2 and len(runtime.order) == 6, states
