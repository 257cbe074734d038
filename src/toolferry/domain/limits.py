"""Time limits per task state: the site's defaults, which a task may tighten.

Funnel's users saw tasks sit in INITIALIZING or RUNNING for days (Funnel issue 618). A site
sets the longest a task may be QUEUED, INITIALIZING (staging inputs) or RUNNING (its
executors); a task may ask for shorter ones with the backend parameters
``time_limit_queued_s``, ``time_limit_initializing_s`` and ``time_limit_running_s``. Past a
limit, the task ends in SYSTEM_ERROR with a system log line naming the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from toolferry.domain.states import State
from toolferry.domain.task import Task

__all__ = ["LIMITED_STATES", "TimeLimits", "parameter"]

LIMITED_STATES = (State.QUEUED, State.INITIALIZING, State.RUNNING)


def parameter(state: State) -> str:
    """The backend parameter of a state's limit, e.g. ``time_limit_running_s``."""
    return f"time_limit_{str(state).lower()}_s"


@dataclass(frozen=True, kw_only=True)
class TimeLimits:
    """Seconds per state; 0 means no limit."""

    queued_s: float = 0
    initializing_s: float = 0
    running_s: float = 0

    def site(self, state: State) -> float:
        return {
            State.QUEUED: self.queued_s,
            State.INITIALIZING: self.initializing_s,
            State.RUNNING: self.running_s,
        }[state]

    def of(self, task: Task, state: State) -> float | None:
        """The limit ``task`` has in ``state``: the site's, or the task's when shorter."""
        limits = [self.site(state)]
        asked = task.spec.backend_parameter(parameter(state))
        if asked:
            limits.append(float(asked))
        positive = [x for x in limits if x > 0]
        return min(positive) if positive else None

    def queued_since(self, task: Task) -> datetime:
        """When the task last entered QUEUED: created, or its last attempt ended."""
        last = task.logs[-1].end_time if task.logs else None
        return last or task.creation_time

    def overdue_in_queue(self, task: Task, at: datetime) -> str | None:
        """Why a QUEUED task has waited too long, or None."""
        limit = self.of(task, State.QUEUED)
        if limit is None or at - self.queued_since(task) <= timedelta(seconds=limit):
            return None
        return f"QUEUED for more than {limit:g} s: the time limit of that state"
