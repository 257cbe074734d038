"""Interpreting Docker Swarm tasks: which one is the executor's, and how it ended.

The tasks are real engine answers (Docker 20.10, one-node swarm) recorded in
``data/swarm_tasks.json``: one entry per scenario, each the list ``GET /tasks`` returned for the
executor's service at that moment.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from toolferry.runtimes.base import ExecSpec
from toolferry.runtimes.swarm import (
    ENDED_STATES,
    KILLED_CONSTRAINT,
    TaskEnd,
    TaskRejected,
    node_problem,
    own_task,
    task_end,
    task_state,
)

RECORDED: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).parent / "data" / "swarm_tasks.json").read_text()
)


def recorded(scenario: str) -> dict[str, Any]:
    task = own_task(copy.deepcopy(RECORDED[scenario]))
    assert task is not None
    return task


@pytest.mark.parametrize(
    ("scenario", "killed", "expected"),
    [
        ("complete", False, TaskEnd(0, True)),
        ("exit_3", False, TaskEnd(3, True)),
        ("oom_killed", False, TaskEnd(137, True)),  # the note comes from the container's state
        ("killed_container", False, TaskEnd(137, True)),
        ("killed_through_swarm", True, TaskEnd(137, True)),
        (
            "killed_pending_through_swarm",
            True,
            TaskEnd(137, False, "toolferry: the executor was killed before it started"),
        ),
    ],
)
def test_ended_tasks_give_the_containers_exit_code(
    scenario: str, killed: bool, expected: TaskEnd
) -> None:
    task = recorded(scenario)
    assert task_state(task) in ENDED_STATES
    assert task_end(task, killed=killed) == expected


@pytest.mark.parametrize(
    ("scenario", "code", "program"),
    [
        ("exec_not_found", 127, '"no-such-program"'),
        ("exec_not_executable", 126, '"/inputs/script"'),
    ],
)
def test_a_program_that_cannot_run_is_the_executors_failure_named_in_stderr(
    scenario: str, code: int, program: str
) -> None:
    end = task_end(recorded(scenario), killed=False)
    assert (end.exit_code, end.ran) == (code, True)
    assert end.note is not None
    assert end.note.startswith("toolferry: the executor could not be started: ")
    assert program in end.note


def test_missing_image_is_a_rejection_with_the_engines_reason() -> None:
    task = recorded("no_such_image")
    assert task_state(task) == "rejected"
    with pytest.raises(TaskRejected) as rejected:
        task_end(task, killed=False)
    assert rejected.value.reason == "No such image: toolferry-test/absent:1"


def test_running_and_pending_tasks_have_not_ended() -> None:
    assert task_state(recorded("running")) not in ENDED_STATES
    pending = recorded("pending_no_suitable_node")
    assert task_state(pending) == "pending"
    assert pending["Status"]["Err"].startswith("no suitable node")
    assert task_state(pending) not in ENDED_STATES


def test_kill_placeholders_are_not_the_executors_task() -> None:
    # The placeholder was created later here, and earlier there (listing order varies).
    for scenario in ("killed_through_swarm", "killed_pending_through_swarm"):
        tasks = RECORDED[scenario]
        assert len(tasks) == 2
        task = own_task(tasks)
        assert task is not None
        assert task_state(task) == "shutdown"
        assert KILLED_CONSTRAINT not in task["Spec"]["Placement"].get("Constraints", [])
    placeholder_only = [t for t in RECORDED["killed_through_swarm"] if task_state(t) == "pending"]
    assert own_task(placeholder_only) is None
    assert own_task([]) is None


def test_the_first_created_task_is_the_executors_whatever_the_fraction_digits() -> None:
    first = {"ID": "a", "CreatedAt": "2026-01-01T00:00:01.1Z", "Spec": {}}
    later = {"ID": "b", "CreatedAt": "2026-01-01T00:00:01.123456789Z", "Spec": {}}
    later_still = {"ID": "c", "CreatedAt": "2026-01-01T00:00:02Z", "Spec": {}}
    # As strings "01.1Z" sorts after "01.123...Z"; as times it comes first.
    assert own_task([later_still, later, first]) == first


def test_a_task_the_swarm_shut_down_on_its_own_keeps_its_code_with_a_note() -> None:
    task = recorded("killed_through_swarm")
    end = task_end(task, killed=False)  # e.g. an operator drained the node
    assert (end.exit_code, end.ran) == (137, True)
    assert end.note is not None
    assert end.note.startswith("toolferry: Docker Swarm stopped the executor (shutdown)")


def test_a_task_shut_down_before_it_started_by_someone_else_is_a_rejection() -> None:
    with pytest.raises(TaskRejected, match="shut the task down before it started"):
        task_end(recorded("killed_pending_through_swarm"), killed=False)


def test_an_orphaned_task_lost_its_node() -> None:
    task = recorded("running")
    task["Status"] = {"State": "orphaned", "Message": "started", "Err": ""}
    with pytest.raises(TaskRejected, match="its node was unavailable too long"):
        task_end(task, killed=False)


def test_a_start_failure_other_than_exec_is_the_engines() -> None:
    task = recorded("exec_not_found")
    task["Status"]["Err"] = "starting container failed: error mounting cgroup: device busy"
    task["Status"]["ContainerStatus"]["ExitCode"] = 128
    with pytest.raises(TaskRejected, match="error mounting cgroup"):
        task_end(task, killed=False)


def test_a_failed_task_without_a_container_or_an_exit_code_is_never_a_success() -> None:
    no_container = recorded("exit_3")
    no_container["Status"]["ContainerStatus"] = {"ContainerID": "", "ExitCode": 0}
    no_container["Status"]["Err"] = "network allocation failed"
    with pytest.raises(TaskRejected, match="network allocation failed"):
        task_end(no_container, killed=False)
    zero = recorded("exit_3")
    zero["Status"]["ContainerStatus"]["ExitCode"] = 0
    with pytest.raises(TaskRejected, match=r"non-zero exit \(3\)"):
        task_end(zero, killed=False)


def _node(state: str, message: str = "") -> dict[str, Any]:
    status = {"State": state, "Addr": "10.0.0.7"}
    if message:
        status["Message"] = message
    return {"ID": "n7", "Description": {"Hostname": "node7"}, "Status": status}


def test_a_node_that_went_down_or_left_ends_the_wait_with_why() -> None:
    spec = ExecSpec(
        task_id="t1",
        index=2,
        image="img",
        command=("true",),
        stdout=Path("/w/out"),
        stderr=Path("/w/err"),
        scratch=Path("/w/s"),
    )
    assert node_problem(_node("ready"), "n7", spec) is None
    assert node_problem(_node("unknown"), "n7", spec) is None  # e.g. just after a manager restart
    assert node_problem(_node("down", "heartbeat failure"), "n7", spec) == (
        "swarm node node7 running executor 2 of task t1 is down: heartbeat failure; "
        "the executor's end is unknown"
    )
    assert node_problem(_node("disconnected"), "n7", spec) == (
        "swarm node node7 running executor 2 of task t1 is disconnected; "
        "the executor's end is unknown"
    )
    assert node_problem(None, "0123456789abcdef", spec) == (
        "swarm node 0123456789ab running executor 2 of task t1 left the swarm; "
        "the executor's end is unknown"
    )
