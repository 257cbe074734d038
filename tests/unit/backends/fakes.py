"""Fakes for backend, site and scheduler tests: an in-memory Slurm behind a command runner, a
backend that records what it is asked, and a site on SQLite with the fake runtime."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.unit.fakes import FakeRuntime
from toolferry.agent.site import Site, SiteConfig
from toolferry.backends.base import Backend, BackendCapabilities, Job, LostJob, Size
from toolferry.domain.events import Event
from toolferry.domain.ids import new_task_id
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Resources, Task, TaskSpec
from toolferry.runtimes.base import Runtime
from toolferry.storage.cache import InputCache
from toolferry.storage.router import default_router
from toolferry.store.db import Database
from toolferry.store.sql import SqlTaskStore
from toolferry.worker.transfers import Transfers

__all__ = [
    "NODE",
    "FakeBackend",
    "FakeSlurm",
    "claim",
    "make_site",
    "new_task",
    "open_store",
    "spec",
    "transfers",
]

# One idle node of this machine's Slurm 22.05: ``sinfo --noheader --Node
# --format=%N|%c|%m|%d|%T|%P`` (name, cores, memory MB, tmp disk MB, state, partition).
NODE = "vm|2|23081|258019|idle|debug*\n"


def spec(
    *,
    cpus: int | None = None,
    ram_gb: float | None = None,
    disk_gb: float | None = None,
    stdin: str | None = None,
    strict: bool | None = None,
    parameters: Mapping[str, str] | None = None,
    **more: str,
) -> TaskSpec:
    """A one-executor task asking for these resources and backend parameters (``parameters``
    and ``more``)."""
    params = {**(parameters or {}), **more}
    resources = None
    if cpus or ram_gb or disk_gb or params or strict:
        resources = Resources(
            cpu_cores=cpus,
            ram_gb=ram_gb,
            disk_gb=disk_gb,
            backend_parameters=params or None,
            backend_parameters_strict=strict,
        )
    return TaskSpec(
        executors=(Executor(image="busybox", command=("true",), stdin=stdin),),
        resources=resources,
    )


@contextmanager
def open_store(path: Path) -> Iterator[SqlTaskStore]:
    db = Database.connect(f"sqlite:///{path}")
    try:
        yield SqlTaskStore(db)
    finally:
        db.close()


def new_task(store: SqlTaskStore, task_spec: TaskSpec | None = None, owner: str = "alice") -> Task:
    """A new QUEUED task in ``store``."""
    task = Task(
        id=new_task_id(), owner=owner, spec=task_spec or spec(), creation_time=datetime.now(UTC)
    )
    return store.create(task)


def claim(store: SqlTaskStore, task: Task, *more: State, **metadata: str) -> Task:
    """Start an attempt of ``task`` as a worker would (INITIALIZING), then go through ``more``."""
    events = [Event.state(task.id, State.INITIALIZING, **metadata)]
    events += [Event.state(task.id, state) for state in more]
    return store.append(*events)


def transfers(root: Path) -> Transfers:
    return Transfers(
        router=default_router([root]), cache=InputCache(root / "cache", max_bytes=1 << 20)
    )


def make_site(
    store: SqlTaskStore,
    root: Path,
    backends: Sequence[Backend],
    *,
    runtimes: Mapping[str, Runtime] | None = None,
    retry: RetryPolicy | None = None,
    replica_id: str = "",
    claim_at_dispatch: bool = False,
) -> Site:
    """A site of ``backends`` (the first the default) on ``store``, with the fake runtime."""
    return Site(
        config=SiteConfig(
            name="test",
            work_dir=root / "work",
            default_cpu_cores=1,
            default_ram_gb=0,
            allow_task_network=False,
            log_tail_bytes=1024,
            retry=retry or RetryPolicy(),
        ),
        store=store,
        backends=backends,
        runtimes=dict(runtimes) if runtimes is not None else {"fake": FakeRuntime()},
        default_runtime="fake",
        unavailable={},
        transfers=transfers(root),
        replica_id=replica_id,
        claim_at_dispatch=claim_at_dispatch,
    )


@dataclass
class _Submitted:
    job: Job | None  # None: a job found again by reattach
    on_done: Callable[[Task], None]
    on_lost: LostJob


class FakeBackend:
    """A backend that records submits and cancels and runs nothing; tests end its jobs with
    :meth:`done` and :meth:`lose`."""

    def __init__(
        self,
        name: str,
        *,
        cpus: float = 2,
        ram_gb: float = 8,
        largest: Size | None = None,
        parameters: Mapping[str, str] | None = None,
        runtimes: tuple[str, ...] | None = None,
        default_runtime: str | None = None,
        workers_in_hub: bool = True,
        problem: str | None = None,
    ) -> None:
        total = Size(cpus=cpus, ram_gb=ram_gb)
        self.name = name
        self.capabilities = BackendCapabilities(
            name=name,
            description=f"fake backend {name}",
            total=total,
            largest=largest or total,
            parameters=dict(parameters or {}),
            runtimes=runtimes,
            default_runtime=default_runtime,
            workers_in_hub=workers_in_hub,
        )
        self.runtimes: dict[str, Runtime] = {}
        self.problem = problem
        self.jobs: dict[str, _Submitted] = {}
        self.submitted: list[str] = []  # task ids, in order
        self.canceled: list[str] = []
        self.live: set[str] = set()  # task ids :meth:`reattach` finds jobs of
        self.closed = False

    def check(self, spec: TaskSpec) -> str | None:
        return self.problem

    def submit(self, job: Job, on_done: Callable[[Task], None], on_lost: LostJob) -> None:
        self.jobs[job.task.id] = _Submitted(job, on_done, on_lost)
        self.submitted.append(job.task.id)

    def cancel(self, task_id: str) -> bool:
        self.canceled.append(task_id)
        return task_id in self.jobs

    def tracked(self) -> frozenset[str]:
        return frozenset(self.jobs)

    def reattach(
        self,
        current: Callable[[str], Task],
        mine: Callable[[Task], bool],
        on_done: Callable[[Task], None],
        on_lost: LostJob,
    ) -> set[str]:
        kept = set()
        for task_id in self.live:
            task = current(task_id)
            if not task.state.terminal and mine(task):
                self.jobs[task_id] = _Submitted(None, on_done, on_lost)
                kept.add(task_id)
        return kept

    def close(self) -> None:
        self.closed = True

    def done(self, task: Task) -> None:
        self.jobs.pop(task.id).on_done(task)

    def lose(self, task: Task, reason: str) -> None:
        self.jobs.pop(task.id).on_lost(task, reason)


@dataclass
class _SlurmJob:
    name: str
    state: str
    reason: str


@dataclass
class FakeSlurm:
    """A small in-memory Slurm behind :data:`toolferry.backends.batch.Runner`: ``sinfo``
    prints :attr:`sinfo`, ``sbatch`` queues a PENDING job and prints its id, ``squeue``
    lists the jobs with the states tests set, ``scancel`` cancels. Every command is kept in
    :attr:`commands`; :attr:`fail` makes a command exit with an error."""

    sinfo: str = NODE
    commands: list[list[str]] = field(default_factory=list)
    jobs: dict[str, _SlurmJob] = field(default_factory=dict)
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)  # command → (code, stderr)
    sbatch_prints: str | None = None  # instead of the job id
    next_id: int = 4711

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(argv)
        command = Path(argv[0]).name
        if command in self.fail:
            code, stderr = self.fail[command]
            return subprocess.CompletedProcess(argv, code, "", stderr)
        if command == "sinfo":
            return self._ok(argv, self.sinfo)
        if command == "sbatch":
            name = next(a.split("=", 1)[1] for a in argv if a.startswith("--job-name="))
            job_id = str(self.next_id)
            self.next_id += 1
            self.jobs[job_id] = _SlurmJob(name=name, state="PENDING", reason="Priority")
            return self._ok(argv, self.sbatch_prints or f"{job_id}\n")
        if command == "squeue":
            lines = [f"{i}|{j.name}|{j.state}|{j.reason}\n" for i, j in self.jobs.items()]
            return self._ok(argv, "".join(lines))
        if command == "scancel":
            job = self.jobs.get(argv[1])
            if job is None:
                message = f"scancel: error: Kill job error on job id {argv[1]}: Invalid job id"
                return subprocess.CompletedProcess(argv, 1, "", message + "\n")
            job.state, job.reason = "CANCELLED", "None"
            return self._ok(argv, "")
        raise AssertionError(f"unexpected command {argv}")

    @staticmethod
    def _ok(argv: list[str], stdout: str) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 0, stdout, "")

    def add(self, job_id: str, name: str, state: str, reason: str = "None") -> None:
        """A job submitted by someone else (e.g. the hub before a restart)."""
        self.jobs[job_id] = _SlurmJob(name=name, state=state, reason=reason)

    def set(self, job_id: str, state: str, reason: str = "None") -> None:
        self.jobs[job_id].state, self.jobs[job_id].reason = state, reason

    def forget(self, job_id: str) -> None:
        """Slurm no longer remembers the job (MinJobAge passed)."""
        del self.jobs[job_id]

    def submitted(self) -> list[list[str]]:
        return [c for c in self.commands if Path(c[0]).name == "sbatch"]

    def ran(self, command: str) -> list[list[str]]:
        return [c for c in self.commands if Path(c[0]).name == command]
