"""The local backend: each worker runs in a thread of the hub process, on this machine."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from toolferry.backends.base import Job
from toolferry.domain.task import Task
from toolferry.worker.pipeline import Worker

log = logging.getLogger(__name__)


class LocalBackend:
    """Threads are daemons: stopping the hub leaves executors running, to be re-attached."""

    name = "local"

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()

    def submit(self, job: Job, on_done: Callable[[Task], None]) -> None:
        worker = Worker(
            task=job.task,
            attempt_dir=job.attempt_dir,
            runtime=job.runtime,
            transfers=job.transfers,
            sink=job.sink,
            options=job.options,
            resume=job.resume,
            claim=job.claim,
            credentials=job.credentials,
        )
        with self._lock:
            self._workers[job.task.id] = worker

        def run() -> None:
            final = job.task
            try:
                final = worker.run()
            finally:
                with self._lock:
                    self._workers.pop(job.task.id, None)
                on_done(final)

        threading.Thread(target=run, name=f"worker-{job.task.id}", daemon=True).start()

    def cancel(self, task_id: str) -> bool:
        with self._lock:
            worker = self._workers.get(task_id)
        if worker is None:
            return False
        worker.cancel()
        return True
