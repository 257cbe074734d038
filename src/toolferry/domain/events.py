"""Task events and the projection that folds them into a :class:`Task`.

Events are the only write path for task state: the store appends an event and saves
``apply(task, event)`` in the same transaction. Replaying a task's events from its ``created``
event rebuilds the same task.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from toolferry.domain.errors import InvalidTransition
from toolferry.domain.states import State, validate_transition
from toolferry.domain.task import ExecutorLog, InputFileLog, OutputFileLog, Task, TaskLog


class EventKind(StrEnum):
    STATE = "state"
    EXECUTOR_FINISHED = "executor_finished"
    INPUT_STAGED = "input_staged"
    OUTPUT_UPLOADED = "output_uploaded"
    SYSTEM_LOG = "system_log"
    METADATA = "metadata"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    task_id: str
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=now)
    seq: int = 0

    # Constructors name the data each kind carries.
    @classmethod
    def state(cls, task_id: str, state: State, reason: str | None = None, **metadata: str) -> Event:
        data: dict[str, Any] = {"state": str(state)}
        if reason:
            data["reason"] = reason
        if metadata:
            data["metadata"] = metadata
        return cls(task_id=task_id, kind=EventKind.STATE, data=data)

    @classmethod
    def executor_finished(
        cls,
        task_id: str,
        index: int,
        exit_code: int,
        *,
        started: datetime,
        stdout: str = "",
        stderr: str = "",
    ) -> Event:
        """One event per executor, when it ends: it carries its start time (one write, not two)."""
        return cls(
            task_id=task_id,
            kind=EventKind.EXECUTOR_FINISHED,
            data={
                "index": index,
                "exit_code": exit_code,
                "start_time": started.isoformat(),
                "stdout": stdout,
                "stderr": stderr,
            },
        )

    @classmethod
    def input_staged(
        cls,
        task_id: str,
        url: str,
        path: str,
        size_bytes: int,
        sha256: str,
        *,
        cached: bool,
        directory: bool = False,
    ) -> Event:
        return cls(
            task_id=task_id,
            kind=EventKind.INPUT_STAGED,
            data={
                "url": url,
                "path": path,
                "size_bytes": size_bytes,
                "sha256": sha256,
                "cached": cached,
                "directory": directory,
            },
        )

    @classmethod
    def output_uploaded(
        cls, task_id: str, url: str, path: str, size_bytes: int, sha256: str | None = None
    ) -> Event:
        data: dict[str, Any] = {"url": url, "path": path, "size_bytes": size_bytes}
        if sha256 is not None:
            data["sha256"] = sha256
        return cls(task_id=task_id, kind=EventKind.OUTPUT_UPLOADED, data=data)

    @classmethod
    def system_log(cls, task_id: str, message: str) -> Event:
        return cls(task_id=task_id, kind=EventKind.SYSTEM_LOG, data={"message": message})

    @classmethod
    def metadata(cls, task_id: str, **values: str) -> Event:
        return cls(task_id=task_id, kind=EventKind.METADATA, data=dict(values))


def _with_current_log(task: Task, log: TaskLog) -> Task:
    return replace(task, logs=(*task.logs[:-1], log))


def _add_system_log(task: Task, message: str) -> Task:
    if not task.logs:
        return replace(task, notes=(*task.notes, message))
    log = task.logs[-1]
    return _with_current_log(task, replace(log, system_logs=(*log.system_logs, message)))


def _apply_state(task: Task, event: Event) -> Task:
    target = State(event.data["state"])
    validate_transition(task.state, target)
    if target is State.INITIALIZING:
        log = TaskLog(start_time=event.time, metadata=dict(event.data.get("metadata", {})))
        task = replace(task, logs=(*task.logs, log))
    elif task.logs and (target.terminal or target is State.QUEUED):
        task = _with_current_log(task, replace(task.logs[-1], end_time=event.time))
    if reason := event.data.get("reason"):
        task = _add_system_log(task, reason)
    return replace(task, state=target)


def _require_attempt(task: Task, event: Event) -> TaskLog:
    if not task.logs or task.state.terminal:
        raise InvalidTransition(f"{event.kind} event for task {task.id} in state {task.state}")
    return task.logs[-1]


def apply(task: Task, event: Event) -> Task:
    """Fold one event into ``task``; raises :class:`InvalidTransition` for an illegal event."""
    kind = event.kind
    if kind is EventKind.STATE:
        task = _apply_state(task, event)
    elif kind is EventKind.SYSTEM_LOG:
        if task.state.terminal:
            raise InvalidTransition(f"system log for task {task.id}, which has ended")
        task = _add_system_log(task, event.data["message"])
    else:
        log = _require_attempt(task, event)
        if kind is EventKind.EXECUTOR_FINISHED:
            index = int(event.data["index"])
            entries = list(log.logs)
            while len(entries) <= index:
                entries.append(ExecutorLog())
            entries[index] = ExecutorLog(
                exit_code=int(event.data["exit_code"]),
                start_time=datetime.fromisoformat(event.data["start_time"]),
                end_time=event.time,
                stdout=event.data.get("stdout", ""),
                stderr=event.data.get("stderr", ""),
            )
            log = replace(log, logs=tuple(entries))
        elif kind is EventKind.OUTPUT_UPLOADED:
            entry = OutputFileLog(
                url=event.data["url"],
                path=event.data["path"],
                size_bytes=int(event.data["size_bytes"]),
                sha256=event.data.get("sha256"),
            )
            log = replace(log, outputs=(*log.outputs, entry))
        elif kind is EventKind.INPUT_STAGED:
            staged = InputFileLog(
                url=event.data["url"],
                path=event.data["path"],
                size_bytes=int(event.data["size_bytes"]),
                sha256=event.data["sha256"],
                cached=bool(event.data.get("cached")),
                directory=bool(event.data.get("directory")),
            )
            log = replace(log, inputs=(*log.inputs, staged))
        elif kind is EventKind.METADATA:
            log = replace(log, metadata={**log.metadata, **event.data})
        task = _with_current_log(task, log)
    return replace(task, version=task.version + 1)


def replay(initial: Task, events: list[Event]) -> Task:
    """Rebuild a task from its initial (just created) form and its events, in order."""
    task = initial
    for event in events:
        task = apply(task, event)
    return task
