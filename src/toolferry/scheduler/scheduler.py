"""The dispatch loop: QUEUED tasks, oldest first, go to the site as soon as it has room.

The loop sleeps until something can change the answer (a task queued, capacity freed) and
also wakes every ``interval`` seconds as a safety net.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from toolferry.agent.site import Site
from toolferry.domain.errors import InvalidTransition
from toolferry.domain.events import Event, now
from toolferry.domain.limits import TimeLimits
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.states import ACTIVE, State
from toolferry.domain.task import Task
from toolferry.store.base import TaskStore

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0  # seconds between looks at the whole queue for time limits
RECONCILE_INTERVAL = 15.0  # seconds between looks for active tasks no worker follows
FAIR_WINDOW = 64  # queued tasks looked at to share among users


class Scheduler:
    def __init__(
        self,
        store: TaskStore,
        site: Site,
        *,
        interval: float = 2.0,
        batch: int = 8,
        retry: RetryPolicy | None = None,
        limits: TimeLimits | None = None,
        sweeps: Sequence[Callable[[TimeLimits], object]] = (),
    ) -> None:
        """``retry``: when a task back in the queue after a failed attempt may start again
        (it waits out its backoff without holding up the tasks behind it)."""
        self._store = store
        self._site = site
        self._retry = retry or RetryPolicy()
        self._limits = limits or TimeLimits()
        self._sweeps = tuple(sweeps)  # more queues to hold to the time limits (data sites')
        self._swept = 0.0  # monotonic time of the last sweep of the queue for time limits
        self._reconciled = time.monotonic()
        self._served: dict[str, float] = {}  # owner → when a task of theirs last started
        self._next_retry: float | None = None  # seconds since the epoch
        self._interval = interval
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.subscribe(self._on_change)
        site.on_capacity_freed = self.wake

    def _on_change(self, task: Task) -> None:
        # A new task can only start now if the site has room; freed room wakes us anyway.
        if task.state is State.QUEUED and self._site.has_room():
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()
        self.wake()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            timeout = self._interval
            if self._next_retry is not None:  # a backing-off task's turn comes sooner
                timeout = max(0.0, min(timeout, self._next_retry - now().timestamp()))
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if time.monotonic() - self._swept >= SWEEP_INTERVAL:
                    self._swept = time.monotonic()
                    self.end_overdue()
                    for sweep in self._sweeps:
                        sweep(self._limits)
                if time.monotonic() - self._reconciled >= RECONCILE_INTERVAL:
                    self._reconciled = time.monotonic()
                    self._site.reconcile()
                self.dispatch_once()
            except Exception:
                log.exception("dispatch failed; retrying on the next wake-up")

    def end_overdue(self) -> int:
        """End in SYSTEM_ERROR every QUEUED task past its queue time limit; how many."""
        ended = 0
        at = now()
        queued = self._store.in_states(frozenset({State.QUEUED}), exclude=self._site.held())
        for task in queued:
            reason = self._limits.overdue_in_queue(task, at)
            if reason is None:
                continue
            try:
                self._store.append(Event.state(task.id, State.SYSTEM_ERROR, reason))
                ended += 1
            except InvalidTransition:
                pass  # dispatched or canceled meanwhile
        return ended

    def dispatch_once(self) -> int:
        """Start queued tasks until the first that does not fit; return how many.

        FIFO with a per-user fair share: among the oldest queued tasks, those of users with
        fewer tasks already running go first, then those of the user served least recently
        (FIFO within a user), so that one user's hundred tasks do not hold up another's one. The chosen task blocks
        its backend's queue when it does not fit (a large task is not starved by smaller
        ones behind it); tasks of other backends go on.
        """
        started = 0
        backing_off: set[str] = set()
        waiting: set[str] = set()  # tasks that do not fit their backend now
        full: set[str] = set()  # backends whose first waiting task does not fit
        self._next_retry = None
        while not self._stop.is_set():
            # Read only as many as could start (and a few more to share fairly among users):
            # decoding tasks that must wait is wasted work.
            limit = max(1, min(self._batch, self._site.default_slots()))
            window = min(FAIR_WINDOW, limit * 4)
            # Tasks already handed to a worker stay QUEUED until it claims them: skip them.
            queued = self._store.in_states(
                frozenset({State.QUEUED}),
                limit=window,
                exclude=self._site.held() | backing_off | waiting,
            )
            if not queued:
                return started
            ready = []
            for task in queued:
                when = self._retry.not_before(task)
                if when is not None and when > now():
                    backing_off.add(task.id)
                    at = when.timestamp()
                    self._next_retry = at if self._next_retry is None else min(self._next_retry, at)
                elif self._site.backend_of(task) in full:
                    waiting.add(task.id)  # behind a task that waits: FIFO per backend
                else:
                    ready.append(task)
            shared = len({task.owner for task in ready}) > 1
            if shared:
                running = Counter(t.owner for t in self._store.in_states(ACTIVE, limit=100_000))
                served = self._served
                ready.sort(key=lambda t: (running[t.owner], served.get(t.owner, 0.0)))
            for task in ready[:limit]:
                backend = self._site.backend_of(task)
                if backend in full:
                    waiting.add(task.id)
                    continue
                if not self._site.try_dispatch(task):
                    # It waits for room, and every later task of its backend waits behind it
                    # (a large task is not starved by smaller ones); other backends go on.
                    full.add(backend)
                    waiting.add(task.id)
                    continue
                started += 1
                self._served[task.owner] = time.monotonic()
                if shared:
                    break  # the shares changed: choose again
            else:
                if len(ready) <= limit and len(queued) < window:
                    return started  # nothing more is queued
            if full >= set(self._site.backends) or not self._site.has_room():
                return started
        return started
