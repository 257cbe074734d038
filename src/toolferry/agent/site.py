"""The hub's own site: its capabilities, capacity, dispatch, cancel and recovery after restart.

Capabilities are data: :meth:`Site.admit` refuses at submission what this site cannot do, so a
task never fails half-way for a reason known up front.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from toolferry.backends.base import Backend, Job
from toolferry.domain.errors import InvalidTask, InvalidTransition
from toolferry.domain.events import Event
from toolferry.domain.rules import has_wildcard
from toolferry.domain.states import ACTIVE, State
from toolferry.domain.task import FileType, Resources, Task, TaskSpec
from toolferry.runtimes.base import Runtime, RuntimeFailure
from toolferry.storage.router import StorageRouter
from toolferry.store.base import TaskStore
from toolferry.worker.journal import Journal, Phase
from toolferry.worker.layout import mount_dir
from toolferry.worker.pipeline import Detached, WorkerOptions, host_metadata

log = logging.getLogger(__name__)

NETWORK_VALUES = ("none", "host")


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


@dataclass(frozen=True)
class Reservation:
    cpus: float
    ram_gb: float


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
        storage: StorageRouter,
    ) -> None:
        self.config = config
        self.store = store
        self.backend = backend
        self.runtimes = runtimes
        self.default_runtime = default_runtime
        self.unavailable = unavailable  # runtime name → why it cannot run here
        self.storage = storage
        self._lock = threading.Lock()
        self._reserved: dict[str, Reservation] = {}
        self.on_capacity_freed: Callable[[], None] = lambda: None
        self._detached = False

    # -- capabilities ------------------------------------------------------------------------
    def backend_parameters(self) -> dict[str, str]:
        """Supported ``resources.backend_parameters`` keys and what they accept."""
        return {
            "backend": f"where the worker runs; one of: {self.backend.name}",
            "runtime": "how executors run; one of: "
            + ", ".join(sorted(self.runtimes))
            + (f" (default {self.default_runtime})" if self.default_runtime else ""),
            "network": "none (default) or host: give executors the host network"
            + ("" if self.config.allow_task_network else " (refused by this site)"),
        }

    def _reservation(self, spec: TaskSpec) -> Reservation:
        res = spec.resources or Resources()
        return Reservation(
            cpus=float(res.cpu_cores) if res.cpu_cores else self.config.default_cpu_cores,
            ram_gb=res.ram_gb if res.ram_gb else self.config.default_ram_gb,
        )

    def admit(self, spec: TaskSpec) -> tuple[TaskSpec, list[str]]:
        """Check ``spec`` against what this site can do; return it with only supported backend
        parameters (lower-cased keys) and the warnings to log. Raises :class:`InvalidTask`."""
        res = spec.resources or Resources()
        supported = self.backend_parameters()
        kept: dict[str, str] = {}
        warnings: list[str] = []
        for key, value in (res.backend_parameters or {}).items():
            lower = key.lower()
            if lower not in supported:
                if res.backend_parameters_strict:
                    raise InvalidTask(
                        f"resources.backend_parameters.{key}",
                        "is not supported by this service (backend_parameters_strict is set); "
                        f"supported keys: {', '.join(sorted(supported))}",
                    )
                warnings.append(f"backend parameter {key!r} is not supported here and was ignored")
                continue
            kept[lower] = value
        field = "resources.backend_parameters"
        if "backend" in kept and kept["backend"] != self.backend.name:
            raise InvalidTask(
                f"{field}.backend",
                f"unknown backend {kept['backend']!r}; available: {self.backend.name}",
            )
        runtime = kept.get("runtime", self.default_runtime)
        if runtime is None or runtime not in self.runtimes:
            why = "; ".join(f"{n}: {r}" for n, r in sorted(self.unavailable.items()))
            if runtime is None:
                raise InvalidTask(
                    f"{field}.runtime", f"no runtime is available on this site ({why})"
                )
            reason = self.unavailable.get(runtime, "unknown runtime")
            raise InvalidTask(
                f"{field}.runtime",
                f"runtime {runtime!r} cannot be used here: {reason}; available: "
                + (", ".join(sorted(self.runtimes)) or "none"),
            )
        network = kept.get("network", "none")
        if network not in NETWORK_VALUES:
            raise InvalidTask(
                f"{field}.network", f"must be one of {', '.join(NETWORK_VALUES)}, got {network!r}"
            )
        if network == "host" and not self.config.allow_task_network:
            raise InvalidTask(f"{field}.network", "this site does not let tasks use the network")
        need = self._reservation(spec)
        if need.cpus > self.config.capacity_cpus:
            raise InvalidTask(
                "resources.cpu_cores",
                f"asks for {need.cpus:g} cores; this site has {self.config.capacity_cpus:g}",
            )
        if need.ram_gb > self.config.capacity_ram_gb:
            raise InvalidTask(
                "resources.ram_gb",
                f"asks for {need.ram_gb:g} GB; this site has {self.config.capacity_ram_gb:g} GB",
            )
        for i, inp in enumerate(spec.inputs):
            if inp.content is None and inp.url:
                self._check_url(f"inputs[{i}].url", inp.url, write=False)
                if inp.type is FileType.DIRECTORY and inp.url.startswith(("http:", "https:")):
                    raise InvalidTask(
                        f"inputs[{i}].type", "DIRECTORY inputs cannot be fetched over HTTP"
                    )
        for i, out in enumerate(spec.outputs):
            self._check_url(f"outputs[{i}].url", out.url, write=True)
        paths = [i.path.rstrip("/") for i in spec.inputs]
        if len(set(paths)) != len(paths):
            raise InvalidTask("inputs", "two inputs share one path")
        chosen = self.runtimes[runtime]
        self._check_paths(spec, chosen)
        warnings += self._unenforced(spec, chosen)
        resources = replace(res, backend_parameters=kept or None) if spec.resources else None
        return replace(spec, resources=resources), warnings

    @staticmethod
    def _check_paths(spec: TaskSpec, runtime: Runtime) -> None:
        """Refuse paths the runtime cannot mount or enter, naming the field."""
        fields: list[tuple[str, list[str]]] = []
        for i, ex in enumerate(spec.executors):
            if ex.workdir:
                fields.append((f"executors[{i}].workdir", [ex.workdir]))
            for name in ("stdout", "stderr"):
                value = getattr(ex, name)
                if value:  # written by the host into the folder mounted there
                    fields.append((f"executors[{i}].{name}", [posixpath.dirname(value)]))
        fields += [(f"inputs[{i}].path", [inp.path]) for i, inp in enumerate(spec.inputs)]
        fields += [(f"volumes[{i}]", [v]) for i, v in enumerate(spec.volumes)]
        for i, out in enumerate(spec.outputs):
            folder = out.path if out.type is FileType.DIRECTORY else posixpath.dirname(out.path)
            fields.append(
                (f"outputs[{i}].path", [mount_dir(out.path) if has_wildcard(out.path) else folder])
            )
        for field, paths in fields:
            problem = runtime.path_problem(paths)
            if problem:
                raise InvalidTask(field, f"{problem} (runtime {runtime.name})")

    @staticmethod
    def _unenforced(spec: TaskSpec, runtime: Runtime) -> list[str]:
        res = spec.resources or Resources()
        caps = runtime.capabilities
        notes = []
        if res.cpu_cores and not caps.enforces_cpu:
            notes.append(
                f"runtime {runtime.name} does not limit cpu_cores; they are reserved for scheduling only"
            )
        if res.ram_gb and not caps.enforces_ram:
            notes.append(
                f"runtime {runtime.name} does not limit ram_gb; it is reserved for scheduling only"
            )
        return notes

    def _check_url(self, field: str, url: str, *, write: bool) -> None:
        reason = self.storage.check(url, write=write)
        if reason:
            raise InvalidTask(field, reason)

    # -- dispatch ----------------------------------------------------------------------------
    def free(self) -> tuple[float, float]:
        with self._lock:
            cpus = self.config.capacity_cpus - sum(r.cpus for r in self._reserved.values())
            ram = self.config.capacity_ram_gb - sum(r.ram_gb for r in self._reserved.values())
        return cpus, ram

    def has_room(self) -> bool:
        """Whether a task with the default reservation could start now."""
        return self.default_slots() > 0

    def default_slots(self) -> int:
        """How many tasks with the default reservation could start now."""
        cpus, ram = self.free()
        eps = 1e-9
        by_cpu = (
            int((cpus + eps) // self.config.default_cpu_cores)
            if self.config.default_cpu_cores
            else 1 << 30
        )
        by_ram = (
            int((ram + eps) // self.config.default_ram_gb)
            if self.config.default_ram_gb
            else 1 << 30
        )
        return max(0, min(by_cpu, by_ram))

    def _reserve(self, task: Task, *, force: bool = False) -> bool:
        need = self._reservation(task.spec)
        with self._lock:
            if task.id in self._reserved:
                return False
            cpus = sum(r.cpus for r in self._reserved.values()) + need.cpus
            ram = sum(r.ram_gb for r in self._reserved.values()) + need.ram_gb
            eps = 1e-9
            if not force and (
                cpus > self.config.capacity_cpus + eps or ram > self.config.capacity_ram_gb + eps
            ):
                return False
            self._reserved[task.id] = need
            return True

    def _release(self, task_id: str) -> None:
        """Give the task's cores and memory back (idempotent)."""
        with self._lock:
            held = self._reserved.pop(task_id, None)
        if held is not None:
            self.on_capacity_freed()

    def _runtime_for(self, task: Task) -> Runtime | None:
        name = task.spec.backend_parameter("runtime") or self.default_runtime
        return self.runtimes.get(name) if name else None

    def _options(self, task: Task) -> WorkerOptions:
        # What the scheduler booked is what the executor gets: a task that asked for nothing
        # is held to the default reservation instead of taking every core.
        booked = self._reservation(task.spec)
        task_id = task.id
        return WorkerOptions(
            executors_done=lambda: self._release(task_id),
            log_tail_bytes=self.config.log_tail_bytes,
            cpu_cores=booked.cpus or None,
            ram_gb=booked.ram_gb or None,
            network=task.spec.backend_parameter("network") == "host",
            keep_work_dir=self.config.keep_work_dirs,
        )

    def _job(
        self,
        task: Task,
        attempt_dir: Path,
        runtime: Runtime,
        resume: Journal | None,
        claim: Event | None = None,
    ) -> Job:
        return Job(
            claim=claim,
            task=task,
            attempt_dir=attempt_dir,
            runtime=runtime,
            storage=self.storage,
            sink=self,
            options=self._options(task),
            resume=resume,
        )

    def try_dispatch(self, task: Task) -> bool:
        """Start ``task`` if there is room; False (and nothing changed) if it must wait."""
        if not self._reserve(task):
            return False
        runtime = self._runtime_for(task)
        attempt_dir = self.config.work_dir / task.id / str(len(task.logs) + 1)
        try:
            if runtime is None:
                self.store.append(
                    Event.state(
                        task.id,
                        State.SYSTEM_ERROR,
                        "the task's runtime is no longer available on this site",
                    )
                )
                self._release(task.id)
                return True
        except InvalidTransition:  # canceled (or taken) between listing and dispatch
            self._release(task.id)
            return True
        # The worker claims the task (QUEUED → INITIALIZING through the state machine) as its
        # first write, together with RUNNING when it has nothing to stage.
        meta = host_metadata(runtime.name, self.backend.name, attempt_dir)
        claim = Event.state(task.id, State.INITIALIZING, **meta)
        self.backend.submit(self._job(task, attempt_dir, runtime, None, claim), self._done)
        return True

    def held(self) -> frozenset[str]:
        """Tasks holding a reservation here (their workers are starting or running)."""
        with self._lock:
            return frozenset(self._reserved)

    def _done(self, task: Task) -> None:
        self._release(task.id)

    def cancel(self, task: Task) -> Task:
        """Cancel a task the caller may see; terminal tasks are left as they are."""
        if task.state is State.QUEUED:
            try:
                return self.store.append(
                    Event.state(task.id, State.CANCELED, "canceled by the user")
                )
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
                task = self.store.append(
                    Event.state(task.id, State.CANCELED, "canceled by the user")
                )
            except InvalidTransition:
                task = self.store.get(task.id)
        return task

    # -- EventSink for workers --------------------------------------------------------------
    def emit(self, *events: Event) -> Task:
        if self._detached:
            raise Detached()
        return self.store.append(*events)

    def detach(self) -> None:
        """Stop reporting for running workers (the hub is stopping): their executors go on
        and the next hub re-attaches to them."""
        self._detached = True

    def current(self, task_id: str) -> Task:
        return self.store.get(task_id)

    # -- recovery after a restart -------------------------------------------------------------
    def recover(self) -> None:
        """Re-attach to attempts that survived a hub restart; end the others in SYSTEM_ERROR."""
        for task in self.store.in_states(ACTIVE, limit=100_000):
            try:
                self._recover(task)
            except Exception:
                log.exception("recovering task %s failed", task.id)
                self._fail(task, "the hub restarted and could not re-attach to this task")

    def _fail(self, task: Task, reason: str) -> None:
        target = State.CANCELED if task.state is State.CANCELING else State.SYSTEM_ERROR
        try:
            self.store.append(Event.state(task.id, target, reason))
        except InvalidTransition:
            log.warning("task %s changed state during recovery", task.id)

    def _recover(self, task: Task) -> None:
        work = task.logs[-1].metadata.get("work_dir") if task.logs else None
        journal = Journal.load(Path(work)) if work else None
        runtime = self.runtimes.get(journal.runtime) if journal else None
        if task.state is State.CANCELING:
            if journal and journal.ref and runtime:
                runtime.kill(journal.ref)
                runtime.cleanup(journal.ref)
            self._fail(task, "canceled by the user")
            return
        if journal is None or work is None:
            # The worker writes its journal once the first executor starts.
            self._fail(
                task,
                "the hub stopped before the task's first executor started (its inputs may "
                "have been staging); submit the task again",
            )
            return
        if runtime is None:
            self._fail(
                task, f"the hub restarted and runtime {journal.runtime!r} is no longer available"
            )
            return
        if journal.phase is Phase.RUNNING and journal.ref is not None:
            try:
                alive = runtime.is_alive(journal.ref)
            except RuntimeFailure as exc:
                self._fail(task, f"the hub restarted and could not reach the runtime: {exc}")
                return
            if alive is None:
                self._fail(
                    task,
                    f"executor {journal.executor} ({journal.ref}) disappeared while the hub was down",
                )
                return
        log.info(
            "re-attaching to task %s (%s, executor %d)", task.id, journal.phase, journal.executor
        )
        self._reserve(task, force=True)
        self.backend.submit(self._job(task, Path(work), runtime, journal), self._done)
