"""``python -m toolferry.worker JOB_FILE``: run one attempt of one task in this process.

Batch jobs start this on a compute node (see :mod:`toolferry.backends.batch`). The job file
names the task and attempt and carries the hub's settings; the worker builds the runtime,
storage and store from them, claims the task, runs it and reports to the store itself. SIGTERM
(``scancel``, the end of a job's time) stops the executor and ends the task CANCELED, or in
SYSTEM_ERROR when a time limit expired.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from toolferry import wiring
from toolferry.config import Settings
from toolferry.domain.errors import InvalidTransition
from toolferry.domain.events import Event, EventKind
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.runtimes import registry
from toolferry.store.db import Database
from toolferry.store.sql import SqlTaskStore
from toolferry.worker.pipeline import Worker, WorkerOptions

log = logging.getLogger("toolferry.worker")


class StoreSink:
    """Workers outside the hub write their events to the store directly."""

    def __init__(self, store: SqlTaskStore) -> None:
        self.store = store

    def emit(self, *events: Event) -> Task:
        return self.store.append(*events)

    def current(self, task_id: str) -> Task:
        return self.store.get(task_id)


def run_job(job_file: Path) -> int:
    """Run the attempt ``job_file`` describes; 0 when its end was reported, 1 when not even
    that was possible (the job's output says why)."""
    spec: dict[str, Any] = json.loads(job_file.read_text())
    settings = Settings(**spec["settings"])
    db = Database.connect(settings.effective_database_url)
    try:
        store = SqlTaskStore(db)
        sink = StoreSink(store)
        task = store.get(spec["task_id"])
        claim = (
            Event(task_id=task.id, kind=EventKind.STATE, data=spec["claim"])
            if spec.get("claim")
            else None
        )
        try:
            runtime = registry.build(spec["runtime"], settings)
            reason = runtime.unavailable_reason()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if reason is not None:
            _fail(
                store,
                task,
                claim,
                f"runtime {spec['runtime']} is not usable on this node: {reason}",
            )
            return 0
        files = wiring.hub_files(settings)
        options = spec["options"]
        worker = Worker(
            task=task,
            attempt_dir=Path(spec["attempt_dir"]),
            runtime=runtime,
            transfers=wiring.transfers(settings, files),
            credentials=wiring.credential_resolver(
                settings, wiring.user_credentials(settings, db)
            ).for_owner(task.owner),
            sink=sink,
            claim=claim,
            options=WorkerOptions(
                log_tail_bytes=options["log_tail_bytes"],
                cpu_cores=options["cpu_cores"],
                ram_gb=options["ram_gb"],
                network=options["network"],
                keep_work_dir=options["keep_work_dir"],
                initializing_limit_s=options["initializing_limit_s"],
                running_limit_s=options["running_limit_s"],
                placement=tuple(options["placement"]),
                retry=RetryPolicy(
                    max_attempts=settings.max_attempts,
                    backoff_s=settings.retry_backoff_s,
                    backoff_max_s=settings.retry_backoff_max_s,
                ),
            ),
        )

        def stopped() -> None:
            # scancel after a cancel (the task is CANCELING), else the scheduler ended the
            # job (its time limit, preemption): a system error, retried if the policy says so.
            if store.owner_and_state(task.id)[1] is State.CANCELING:
                worker.cancel()
            else:
                worker.expire(
                    "the batch job was stopped by its scheduler (time limit or preemption)"
                )

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("task %s: signal %d, stopping the attempt", task.id, signum)
            # Not in the handler: the main thread may be inside a store call.
            threading.Thread(target=stopped, name="stop", daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        final = worker.run()
        log.info("task %s: %s", task.id, final.state)
        return 0
    finally:
        db.close()


def _fail(store: SqlTaskStore, task: Task, claim: Event | None, reason: str) -> None:
    """End the task before any worker step ran (claiming it first, as a worker would)."""
    events = [claim] if claim is not None else []
    try:
        store.append(*events, Event.state(task.id, State.SYSTEM_ERROR, reason))
    except InvalidTransition:
        log.warning("task %s moved on before it could be ended: %s", task.id, reason)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m toolferry.worker JOB_FILE", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return run_job(Path(args[0]))
    except Exception:
        log.exception("the worker could not run %s", args[0])
        return 1


if __name__ == "__main__":
    sys.exit(main())
