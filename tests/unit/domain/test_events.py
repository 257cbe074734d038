from datetime import UTC, datetime

import pytest

from toolferry.domain.errors import InvalidTransition
from toolferry.domain.events import Event, apply, replay
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Task, TaskSpec


def new_task() -> Task:
    spec = TaskSpec(executors=(Executor(image="img", command=("true",)),))
    return Task(id="t1", owner="alice", spec=spec, creation_time=datetime(2026, 1, 1, tzinfo=UTC))


def run_through(task: Task, events: list[Event]) -> Task:
    for event in events:
        task = apply(task, event)
    return task


def test_a_full_attempt_builds_the_task_log() -> None:
    events = [
        Event.state("t1", State.QUEUED),
        Event.state("t1", State.INITIALIZING, host="h1"),
        Event.state("t1", State.RUNNING),
        Event.executor_finished("t1", 0, 3, started=datetime.now(UTC), stdout="out", stderr="err"),
        Event.output_uploaded("t1", "file:///o", "/out", 12),
        Event.metadata("t1", image_digest="sha256:x"),
        Event.state("t1", State.EXECUTOR_ERROR),
    ]
    task = run_through(new_task(), events)
    assert task.state is State.EXECUTOR_ERROR
    assert task.version == len(events)
    (log,) = task.logs
    assert log.metadata == {"host": "h1", "image_digest": "sha256:x"}
    assert log.logs[0].exit_code == 3
    assert (log.logs[0].stdout, log.logs[0].stderr) == ("out", "err")
    assert log.outputs[0].size_bytes == 12
    assert log.start_time is not None and log.end_time is not None
    assert replay(new_task(), events) == task


def test_system_error_reason_goes_to_the_attempts_system_logs() -> None:
    task = run_through(
        new_task(),
        [
            Event.state("t1", State.QUEUED),
            Event.state("t1", State.INITIALIZING),
            Event.state("t1", State.SYSTEM_ERROR, "disk full"),
        ],
    )
    assert task.logs[-1].system_logs == ("disk full",)


def test_reasons_before_any_attempt_are_kept_as_notes() -> None:
    task = run_through(
        new_task(), [Event.state("t1", State.QUEUED), Event.state("t1", State.CANCELED, "bye")]
    )
    assert task.logs == ()
    assert task.notes == ("bye",)


def test_each_attempt_appends_a_task_log() -> None:
    task = run_through(
        new_task(),
        [
            Event.state("t1", State.QUEUED),
            Event.state("t1", State.INITIALIZING),
            Event.state("t1", State.QUEUED, "lost the node"),
            Event.state("t1", State.INITIALIZING),
        ],
    )
    assert len(task.logs) == 2
    assert task.logs[0].system_logs == ("lost the node",)
    assert task.logs[0].end_time is not None and task.logs[1].end_time is None


def test_events_after_the_end_are_refused() -> None:
    task = run_through(
        new_task(),
        [
            Event.state("t1", State.QUEUED),
            Event.state("t1", State.INITIALIZING),
            Event.state("t1", State.RUNNING),
            Event.state("t1", State.COMPLETE),
        ],
    )
    with pytest.raises(InvalidTransition):
        apply(task, Event.executor_finished("t1", 1, 0, started=datetime.now(UTC)))
    with pytest.raises(InvalidTransition):
        apply(task, Event.state("t1", State.RUNNING))


def test_executor_events_need_an_attempt() -> None:
    task = apply(new_task(), Event.state("t1", State.QUEUED))
    with pytest.raises(InvalidTransition):
        apply(task, Event.executor_finished("t1", 0, 0, started=datetime.now(UTC)))


def test_no_system_log_after_the_end() -> None:
    task = run_through(
        new_task(), [Event.state("t1", State.QUEUED), Event.state("t1", State.CANCELED)]
    )
    with pytest.raises(InvalidTransition):
        apply(task, Event.system_log("t1", "late"))
