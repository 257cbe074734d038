"""After a hub restart: re-attach to attempts that survived it, end the others saying why."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from toolferry.domain.states import ACTIVE, State
from toolferry.domain.task import Task
from toolferry.runtimes.base import RuntimeFailure
from toolferry.worker.journal import Journal, Phase

if TYPE_CHECKING:
    from toolferry.agent.site import Site

log = logging.getLogger(__name__)


def recover(site: Site) -> None:
    """Every task a worker owned when the last hub stopped is resumed or ended."""
    for task in site.store.in_states(ACTIVE, limit=100_000):
        try:
            _recover(site, task)
        except Exception:
            log.exception("recovering task %s failed", task.id)
            site.fail(task, "the hub restarted and could not re-attach to this task")


def _recover(site: Site, task: Task) -> None:
    work = task.logs[-1].metadata.get("work_dir") if task.logs else None
    journal = Journal.load(Path(work)) if work else None
    runtime = site.runtimes.get(journal.runtime) if journal else None
    if task.state is State.CANCELING:
        if journal and journal.ref and runtime:
            runtime.kill(journal.ref)
            runtime.cleanup(journal.ref)
        site.fail(task, "canceled by the user")
        return
    if journal is None or work is None:
        # The worker writes its journal once the first executor starts.
        site.fail(
            task,
            "the hub stopped before the task's first executor started (its inputs may have "
            "been staging); submit the task again",
        )
        return
    if runtime is None:
        site.fail(task, f"the hub restarted and runtime {journal.runtime!r} is no longer available")
        return
    if journal.phase is Phase.RUNNING and journal.ref is not None:
        try:
            alive = runtime.is_alive(journal.ref)
        except RuntimeFailure as exc:
            site.fail(task, f"the hub restarted and could not reach the runtime: {exc}")
            return
        if alive is None:
            site.fail(
                task,
                f"executor {journal.executor} ({journal.ref}) disappeared while the hub was down",
            )
            return
    log.info("re-attaching to task %s (%s, executor %d)", task.id, journal.phase, journal.executor)
    site.resume(task, Path(work), runtime, journal)
