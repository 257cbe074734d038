"""Site capacity on real engines: with 2 cores, six 1-core tasks never run more than two at a
time, and all six complete — on the local backend (docker) and on Slurm. Overlap is measured
from the executors' own start and end times as the task logs record them."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from toolferry.config import Settings
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Resources, Task, TaskSpec
from toolferry.hub import Hub
from toolferry.security.identity import LOCAL

IMAGE = "toolferry-test/busybox:1"


def most_at_once(tasks: list[Task]) -> int:
    edges: list[tuple[datetime, int]] = []
    for task in tasks:
        log = task.logs[-1].logs[0]
        assert log.start_time is not None and log.end_time is not None
        edges += [(log.start_time, 1), (log.end_time, -1)]
    running = most = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # ends before starts at a tie
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("backend", ["local", "slurm"])
def test_six_one_core_tasks_on_two_cores_run_two_at_a_time(
    tmp_path: Path, busybox_image: str, slurm: str, backend: str
) -> None:
    hub = Hub(
        Settings(
            data_dir=tmp_path, runtime="docker", capacity_cpus=2, backend=backend, batch_poll_s=0.2
        )
    )
    hub.start()
    try:
        spec = TaskSpec(
            executors=(Executor(image=IMAGE, command=("sleep", "1")),),
            resources=Resources(cpu_cores=1),
        )
        ids = [hub.tasks.submit(spec, LOCAL).id for _ in range(6)]
        deadline = time.monotonic() + 90
        while not all(hub.store.get(i).state.terminal for i in ids):
            assert time.monotonic() < deadline, [hub.store.get(i).state for i in ids]
            time.sleep(0.1)
        tasks = [hub.store.get(i) for i in ids]
    finally:
        hub.close()
    assert [t.state for t in tasks] == [State.COMPLETE] * 6
    assert {t.logs[-1].metadata["backend"] for t in tasks} == {backend}
    assert most_at_once(tasks) == 2
