"""The hub's own site: dispatch onto its backend, cancel, and the event sink of its workers.

What it accepts lives in :mod:`admission`, its cores and memory in :mod:`capacity`, and what
happens after a hub restart in :mod:`recovery`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from toolferry.agent import recovery
from toolferry.agent.admission import AccessCheck, Admission
from toolferry.agent.capacity import Capacity
from toolferry.backends.base import Backend, BackendUnavailable, Job, placement_of
from toolferry.domain.errors import InvalidTransition
from toolferry.domain.events import Event
from toolferry.domain.limits import TimeLimits
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.states import ACTIVE, State
from toolferry.domain.task import Task
from toolferry.runtimes.base import Runtime, RuntimeFailure
from toolferry.security.credentials import CredentialResolver
from toolferry.store.base import TaskStore
from toolferry.worker.journal import Journal
from toolferry.worker.pipeline import Detached, WorkerOptions, host_metadata
from toolferry.worker.transfers import Transfers

log = logging.getLogger(__name__)

CANCELED_BY_USER = "canceled by the user"


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    name: str
    work_dir: Path
    default_cpu_cores: float
    default_ram_gb: float
    allow_task_network: bool
    log_tail_bytes: int
    keep_work_dirs: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: TimeLimits = field(default_factory=TimeLimits)


class Site:
    """Runs tasks through its backends (the first is the default) and the runtimes that
    answer here; each backend has its own room."""

    def __init__(
        self,
        *,
        config: SiteConfig,
        store: TaskStore,
        backends: Sequence[Backend],
        runtimes: dict[str, Runtime],
        default_runtime: str | None,
        unavailable: dict[str, str],
        transfers: Transfers,
        credentials: CredentialResolver | None = None,
        access_checks: Mapping[str, AccessCheck] | None = None,
        unavailable_backends: Mapping[str, str] | None = None,
        replica_id: str = "",
        claim_at_dispatch: bool = False,
    ) -> None:
        """``claim_at_dispatch``: claim each task before handing it to a worker (other hub
        replicas share the store), instead of letting the worker claim it with its first
        write (one write fewer per task)."""
        if not backends:
            raise ValueError("a site needs at least one backend")
        self.config = config
        self.store = store
        self.backends = {b.name: b for b in backends}
        self.default_backend = backends[0].name
        self.runtimes = runtimes
        self.default_runtime = default_runtime
        self.transfers = transfers
        self.storage = transfers.router
        self.credentials = credentials or CredentialResolver(())
        self.capacities = {
            b.name: Capacity(
                cpus=b.capabilities.total.cpus,
                ram_gb=b.capabilities.total.ram_gb,
                disk_gb=b.capabilities.total.disk_gb,
                default_cpus=config.default_cpu_cores,
                default_ram_gb=config.default_ram_gb,
            )
            for b in backends
        }
        self.admission = Admission(
            backends=[b.capabilities for b in backends],
            check=lambda name, spec: self.backends[name].check(spec),
            runtimes=runtimes,
            default_runtime=default_runtime,
            unavailable=unavailable,
            unavailable_backends=unavailable_backends or {},
            storage=transfers.router,
            capacities=self.capacities,
            allow_task_network=config.allow_task_network,
            access_checks=access_checks,
        )
        self.on_capacity_freed: Callable[[], None] = lambda: None
        # This hub process among the replicas sharing the store (recorded with each attempt).
        self.replica_id = replica_id
        self.claim_at_dispatch = claim_at_dispatch
        self._unfollowed: set[str] = set()  # active tasks no backend followed at the last look
        self._detached = False

    @property
    def backend(self) -> Backend:
        """The default backend: tasks that name none run there."""
        return self.backends[self.default_backend]

    @property
    def capacity(self) -> Capacity:
        """The default backend's room."""
        return self.capacities[self.default_backend]

    def backend_of(self, task: Task) -> str:
        name = task.spec.backend_parameter("backend")
        return name if name in self.backends else self.default_backend

    def runtime_of(self, task: Task) -> str | None:
        name = task.spec.backend_parameter("runtime")
        if name:
            return name
        backend = self.backends[self.backend_of(task)].capabilities
        return backend.default_runtime or self.default_runtime

    # -- dispatch ----------------------------------------------------------------------------
    def try_dispatch(self, task: Task) -> bool:
        """Start ``task`` if its backend has room; False (and nothing changed) if it must wait."""
        name = self.backend_of(task)
        capacity = self.capacities[name]
        if not capacity.reserve(task.id, capacity.booking(task.spec)):
            return False
        runtime_name = self.runtime_of(task)
        runtime = self.runtimes.get(runtime_name) if runtime_name else None
        if runtime is None:
            self._release(task.id)
            self.fail(task, "the task's runtime is no longer available on this site")
            return True
        attempt_dir = self.config.work_dir / task.id / str(len(task.logs) + 1)
        # The worker claims the task (QUEUED → INITIALIZING through the state machine) as its
        # first write, together with RUNNING when it has nothing to stage.
        meta = host_metadata(runtime.name, name, attempt_dir)
        if self.replica_id:
            meta["replica"] = self.replica_id
        initializing = Event.state(task.id, State.INITIALIZING, **meta)
        claim: Event | None = initializing
        if self.claim_at_dispatch or not self.backends[name].capabilities.workers_in_hub:
            # Claimed here, before any worker starts: when other replicas share the store
            # (one of them may have taken the task), and for jobs outside the hub (no batch
            # job for a task that is gone).
            try:
                task = self.store.append(initializing)
            except InvalidTransition:
                self._release(task.id)
                return True
            claim = None
        job = self._job(task, attempt_dir, runtime, claim=claim)
        try:
            self.backends[name].submit(job, self._done, self.lost)
        except Exception as exc:
            if not isinstance(exc, BackendUnavailable):
                log.exception("backend %s failed to take task %s", name, task.id)
            self._release(task.id)
            self.fail(task, f"backend {name} could not take the task: {exc}")
        return True

    def resume(self, task: Task, attempt_dir: Path, runtime: Runtime, journal: Journal) -> None:
        """Continue an attempt a previous hub process started (it runs already: no room check)."""
        name = self.backend_of(task)
        capacity = self.capacities[name]
        capacity.reserve(task.id, capacity.booking(task.spec), force=True)
        job = self._job(task, attempt_dir, runtime, resume=journal)
        self.backends[name].submit(job, self._done, self.lost)

    def reattach(self, name: str, mine: Callable[[Task], bool]) -> set[str]:
        """Follow again the jobs of backend ``name`` that outlived the hub that started them
        (of ``mine`` tasks); their ids."""
        kept = self.backends[name].reattach(self.current, mine, self._done, self.lost)
        capacity = self.capacities[name]
        for task_id in kept:
            capacity.reserve(task_id, capacity.booking(self.current(task_id).spec), force=True)
        return kept

    def recover(self) -> None:
        """Take over every task a previous hub left (this hub alone uses the store)."""
        recovery.recover(self, lambda task: True)

    def has_room(self) -> bool:
        """Whether a task with the default booking could start now on some backend."""
        return self.default_slots() > 0

    def default_slots(self) -> int:
        return sum(c.default_slots() for c in self.capacities.values())

    def room_for(self, task: Task) -> bool:
        """Whether ``task``'s backend could take a task with the default booking now."""
        return self.capacities[self.backend_of(task)].default_slots() > 0

    def held(self) -> frozenset[str]:
        """Tasks holding a booking here (their workers are starting or running)."""
        return frozenset().union(*(c.held() for c in self.capacities.values()))

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
        capacity = self.capacities[self.backend_of(task)]
        booked = capacity.booking(task.spec)
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
            placement=placement_of(task.spec),
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
        if any(c.release(task_id) for c in self.capacities.values()):
            self.on_capacity_freed()

    def _done(self, task: Task) -> None:
        self._release(task.id)
        if not self.backends[self.backend_of(task)].capabilities.workers_in_hub:
            # A job's worker may have been killed before it stopped its executor (the
            # scheduler's kill after a cancel): an ended task keeps nothing running.
            self._stop_leftover(task)

    def _stop_leftover(self, task: Task) -> None:
        """Remove what a lost worker's executors left running, when this site's runtime can
        reach it (the same engine), so that another attempt does not run beside it."""
        name = task.logs[-1].metadata.get("runtime") if task.logs else None
        runtime = self.runtimes.get(str(name)) if name else None
        if runtime is None:
            return
        try:
            runtime.sweep(lambda task_id: task_id != task.id)
        except RuntimeFailure as exc:
            log.warning("could not stop what the lost worker of task %s left: %s", task.id, exc)

    def reconcile(self) -> int:
        """End or retry this hub's active tasks that no worker or job follows any more (a
        worker that died without reporting); how many. A task must be seen unfollowed twice
        in a row, so one whose worker is just being handed over is left alone."""
        followed = frozenset().union(*(b.tracked() for b in self.backends.values()))
        unfollowed = {
            t.id: t
            for t in self.store.in_states(ACTIVE, limit=100_000)
            if t.id not in followed
            and t.logs
            and t.logs[-1].metadata.get("replica", "") == self.replica_id
        }
        lost = [unfollowed[i] for i in unfollowed.keys() & self._unfollowed]
        self._unfollowed = set(unfollowed) - {t.id for t in lost}
        for task in lost:
            self.lost(task, "no worker of this hub holds it any more (it ended without reporting)")
        return len(lost)

    def lost(self, task: Task, reason: str) -> None:
        """A job ended without its worker reporting (killed, its node lost): end the task
        with ``reason``, or queue it again when its retry policy allows another attempt."""
        self._release(task.id)
        current = self.store.get(task.id)
        if current.state.terminal:
            return
        self._stop_leftover(current)
        if current.state is State.QUEUED:  # its worker never started
            self.fail(current, reason)
            return
        retry = self.config.retry
        if current.state is not State.CANCELING and retry.retries(current):
            attempt, attempts = len(current.logs), retry.attempts_of(current)
            with suppress(InvalidTransition):
                self.store.append(
                    Event.state(
                        task.id,
                        State.QUEUED,
                        f"attempt {attempt} of {attempts} ended in a system error: {reason}; "
                        f"retrying in {retry.delay(attempt):g} s",
                    )
                )
            return
        self.fail(current, reason)

    # -- ending tasks --------------------------------------------------------------------------
    def cancel(self, task: Task) -> Task:
        """Cancel a task the caller may see; terminal tasks are left as they are."""
        if task.state is State.QUEUED:
            try:
                canceled = self.store.append(Event.state(task.id, State.CANCELED, CANCELED_BY_USER))
            except InvalidTransition:
                task = self.store.get(task.id)  # dispatched meanwhile: cancel the attempt
            else:
                # A job may wait for it in a batch queue: its worker would find it canceled,
                # but the job need not wait for its turn to learn that.
                if task.id in self.held():
                    self.backends[self.backend_of(task)].cancel(task.id)
                return canceled
        if task.state in (State.INITIALIZING, State.RUNNING, State.PAUSED):
            try:
                task = self.store.append(Event.state(task.id, State.CANCELING))
            except InvalidTransition:
                return self.store.get(task.id)
        backend = self.backends[self.backend_of(task)]
        if task.state is State.CANCELING and not backend.cancel(task.id):
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
        for backend in self.backends.values():
            backend.close()
