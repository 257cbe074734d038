"""The TES task states and the one state machine that says which changes are legal."""

from __future__ import annotations

from enum import StrEnum

from toolferry.domain.errors import InvalidTransition


class State(StrEnum):
    """TES 1.1 ``tesState``: all eleven values, in the spec's order."""

    UNKNOWN = "UNKNOWN"
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELED = "CANCELED"
    PREEMPTED = "PREEMPTED"
    CANCELING = "CANCELING"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """A worker owns the task (it must be stopped, re-attached or failed)."""
        return self in ACTIVE


TERMINAL = frozenset(
    {State.COMPLETE, State.EXECUTOR_ERROR, State.SYSTEM_ERROR, State.CANCELED, State.PREEMPTED}
)
ACTIVE = frozenset({State.INITIALIZING, State.RUNNING, State.PAUSED, State.CANCELING})

# Why each edge exists:
# - QUEUED → SYSTEM_ERROR: the scheduler can refuse a task it can never place (e.g. a site vanished).
# - INITIALIZING/RUNNING → QUEUED: an attempt was lost and the task is retried (a new task log).
# - CANCELING → terminal error states: the worker ended on its own while being stopped.
_ALLOWED: dict[State, frozenset[State]] = {
    State.UNKNOWN: frozenset({State.QUEUED}),
    State.QUEUED: frozenset({State.INITIALIZING, State.CANCELED, State.SYSTEM_ERROR, State.PAUSED}),
    State.INITIALIZING: frozenset(
        {
            State.RUNNING,
            State.QUEUED,
            State.CANCELING,
            State.SYSTEM_ERROR,
            State.PREEMPTED,
        }
    ),
    State.RUNNING: frozenset(
        {
            State.COMPLETE,
            State.EXECUTOR_ERROR,
            State.SYSTEM_ERROR,
            State.CANCELING,
            State.PREEMPTED,
            State.QUEUED,
            State.PAUSED,
        }
    ),
    State.PAUSED: frozenset({State.QUEUED, State.RUNNING, State.CANCELING, State.SYSTEM_ERROR}),
    State.CANCELING: frozenset({State.CANCELED, State.SYSTEM_ERROR}),
}


def can_transition(current: State, target: State) -> bool:
    return target in _ALLOWED.get(current, frozenset())


def validate_transition(current: State, target: State) -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is legal."""
    if not can_transition(current, target):
        raise InvalidTransition(f"a task cannot go from {current} to {target}")
