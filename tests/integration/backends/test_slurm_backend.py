"""The slurm backend on a real Slurm (slurmctld + slurmd + munge, one node): each attempt's
worker is an sbatch job running ``python -m toolferry.worker`` with the docker runtime."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.backends.support import released, wait
from tests.integration.tes.tessupport import containers_gone

from toolferry.config import Settings
from toolferry.domain.errors import InvalidTask
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Resources, TaskSpec
from toolferry.hub import Hub
from toolferry.security.identity import LOCAL

IMAGE = "toolferry-test/busybox:1"


def spec(script: str, **params: str) -> TaskSpec:
    resources = Resources(backend_parameters={"backend": "slurm", **params})
    return TaskSpec(
        executors=(Executor(image=IMAGE, command=("sh", "-c", script)),), resources=resources
    )


def settings(data_dir: Path, **more: Any) -> Settings:
    return Settings(
        data_dir=data_dir, runtime="docker", backends=["slurm"], batch_poll_s=0.2, **more
    )


@pytest.fixture
def hub(tmp_path: Path, slurm: str, busybox_image: str) -> Iterator[Hub]:
    hub = Hub(settings(tmp_path))
    hub.start()
    try:
        yield hub
    finally:
        hub.close()


def squeue(name: str, fmt: str) -> str:
    done = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name={name}", f"--format={fmt}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_a_task_runs_as_a_slurm_job_and_reports_its_output(hub: Hub) -> None:
    task = hub.tasks.submit(spec("echo out; echo err >&2"), LOCAL)
    done = wait(hub, task.id)
    assert done.state is State.COMPLETE, done.logs
    log = done.logs[-1]
    assert log.metadata["backend"] == "slurm"
    assert log.metadata["runtime"] == "docker"
    assert (log.logs[0].exit_code, log.logs[0].stdout, log.logs[0].stderr) == (0, "out\n", "err\n")
    # Its booking comes back when the job ends, which Slurm knows by the attempt's name.
    released(hub, task.id)
    assert squeue(f"toolferry-{task.id}-1", "%T") == "COMPLETED"


def test_resources_and_parameters_become_sbatch_options(hub: Hub) -> None:
    asked = TaskSpec(
        executors=(Executor(image=IMAGE, command=("sleep", "30")),),
        resources=Resources(
            cpu_cores=2,
            ram_gb=0.5,
            disk_gb=1,
            backend_parameters={
                "backend": "slurm",
                "partition": "debug",
                "time_limit_initializing_s": "60",
                "time_limit_running_s": "120",
            },
        ),
    )
    task = hub.tasks.submit(asked, LOCAL)
    wait(hub, task.id, frozenset({State.RUNNING}))
    # cpus, memory (MB), tmp disk (MB), time limit, partition
    line = squeue(f"toolferry-{task.id}-1", "%C|%m|%d|%l|%P")
    assert line == "2|512M|1G|4:00|debug"
    hub.tasks.cancel(task.id, LOCAL)
    assert wait(hub, task.id).state is State.CANCELED


def test_an_executor_error_is_an_executor_error(hub: Hub) -> None:
    task = hub.tasks.submit(spec("exit 3"), LOCAL)
    done = wait(hub, task.id)
    assert done.state is State.EXECUTOR_ERROR
    assert done.logs[-1].logs[0].exit_code == 3


def test_cancel_stops_a_running_job_and_its_executor(hub: Hub) -> None:
    task = hub.tasks.submit(spec("sleep 300"), LOCAL)
    wait(hub, task.id, frozenset({State.RUNNING}))
    started = time.monotonic()
    hub.tasks.cancel(task.id, LOCAL)
    done = wait(hub, task.id, timeout=40)
    assert done.state is State.CANCELED
    assert time.monotonic() - started < 30
    released(hub, task.id)
    assert squeue(f"toolferry-{task.id}-1", "%T") in ("CANCELLED", "COMPLETED")
    assert containers_gone(task.id), "the canceled task's container still runs"


def test_cancel_of_a_task_whose_job_waits_removes_the_job(hub: Hub) -> None:
    # Two 2-core tasks on a 2-core node: the second one's job would wait for the first.
    first = hub.tasks.submit(spec("sleep 300", **{}), LOCAL)
    wait(hub, first.id, frozenset({State.RUNNING}))
    try:
        asked = TaskSpec(
            executors=(Executor(image=IMAGE, command=("true",)),),
            resources=Resources(cpu_cores=2, backend_parameters={"backend": "slurm"}),
        )
        second = hub.tasks.submit(asked, LOCAL)
        # The site books 1 + 2 cores of 2: the second waits QUEUED in the hub, no job yet.
        time.sleep(1)
        assert hub.store.get(second.id).state is State.QUEUED
        assert squeue(f"toolferry-{second.id}-1", "%T") == ""
        assert hub.tasks.cancel(second.id, LOCAL).state is State.CANCELED
    finally:
        hub.tasks.cancel(first.id, LOCAL)
    assert wait(hub, first.id).state is State.CANCELED


def test_a_job_that_dies_without_its_worker_reporting_is_retried_then_completes(
    tmp_path: Path, slurm: str, busybox_image: str
) -> None:
    hub = Hub(settings(tmp_path, max_attempts=2, retry_backoff_s=0.5))
    hub.start()
    try:
        marker = "first-attempt-" + os.urandom(4).hex()
        task = hub.tasks.submit(spec(f"sleep 2; echo {marker}"), LOCAL)
        wait(hub, task.id, frozenset({State.RUNNING}))
        # The node "crashes": the worker process dies at once, reporting nothing.
        pids = subprocess.run(
            ["pgrep", "-f", f"toolferry.worker .*{task.id}/1/job.json"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert pids, "the worker process was not found"
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)
        done = wait(hub, task.id, timeout=60)
        assert done.state is State.COMPLETE, [log.system_logs for log in done.logs]
        assert len(done.logs) == 2
        first = " ".join(done.logs[0].system_logs)
        assert "slurm job" in first and "without its worker reporting" in first, first
        assert done.logs[1].logs[0].stdout == f"{marker}\n"
    finally:
        hub.close()


def test_a_restarted_hub_follows_the_jobs_of_the_last_one(
    tmp_path: Path, slurm: str, busybox_image: str
) -> None:
    first = Hub(settings(tmp_path))
    first.start()
    task = first.tasks.submit(spec("sleep 3; echo survived"), LOCAL)
    wait(first, task.id, frozenset({State.RUNNING}))
    first.close()  # the job goes on without a hub
    second = Hub(settings(tmp_path))
    second.start()
    try:
        assert task.id in second.site.held()  # followed again, its cores booked
        done = wait(second, task.id)
        assert done.state is State.COMPLETE, done.logs
        assert done.logs[-1].logs[0].stdout == "survived\n"
        assert done.logs[-1].metadata["replica"] == second.site.replica_id
        released(second, task.id)
    finally:
        second.close()


def test_a_running_time_limit_ends_the_slurm_task_in_system_error(hub: Hub) -> None:
    task = hub.tasks.submit(spec("sleep 60", time_limit_running_s="1"), LOCAL)
    done = wait(hub, task.id, timeout=40)
    assert done.state is State.SYSTEM_ERROR
    assert "time limit" in " ".join(done.logs[-1].system_logs)


@pytest.mark.parametrize(
    ("resources", "field", "needle"),
    [
        (
            Resources(cpu_cores=99, backend_parameters={"backend": "slurm"}),
            "resources.cpu_cores",
            "backend slurm has at most",
        ),
        (Resources(ram_gb=10_000), "resources.ram_gb", "no other backend can hold it"),
        (
            Resources(backend_parameters={"backend": "slurm", "partition": "nope"}),
            "resources.backend_parameters",
            "partition 'nope' does not exist",
        ),
        (
            Resources(backend_parameters={"backend": "slurm", "qos": "a b"}),
            "resources.backend_parameters",
            "not a valid Slurm name",
        ),
        (
            Resources(backend_parameters={"backend": "local", "partition": "debug"}),
            "resources.backend_parameters.partition",
            "read by backend slurm only",
        ),
        (
            Resources(
                backend_parameters={"backend": "slurm", "nodelist": "x"},
                backend_parameters_strict=True,
            ),
            "resources.backend_parameters.nodelist",
            "not supported",
        ),
        (
            Resources(backend_parameters={"backend": "pbs"}),
            "resources.backend_parameters.backend",
            "backend 'pbs' cannot be used here",
        ),
    ],
)
def test_tasks_slurm_cannot_run_are_refused_at_submission(
    hub: Hub, resources: Resources, field: str, needle: str
) -> None:
    before = hub.store.count()
    asked = TaskSpec(executors=(Executor(image=IMAGE, command=("true",)),), resources=resources)
    with pytest.raises(InvalidTask) as caught:
        hub.tasks.submit(asked, LOCAL)
    assert caught.value.field == field
    assert needle in str(caught.value)
    assert hub.store.count() == before


def test_a_slurm_parameter_sends_a_task_that_names_no_backend_to_slurm(hub: Hub) -> None:
    asked = TaskSpec(
        executors=(Executor(image=IMAGE, command=("true",)),),
        resources=Resources(backend_parameters={"partition": "debug"}),
    )
    task = hub.tasks.submit(asked, LOCAL)
    assert task.spec.backend_parameter("backend") == "slurm"
    assert any("runs on backend slurm" in note for note in task.notes)
    assert wait(hub, task.id).state is State.COMPLETE
