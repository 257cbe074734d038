"""Clean-up chores (removing ended containers and work folders) run off the tasks' critical path.

One background thread does them in order; a stopping hub runs what is left with a deadline.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_chores: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_janitor_lock = threading.Lock()
_janitor: threading.Thread | None = None


def _do_chores() -> None:
    while True:
        chore = _chores.get()
        try:
            chore()
        except Exception:
            log.exception("clean-up after a task failed")


def run_pending_chores(timeout: float) -> None:
    """Do the clean-up chores still queued (the hub is stopping), for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chore = _chores.get_nowait()
        except queue.Empty:
            return
        try:
            chore()
        except Exception:
            log.exception("clean-up after a task failed")


def later(chore: Callable[[], None]) -> None:
    """Run a clean-up chore off the task's critical path (removing a container or a work
    folder costs milliseconds that the user would otherwise wait for)."""
    global _janitor
    with _janitor_lock:
        if _janitor is None:
            _janitor = threading.Thread(target=_do_chores, name="janitor", daemon=True)
            _janitor.start()
    _chores.put(chore)
