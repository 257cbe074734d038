"""The backend interface: launch a worker for a job, cancel it, say what it can do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from toolferry.domain.events import Event
from toolferry.domain.task import Task
from toolferry.runtimes.base import Runtime
from toolferry.worker.journal import Journal
from toolferry.worker.pipeline import EventSink, WorkerOptions
from toolferry.worker.transfers import CredentialLookup, Transfers, no_credentials


@dataclass(frozen=True, kw_only=True)
class Job:
    """One attempt of one task, with everything its worker needs."""

    task: Task
    attempt_dir: Path
    runtime: Runtime
    transfers: Transfers
    sink: EventSink
    options: WorkerOptions
    resume: Journal | None = None
    claim: Event | None = None  # INITIALIZING, for a new attempt of a QUEUED task
    credentials: CredentialLookup = no_credentials  # the task owner's storage secrets


class Backend(Protocol):
    name: str

    def submit(self, job: Job, on_done: Callable[[Task], None]) -> None:
        """Launch the job's worker; call ``on_done`` with the final task when it ends."""
        ...

    def cancel(self, task_id: str) -> bool:
        """Stop the task's worker; False when this backend is not running it."""
        ...
