"""Retrying a task whose attempt ended in a system error (not the tool's fault).

An attempt that fails for a system reason (a transfer that kept failing, an engine error, a
lost executor) is retried, up to ``max_attempts`` attempts in all, each later than the last by
an exponential backoff. Each attempt is one TES task log, so the backoff is derived from the
task itself (its number of logs and the end of the last one) and survives a hub restart.
An EXECUTOR_ERROR is never retried: the tool ran and said no.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from toolferry.domain.task import Task

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff_s: float = 10.0
    backoff_max_s: float = 600.0

    def attempts_of(self, task: Task) -> int:
        """How many attempts the task may have: the site's, or its ``max_attempts`` backend
        parameter (admission checked it is a number from 1 to 10)."""
        asked = task.spec.backend_parameter("max_attempts")
        return int(asked) if asked else self.max_attempts

    def delay(self, attempts_done: int) -> float:
        """Seconds to wait after the ``attempts_done``-th failed attempt."""
        return float(min(self.backoff_max_s, self.backoff_s * 2.0 ** max(0, attempts_done - 1)))

    def retries(self, task: Task) -> bool:
        """Whether the attempt now ending (the task's last log) may be followed by another."""
        return len(task.logs) < self.attempts_of(task)

    def not_before(self, task: Task) -> datetime | None:
        """When a queued task that failed before may start again (None: now)."""
        if not task.logs or task.logs[-1].end_time is None:
            return None
        return task.logs[-1].end_time + timedelta(seconds=self.delay(len(task.logs)))
