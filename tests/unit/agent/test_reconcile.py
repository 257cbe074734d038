"""The reconciler: an active task of this hub that no worker or job follows any more (its worker
died without reporting) is ended, or retried; a task seen unfollowed only once is left alone."""

from __future__ import annotations

from toolferry.domain.events import Event
from toolferry.domain.states import State
from toolferry.domain.task import Executor, TaskSpec
from toolferry.hub import Hub
from toolferry.security.identity import LOCAL


def orphan(hub: Hub, replica: str) -> str:
    """A RUNNING task claimed by ``replica`` with no worker behind it."""
    spec = TaskSpec(executors=(Executor(image="img", command=("true",)),))
    task = hub.tasks.submit(spec, LOCAL)
    hub.store.append(
        Event.state(task.id, State.INITIALIZING, replica=replica, backend="local"),
        Event.state(task.id, State.RUNNING),
    )
    return task.id


def test_an_unfollowed_task_of_this_hub_ends_at_the_second_look(hub: Hub) -> None:
    hub.scheduler.stop()
    task_id = orphan(hub, hub.site.replica_id)
    assert hub.site.reconcile() == 0  # first look: maybe a worker is just taking it over
    assert hub.store.get(task_id).state is State.RUNNING
    assert hub.site.reconcile() == 1
    task = hub.store.get(task_id)
    assert task.state is State.SYSTEM_ERROR
    assert "no worker of this hub holds it" in " ".join(task.logs[-1].system_logs)


def test_tasks_of_other_replicas_are_left_to_them(hub: Hub) -> None:
    hub.scheduler.stop()
    task_id = orphan(hub, "another-replica")
    assert hub.site.reconcile() == 0
    assert hub.site.reconcile() == 0
    assert hub.store.get(task_id).state is State.RUNNING
