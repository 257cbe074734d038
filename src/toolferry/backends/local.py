"""The local backend: each worker runs in a thread of the hub process, on this machine."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from toolferry.backends.base import BackendCapabilities, Job, LostJob, Size
from toolferry.domain.task import Task, TaskSpec
from toolferry.runtimes.base import Runtime
from toolferry.worker.pipeline import Worker

log = logging.getLogger(__name__)


class LocalBackend:
    """Threads are daemons: stopping the hub leaves executors running, to be re-attached."""

    name = "local"

    def __init__(self, size: Size, *, runtime_names: tuple[str, ...] | None = None) -> None:
        """``size``: the cores and memory of this machine the site may use; ``runtime_names``:
        the runtimes its executors may use (None: every runtime of the site)."""
        self.capabilities = BackendCapabilities(
            name=self.name,
            description="workers in the hub process, executors on this machine",
            total=size,
            largest=size,
            runtimes=runtime_names,
        )
        self.runtimes: dict[str, Runtime] = {}
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()

    def check(self, spec: TaskSpec) -> str | None:
        return None

    def submit(self, job: Job, on_done: Callable[[Task], None], on_lost: LostJob) -> None:
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

    def tracked(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._workers)

    def reattach(
        self,
        current: Callable[[str], Task],
        mine: Callable[[Task], bool],
        on_done: Callable[[Task], None],
        on_lost: LostJob,
    ) -> set[str]:
        return set()  # workers died with the last hub; the site resumes their executors

    def close(self) -> None:
        pass  # daemon threads: their executors go on, the next hub re-attaches
