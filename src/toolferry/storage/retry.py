"""Retries with exponential backoff, for failures that a classifier calls transient.

Only what may pass by itself is retried (a refused or reset connection, a time-out, an overloaded
server); a missing object or a refused login is reported at once, since asking again cannot help.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["RetriesExhausted", "backoff_delays", "retrying"]

T = TypeVar("T")


class RetriesExhausted(Exception):
    """Every one of ``attempts`` tries failed with a transient error; ``last`` is the final one."""

    def __init__(self, last: Exception, attempts: int) -> None:
        super().__init__(f"{attempts} attempts failed; the last with: {last}")
        self.last = last
        self.attempts = attempts


def backoff_delays(
    attempts: int, *, first: float, factor: float = 2.0, cap: float = 30.0
) -> list[float]:
    """The pauses between ``attempts`` tries: ``first``, then ``factor`` times longer each time,
    none longer than ``cap`` seconds."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    return [min(first * factor**i, cap) for i in range(attempts - 1)]


def retrying(
    call: Callable[[], T],
    *,
    delays: Sequence[float],
    transient: Callable[[Exception], bool],
    sleep: Callable[[float], None] = time.sleep,
    before_retry: Callable[[Exception], None] | None = None,
) -> T:
    """``call()``, tried once more after each pause in ``delays`` while it fails transiently.

    A failure that is not ``transient`` propagates at once, unchanged. When the last attempt
    fails transiently too, :class:`RetriesExhausted` is raised from it. ``before_retry`` runs
    after a transient failure and before the pause (to drop a connection that broke, say).
    """
    attempts = len(delays) + 1
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if not transient(exc):
                raise
            if attempt == attempts:
                raise RetriesExhausted(exc, attempts) from exc
            if before_retry is not None:
                before_retry(exc)
            sleep(delays[attempt - 1])
    raise AssertionError("unreachable")  # pragma: no cover
