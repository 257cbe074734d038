"""The hub's own site: dispatch onto its backend, cancel, and the event sink of its workers.

What it accepts lives in :mod:`admission`, its cores and memory in :mod:`capacity`, and what
happens after a hub restart in :mod:`recovery`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from toolferry.agent import recovery
from toolferry.agent.admission import AccessCheck, Admission
from toolferry.agent.capacity import Capacity
from toolferry.backends.base import Backend, Job
from toolferry.domain.errors import InvalidTransition
from toolferry.domain.events import Event
from toolferry.domain.limits import TimeLimits
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.runtimes.base import Runtime
from toolferry.security.credentials import CredentialResolver
from toolferry.store.base import TaskStore
from toolferry.worker.journal import Journal
from toolferry.worker.pipeline import Detached, WorkerOptions, host_metadata
from toolferry.worker.transfers import Transfers

CANCELED_BY_USER = "canceled by the user"


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    name: str
    work_dir: Path
    capacity_cpus: float
    capacity_ram_gb: float
    default_cpu_cores: float
    default_ram_gb: float
    allow_task_network: bool
    log_tail_bytes: int
    keep_work_dirs: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: TimeLimits = field(default_factory=TimeLimits)


class Site:
    """Runs tasks on this machine through one backend and the runtimes that answer here."""

    def __init__(
        self,
        *,
        config: SiteConfig,
        store: TaskStore,
        backend: Backend,
        runtimes: dict[str, Runtime],
        default_runtime: str | None,
        unavailable: dict[str, str],
        transfers: Transfers,
        credentials: CredentialResolver | None = None,
        access_checks: Mapping[str, AccessCheck] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.backend = backend
        self.runtimes = runtimes
        self.default_runtime = default_runtime
        self.transfers = transfers
        self.storage = transfers.router
        self.credentials = credentials or CredentialResolver(())
        self.capacity = Capacity(
            cpus=config.capacity_cpus,
            ram_gb=config.capacity_ram_gb,
            default_cpus=config.default_cpu_cores,
            default_ram_gb=config.default_ram_gb,
        )
        self.admission = Admission(
            backend=backend.name,
            runtimes=runtimes,
            default_runtime=default_runtime,
            unavailable=unavailable,
            storage=transfers.router,
            capacity=self.capacity,
            allow_task_network=config.allow_task_network,
            access_checks=access_checks,
        )
        self.on_capacity_freed: Callable[[], None] = lambda: None
        self._detached = False

    # -- dispatch ----------------------------------------------------------------------------
    def try_dispatch(self, task: Task) -> bool:
        """Start ``task`` if there is room; False (and nothing changed) if it must wait."""
        if not self.capacity.reserve(task.id, self.capacity.booking(task.spec)):
            return False
        name = task.spec.backend_parameter("runtime") or self.default_runtime
        runtime = self.runtimes.get(name) if name else None
        if runtime is None:
            self._release(task.id)
            self.fail(task, "the task's runtime is no longer available on this site")
            return True
        attempt_dir = self.config.work_dir / task.id / str(len(task.logs) + 1)
        # The worker claims the task (QUEUED → INITIALIZING through the state machine) as its
        # first write, together with RUNNING when it has nothing to stage.
        meta = host_metadata(runtime.name, self.backend.name, attempt_dir)
        claim = Event.state(task.id, State.INITIALIZING, **meta)
        self.backend.submit(self._job(task, attempt_dir, runtime, claim=claim), self._done)
        return True

    def resume(self, task: Task, attempt_dir: Path, runtime: Runtime, journal: Journal) -> None:
        """Continue an attempt a previous hub process started (it runs already: no room check)."""
        self.capacity.reserve(task.id, self.capacity.booking(task.spec), force=True)
        self.backend.submit(self._job(task, attempt_dir, runtime, resume=journal), self._done)

    def recover(self) -> None:
        recovery.recover(self)

    def has_room(self) -> bool:
        """Whether a task with the default booking could start now."""
        return self.capacity.default_slots() > 0

    def default_slots(self) -> int:
        return self.capacity.default_slots()

    def held(self) -> frozenset[str]:
        """Tasks holding a booking here (their workers are starting or running)."""
        return self.capacity.held()

    def _job(
        self,
        task: Task,
        attempt_dir: Path,
        runtime: Runtime,
        *,
        claim: Event | None = None,
        resume: Journal | None = None,
    ) -> Job:
        # What the scheduler booked is what the executor gets: a task that asked for nothing
        # is held to the default booking instead of taking every core.
        booked = self.capacity.booking(task.spec)
        task_id = task.id
        options = WorkerOptions(
            executors_done=lambda: self._release(task_id),
            log_tail_bytes=self.config.log_tail_bytes,
            cpu_cores=booked.cpus or None,
            ram_gb=booked.ram_gb or None,
            network=task.spec.backend_parameter("network") == "host",
            keep_work_dir=self.config.keep_work_dirs,
            retry=self.config.retry,
            initializing_limit_s=self.config.limits.of(task, State.INITIALIZING),
            running_limit_s=self.config.limits.of(task, State.RUNNING),
        )
        return Job(
            task=task,
            attempt_dir=attempt_dir,
            runtime=runtime,
            transfers=self.transfers,
            credentials=self.credentials.for_owner(task.owner),
            sink=self,
            options=options,
            resume=resume,
            claim=claim,
        )

    def _release(self, task_id: str) -> None:
        """Give the task's cores and memory back (idempotent)."""
        if self.capacity.release(task_id):
            self.on_capacity_freed()

    def _done(self, task: Task) -> None:
        self._release(task.id)

    # -- ending tasks --------------------------------------------------------------------------
    def cancel(self, task: Task) -> Task:
        """Cancel a task the caller may see; terminal tasks are left as they are."""
        if task.state is State.QUEUED:
            try:
                return self.store.append(Event.state(task.id, State.CANCELED, CANCELED_BY_USER))
            except InvalidTransition:
                task = self.store.get(task.id)  # dispatched meanwhile: cancel the attempt
        if task.state in (State.INITIALIZING, State.RUNNING, State.PAUSED):
            try:
                task = self.store.append(Event.state(task.id, State.CANCELING))
            except InvalidTransition:
                return self.store.get(task.id)
        if task.state is State.CANCELING and not self.backend.cancel(task.id):
            # No worker here holds it (e.g. still being recovered): finish it ourselves.
            try:
                task = self.store.append(Event.state(task.id, State.CANCELED, CANCELED_BY_USER))
            except InvalidTransition:
                task = self.store.get(task.id)
        return task

    def fail(self, task: Task, reason: str) -> None:
        """End a task no worker holds: SYSTEM_ERROR with ``reason`` (CANCELED if it was being
        canceled). A task that moved on meanwhile is left alone."""
        target = State.CANCELED if task.state is State.CANCELING else State.SYSTEM_ERROR
        with suppress(InvalidTransition):
            self.store.append(Event.state(task.id, target, reason))

    # -- EventSink for workers ---------------------------------------------------------------
    def emit(self, *events: Event) -> Task:
        if self._detached:
            raise Detached()
        return self.store.append(*events)

    def current(self, task_id: str) -> Task:
        return self.store.get(task_id)

    def detach(self) -> None:
        """Stop reporting for running workers (the hub is stopping): their executors go on
        and the next hub re-attaches to them."""
        self._detached = True
