"""Waiting on a hub's tasks in the backend tests."""

from __future__ import annotations

import time

from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.hub import Hub


def wait(
    hub: Hub, task_id: str, states: frozenset[State] | None = None, timeout: float = 60
) -> Task:
    """The task once it is in one of ``states`` (default: any terminal state)."""
    deadline = time.monotonic() + timeout
    while True:
        task = hub.store.get(task_id)
        if (task.state in states) if states else task.state.terminal:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} is still {task.state} after {timeout} s")
        time.sleep(0.05)


def released(hub: Hub, task_id: str, timeout: float = 15) -> None:
    """Wait until the task's booking is given back (its worker or job ended)."""
    deadline = time.monotonic() + timeout
    while task_id in hub.site.held():
        assert time.monotonic() < deadline, f"task {task_id} still holds its booking"
        time.sleep(0.05)
