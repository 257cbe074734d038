"""The swarm backend on a real one-node Docker Swarm: the worker runs in the hub and stages
through the attempt's folder; each executor is a Swarm service placed by Swarm."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import services
from tests.integration.backends.support import wait

from toolferry.config import Settings
from toolferry.domain.errors import InvalidTask
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Input, Output, Resources, TaskSpec
from toolferry.hub import Hub
from toolferry.security.identity import LOCAL

IMAGE = "toolferry-test/busybox:1"


@pytest.fixture
def hub(tmp_path: Path, swarm: str, busybox_image: str) -> Iterator[Hub]:
    hub = Hub(Settings(data_dir=tmp_path, runtime="docker", backends=["swarm"], backend="swarm"))
    hub.start()
    try:
        yield hub
    finally:
        hub.close()


def services_of(task_id: str) -> list[str]:
    out = services.docker(
        "service", "ls", "--filter", f"label=toolferry.task={task_id}", "--format", "{{.Name}}"
    )
    return out.stdout.decode().split()


def test_a_task_stages_in_runs_as_services_and_stages_out(hub: Hub, tmp_path: Path) -> None:
    result = hub.settings.storage_dir / "swarm-out.txt"
    spec = TaskSpec(
        inputs=(Input(path="/data/in.txt", content="from the hub\n"),),
        outputs=(Output(path="/data/out.txt", url=f"file://{result}"),),
        executors=(
            Executor(
                image=IMAGE, command=("sh", "-c", "tr a-z A-Z < /data/in.txt > /data/out.txt")
            ),
            Executor(image=IMAGE, command=("sh", "-c", "cat /data/out.txt; echo oops >&2; exit 4")),
        ),
        resources=Resources(cpu_cores=1, ram_gb=0.25),
    )
    task = hub.tasks.submit(spec, LOCAL)
    done = wait(hub, task.id)
    assert done.state is State.EXECUTOR_ERROR, done.logs
    log = done.logs[-1]
    assert (log.metadata["backend"], log.metadata["runtime"]) == ("swarm", "swarm")
    assert [e.exit_code for e in log.logs] == [0, 4]
    assert (log.logs[1].stdout, log.logs[1].stderr) == ("FROM THE HUB\n", "oops\n")
    assert result.read_text() == "FROM THE HUB\n"  # outputs are staged after an executor error
    deadline = time.monotonic() + 15
    while services_of(task.id):
        assert time.monotonic() < deadline, "the task's services were not removed"
        time.sleep(0.2)


def test_an_unmet_constraint_keeps_the_service_pending_until_cancel(hub: Hub) -> None:
    spec = TaskSpec(
        executors=(Executor(image=IMAGE, command=("true",)),),
        resources=Resources(
            backend_parameters={"constraints": "node.labels.toolferry-zone==nowhere"}
        ),
    )
    task = hub.tasks.submit(spec, LOCAL)
    wait(hub, task.id, frozenset({State.RUNNING}))
    time.sleep(1.5)
    assert hub.store.get(task.id).state is State.RUNNING  # Swarm finds no node for it
    assert services_of(task.id)
    assert hub.tasks.cancel(task.id, LOCAL).state in (State.CANCELING, State.CANCELED)
    assert wait(hub, task.id).state is State.CANCELED
    deadline = time.monotonic() + 15
    while services_of(task.id):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_task_with_stdin_goes_from_the_swarm_to_a_backend_that_can_feed_it(hub: Hub) -> None:
    spec = TaskSpec(
        executors=(Executor(image=IMAGE, command=("cat",), stdin="/data/in"),),
        inputs=(Input(path="/data/in", content="fed\n"),),
    )
    task = hub.tasks.submit(spec, LOCAL)
    assert task.spec.backend_parameter("backend") == "local"
    done = wait(hub, task.id)
    assert (done.state, done.logs[-1].logs[0].stdout) == (State.COMPLETE, "fed\n")


@pytest.mark.parametrize(
    ("spec", "field", "needle"),
    [
        (
            TaskSpec(
                executors=(Executor(image=IMAGE, command=("true",)),),
                resources=Resources(backend_parameters={"constraints": "zone=a"}),
            ),
            "resources.backend_parameters",
            "not a Swarm placement constraint",
        ),
        (
            TaskSpec(
                executors=(Executor(image=IMAGE, command=("cat",), stdin="/data/in"),),
                inputs=(Input(path="/data/in", content="x"),),
                resources=Resources(backend_parameters={"backend": "swarm"}),
            ),
            "executors[0].stdin",
            "cannot feed an executor's stdin",
        ),
        (
            TaskSpec(
                executors=(Executor(image=IMAGE, command=("true",)),),
                resources=Resources(backend_parameters={"backend": "swarm", "runtime": "docker"}),
            ),
            "resources.backend_parameters.runtime",
            "backend swarm runs executors with swarm",
        ),
        (
            TaskSpec(
                executors=(Executor(image=IMAGE, command=("true",)),),
                resources=Resources(cpu_cores=64, backend_parameters={"backend": "swarm"}),
            ),
            "resources.cpu_cores",
            "backend swarm has at most",
        ),
    ],
)
def test_tasks_the_swarm_cannot_run_are_refused(
    hub: Hub, spec: TaskSpec, field: str, needle: str
) -> None:
    before = hub.store.count()
    with pytest.raises(InvalidTask) as caught:
        hub.tasks.submit(spec, LOCAL)
    assert caught.value.field == field
    assert needle in str(caught.value)
    assert hub.store.count() == before
