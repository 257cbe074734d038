"""After a hub restart: re-attach to attempts that survived it, end the others saying why."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from toolferry.domain.errors import InvalidTransition, NotFound
from toolferry.domain.events import Event
from toolferry.domain.states import ACTIVE, State
from toolferry.domain.task import Task
from toolferry.runtimes.base import RuntimeFailure
from toolferry.worker.journal import Journal, Phase

if TYPE_CHECKING:
    from toolferry.agent.site import Site

log = logging.getLogger(__name__)


def recover(site: Site, mine: Callable[[Task], bool]) -> None:
    """Every task of ``mine`` that a worker owned when its hub stopped is resumed or ended;
    leftovers of tasks that ended (e.g. containers a killed hub never removed) are swept."""
    adopted = [t for t in site.store.in_states(ACTIVE, limit=100_000) if mine(t)]
    ids = {t.id for t in adopted}  # before they are marked as this replica's
    if site.replica_id:
        # First of all: should this hub die too, the next replica adopts them from it.
        for task in adopted:
            with suppress(InvalidTransition):
                site.store.append(Event.metadata(task.id, replica=site.replica_id))
    resumed: set[str] = set()
    # Jobs outside the hub (batch jobs) outlive it: follow those still there.
    for name, backend in site.backends.items():
        if not backend.capabilities.workers_in_hub:
            try:
                resumed |= site.reattach(name, lambda t: t.id in ids or mine(t))
            except Exception:
                log.exception("following the jobs of backend %s again failed", name)
    for task in adopted:
        if task.id in resumed:
            continue
        try:
            if _recover(site, task):
                resumed.add(task.id)
        except Exception:
            log.exception("recovering task %s failed", task.id)
            site.fail(task, "the hub restarted and could not re-attach to this task")

    def keep(task_id: str) -> bool:
        # Only leftovers of this hub's ended tasks go: an engine may serve other hubs too.
        if task_id in resumed:
            return True
        try:
            return not site.store.owner_and_state(task_id)[1].terminal
        except NotFound:
            return True

    for runtime in site.runtimes.values():
        try:
            swept = runtime.sweep(keep)
        except RuntimeFailure:
            log.exception("sweeping leftovers of runtime %s failed", runtime.name)
            continue
        if swept:
            log.info("removed %d leftovers of ended tasks (runtime %s)", swept, runtime.name)


def _recover(site: Site, task: Task) -> bool:
    """Resume the task (True) or end it (False)."""
    name = str(task.logs[-1].metadata.get("backend", "")) if task.logs else ""
    backend = site.backends.get(name)
    if name and backend is None:
        site.fail(task, f"the hub restarted and backend {name!r} is no longer available")
        return False
    if backend is not None and not backend.capabilities.workers_in_hub:
        site.lost(task, f"its {name} job ended while the hub was down, without reporting")
        return False
    work = task.logs[-1].metadata.get("work_dir") if task.logs else None
    journal = Journal.load(Path(work)) if work else None
    runtime = site.runtimes.get(journal.runtime) if journal else None
    if task.state is State.CANCELING:
        if journal and journal.ref and runtime:
            runtime.kill(journal.ref)
            runtime.cleanup(journal.ref)
        site.fail(task, "canceled by the user")
        return False
    if journal is None or work is None:
        # The worker writes its journal once the first executor starts: nothing ran, so
        # another attempt may start from scratch when the retry policy allows one.
        site.lost(
            task,
            "the hub stopped before the task's first executor started (its inputs may have "
            "been staging)",
        )
        return False
    if runtime is None:
        site.fail(task, f"the hub restarted and runtime {journal.runtime!r} is no longer available")
        return False
    if journal.phase is Phase.RUNNING and journal.ref is not None:
        try:
            alive = runtime.is_alive(journal.ref)
        except RuntimeFailure as exc:
            site.fail(task, f"the hub restarted and could not reach the runtime: {exc}")
            return False
        if alive is None:
            site.fail(
                task,
                f"executor {journal.executor} ({journal.ref}) disappeared while the hub was down",
            )
            return False
    log.info("re-attaching to task %s (%s, executor %d)", task.id, journal.phase, journal.executor)
    site.resume(task, Path(work), runtime, journal)
    return True
