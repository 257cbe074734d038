"""The backend interface: launch a worker for a job, cancel it, say what it can do.

A site has one or more backends (``local`` always; ``slurm`` and ``swarm`` where they answer).
Each declares its capabilities as data — the backend parameters it reads, the runtimes its
workers may use, the largest task it can hold and its total room — so that a task it cannot
run is refused at submission, never half-way through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from toolferry.domain.events import Event
from toolferry.domain.task import Task, TaskSpec
from toolferry.runtimes.base import Runtime
from toolferry.worker.journal import Journal
from toolferry.worker.pipeline import EventSink, WorkerOptions
from toolferry.worker.transfers import CredentialLookup, Transfers, no_credentials


class BackendUnavailable(Exception):
    """The backend does not answer on this machine; the message says how to fix it."""


@dataclass(frozen=True, kw_only=True)
class Size:
    """Cores, memory and scratch disk: a task's booking, a node's size or a backend's room."""

    cpus: float
    ram_gb: float
    disk_gb: float | None = None  # None: not known or not limited


@dataclass(frozen=True, kw_only=True)
class BackendCapabilities:
    """What a backend can do, as data: checked at submission, listed in service-info."""

    name: str
    description: str
    total: Size  # the room tasks of this backend share
    largest: Size  # the largest single task (e.g. the largest node of a cluster)
    # Backend parameters only this backend reads, with what they accept.
    parameters: Mapping[str, str] = field(default_factory=dict)
    # The runtimes its executors may use; None: the runtimes that answer on the hub's site.
    runtimes: tuple[str, ...] | None = None
    default_runtime: str | None = None  # for tasks that name none (None: the site's default)
    # True: workers run in the hub process (a restarted hub resumes them from their journals);
    # False: they run as jobs outside it (a restarted hub follows those jobs again).
    workers_in_hub: bool = True


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


# Called when a job ended without its worker reporting an end (killed, node lost): the task
# and why, for the site to end or retry it.
LostJob = Callable[[Task, str], None]


def placement_of(spec: TaskSpec) -> tuple[str, ...]:
    """The task's placement constraints (backend parameter ``constraints``, comma-separated)."""
    value = spec.backend_parameter("constraints") or ""
    return tuple(c.strip() for c in value.split(",") if c.strip())


class Backend(Protocol):
    name: str
    capabilities: BackendCapabilities

    @property
    def runtimes(self) -> Mapping[str, Runtime]:
        """Runtimes this backend brings (e.g. Swarm services); others use the site's."""
        ...

    def check(self, spec: TaskSpec) -> str | None:
        """Why this backend cannot run ``spec`` (e.g. a bad value of one of its parameters),
        naming the field; None when it can. Sizes are checked by the site."""
        ...

    def submit(self, job: Job, on_done: Callable[[Task], None], on_lost: LostJob) -> None:
        """Launch the job's worker; call ``on_done`` with the final task when it ends, or
        ``on_lost`` when its job ended without the worker reporting."""
        ...

    def cancel(self, task_id: str) -> bool:
        """Stop the task's worker; False when this backend is not running it."""
        ...

    def tracked(self) -> frozenset[str]:
        """The tasks whose workers or jobs this backend follows now."""
        ...

    def reattach(
        self,
        current: Callable[[str], Task],
        mine: Callable[[Task], bool],
        on_done: Callable[[Task], None],
        on_lost: LostJob,
    ) -> set[str]:
        """After a hub restart: follow again this backend's jobs that outlived the last hub
        and whose tasks (read with ``current``) have not ended and are ``mine``; return
        those task ids.
        Backends whose workers live in the hub process return an empty set (the site resumes
        those from their journals)."""
        ...

    def close(self) -> None:
        """Stop following jobs (the hub stops); jobs outside the hub go on."""
        ...
