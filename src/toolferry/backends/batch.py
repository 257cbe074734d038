"""What every batch scheduler backend shares: each attempt's worker runs as one batch job.

The hub writes the attempt's job file (``job.json``, read by ``python -m toolferry.worker``)
and a job script into the attempt's folder — which must lie on a filesystem the compute nodes
share — submits the script, and follows the job with one status command for all its jobs.
The worker reports to the store itself; when a job ends without its worker having reported an
end (killed, out of memory, its node lost), the site ends or retries the task with the
scheduler's words for it. A scheduler is a :class:`Dialect`: its commands, how to read their
output, and its state table (Slurm in :mod:`toolferry.backends.slurm`; PBS or HTCondor would be
one more dialect).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from toolferry.backends.base import BackendCapabilities, BackendUnavailable, Job, LostJob, Size
from toolferry.domain.errors import NotFound
from toolferry.domain.states import State
from toolferry.domain.task import Task, TaskSpec
from toolferry.runtimes.base import Runtime

log = logging.getLogger(__name__)

JOB_PREFIX = "toolferry-"
_NAME = re.compile(rf"^{JOB_PREFIX}(?P<task>[A-Za-z0-9]+)-(?P<attempt>\d+)$")
_OUTPUT_TAIL = 2000  # bytes of a lost job's output quoted to the user


class Phase(Enum):
    PENDING = "pending"  # waiting in the scheduler's queue
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True, kw_only=True)
class JobStatus:
    job_id: str
    name: str
    phase: Phase
    state: str  # the scheduler's own word, e.g. OUT_OF_MEMORY
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class BatchJob:
    """One job to submit: its script and what it asks of the scheduler."""

    name: str
    script: Path
    output: Path  # the job's stdout and stderr
    work_dir: Path
    cpus: int
    ram_mb: int | None = None  # None: the cluster's default
    tmp_mb: int | None = None
    time_minutes: int | None = None
    parameters: Mapping[str, str]  # the dialect's own backend parameters the task set


class Dialect(Protocol):
    """One batch scheduler: its commands and how to read what they print."""

    name: str
    description: str
    parameters: Mapping[str, str]  # backend parameters it reads, and what they accept

    def submit_command(self, job: BatchJob) -> list[str]: ...

    def job_id(self, stdout: str) -> str:
        """The job id in what the submit command printed."""
        ...

    def status_command(self) -> list[str]:
        """Lists this user's jobs, ended ones included while the scheduler remembers them."""
        ...

    def parse_status(self, stdout: str) -> dict[str, JobStatus]: ...

    def cancel_command(self, job_id: str) -> list[str]: ...

    def size_command(self) -> list[str]: ...

    def parse_size(self, stdout: str) -> tuple[Size, Size]:
        """(total, largest node) from what the size command printed."""
        ...

    def check(self, parameters: Mapping[str, str]) -> str | None:
        """Why these values of its parameters cannot be used, naming the key; or None."""
        ...


@dataclass
class _Tracked:
    task_id: str
    job_id: str
    attempt: int  # the attempt this job runs (1-based)
    output: Path
    current: Callable[[str], Task]
    on_done: Callable[[Task], None]
    on_lost: LostJob
    seen: bool = False  # the status command listed it at least once


Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise BackendUnavailable(f"{argv[0]} is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(f"{shlex.join(argv)} did not answer in {timeout:g} s") from None


def _checked(run: Runner, argv: list[str]) -> str:
    done = run(argv)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise BackendUnavailable(f"{shlex.join(argv[:1])}: {message}")
    return done.stdout


class BatchBackend:
    """Runs each attempt's worker as a job of a batch scheduler (see the module docstring)."""

    def __init__(
        self,
        dialect: Dialect,
        *,
        settings: Mapping[str, Any],
        work_dir: Path,
        python: str,
        poll_s: float = 1.0,
        runtimes: tuple[str, ...] | None = None,
        run: Runner = run_command,
    ) -> None:
        """``settings``: the hub's settings as JSON values, for the workers (written into
        each job file, readable by its owner only); ``work_dir``: where attempts' folders
        are; ``python``: the interpreter the job runs
        the worker with (the same path on every node). Raises :class:`BackendUnavailable`."""
        self.name = dialect.name
        self.dialect = dialect
        self._settings = dict(settings)
        self._work_dir = work_dir
        self._python = python
        self._poll_s = poll_s
        self._run = run
        total, largest = dialect.parse_size(_checked(run, dialect.size_command()))
        if total.cpus <= 0:
            raise BackendUnavailable(f"{dialect.name} reports no usable node")
        self.capabilities = BackendCapabilities(
            name=dialect.name,
            description=dialect.description,
            total=total,
            largest=largest,
            parameters=dialect.parameters,
            runtimes=runtimes,
            workers_in_hub=False,
        )
        self.runtimes: dict[str, Runtime] = {}  # the worker builds its own on the node
        self._jobs: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- Backend -------------------------------------------------------------------------------
    def check(self, spec: TaskSpec) -> str | None:
        return self.dialect.check(self._own_parameters(spec))

    def submit(self, job: Job, on_done: Callable[[Task], None], on_lost: LostJob) -> None:
        task = job.task
        attempt = int(job.attempt_dir.name)
        job_file = job.attempt_dir / "job.json"
        script = job.attempt_dir / "job.sh"
        try:
            job.attempt_dir.mkdir(parents=True, exist_ok=True)
            _write_private(job_file, json.dumps(self._job_file(job)))
            script.write_text(
                "#!/bin/sh\n"
                f"# toolferry task {task.id}, attempt {attempt}\n"
                f"exec {shlex.quote(self._python)} -m toolferry.worker {shlex.quote(str(job_file))}\n"
            )
            script.chmod(0o700)
        except OSError as exc:
            raise BackendUnavailable(
                f"cannot write the job's files in {job.attempt_dir}: {exc}"
            ) from exc
        options = job.options
        limits = (options.initializing_limit_s, options.running_limit_s)
        minutes = None
        if all(limit is not None for limit in limits):
            # The worker ends the attempt at its limits; the job's own limit is a backstop.
            minutes = math.ceil(sum(limit or 0 for limit in limits) / 60) + 1
        disk = task.spec.resources.disk_gb if task.spec.resources else None
        batch = BatchJob(
            name=f"{JOB_PREFIX}{task.id}-{attempt}",
            script=script,
            output=job.attempt_dir / "job.out",
            work_dir=job.attempt_dir,
            cpus=max(1, math.ceil(options.cpu_cores or 1)),
            ram_mb=math.ceil(options.ram_gb * 1024) if options.ram_gb else None,
            tmp_mb=math.ceil(disk * 1024) if disk else None,
            time_minutes=minutes,
            parameters=self._own_parameters(task.spec),
        )
        try:
            job_id = self.dialect.job_id(_checked(self._run, self.dialect.submit_command(batch)))
        except ValueError as exc:
            raise BackendUnavailable(str(exc)) from exc
        log.info("task %s: attempt %d is %s job %s", task.id, attempt, self.name, job_id)
        self._track(
            _Tracked(
                task_id=task.id,
                job_id=job_id,
                attempt=attempt,
                output=batch.output,
                current=job.sink.current,
                on_done=on_done,
                on_lost=on_lost,
            )
        )

    def cancel(self, task_id: str) -> bool:
        with self._lock:
            tracked = self._jobs.get(task_id)
        if tracked is None:
            return False
        # The worker gets SIGTERM, stops its executor and reports the task CANCELED; a job
        # still pending just goes, and the site ends its task when the job is gone.
        done = self._run(self.dialect.cancel_command(tracked.job_id))
        if done.returncode != 0:
            log.warning("cancelling %s job %s: %s", self.name, tracked.job_id, done.stderr.strip())
        return True

    def tracked(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._jobs)

    def reattach(
        self,
        current: Callable[[str], Task],
        mine: Callable[[Task], bool],
        on_done: Callable[[Task], None],
        on_lost: LostJob,
    ) -> set[str]:
        jobs = self.dialect.parse_status(_checked(self._run, self.dialect.status_command()))
        kept: set[str] = set()
        for status in jobs.values():
            match = _NAME.match(status.name)
            if status.phase is Phase.ENDED or match is None:
                continue
            try:
                task = current(match["task"])
            except NotFound:
                continue  # another hub's job
            attempt = int(match["attempt"])
            waiting = task.state is State.QUEUED and len(task.logs) == attempt - 1
            if task.state.terminal or not (waiting or len(task.logs) == attempt) or not mine(task):
                continue  # ended meanwhile; its worker finds out and stops
            self._track(
                _Tracked(
                    task_id=task.id,
                    job_id=status.job_id,
                    attempt=attempt,
                    output=self._work_dir / task.id / str(attempt) / "job.out",
                    current=current,
                    on_done=on_done,
                    on_lost=on_lost,
                )
            )
            kept.add(task.id)
        return kept

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    # -- following jobs ----------------------------------------------------------------------
    def _track(self, tracked: _Tracked) -> None:
        with self._lock:
            self._jobs[tracked.task_id] = tracked
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._follow, name=f"{self.name}-jobs", daemon=True
                )
                self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self._poll_s):
            with self._lock:
                if not self._jobs:
                    continue
            try:
                self.poll()
            except Exception:
                log.exception("following %s jobs failed; trying again", self.name)

    def poll(self) -> int:
        """Look at every followed job once; hand the ended ones to the site. How many ended."""
        stdout = _checked(self._run, self.dialect.status_command())
        statuses = self.dialect.parse_status(stdout)
        with self._lock:
            tracked = list(self._jobs.values())
        ended = 0
        for job in tracked:
            status = statuses.get(job.job_id)
            if status is not None and status.phase is not Phase.ENDED:
                job.seen = True
                continue
            with self._lock:
                self._jobs.pop(job.task_id, None)
            ended += 1
            self._ended(job, status)
        return ended

    def _ended(self, job: _Tracked, status: JobStatus | None) -> None:
        task = job.current(job.task_id)
        # The worker reported the attempt's end: the task ended, or went back to the queue
        # for a retry after this attempt (QUEUED with this attempt's log).
        reported = task.state.terminal or (
            task.state is State.QUEUED and len(task.logs) >= job.attempt
        )
        if reported:
            job.on_done(task)
            return
        what = (
            f"{status.state}" + (f", {status.reason}" if status.reason not in ("", "None") else "")
            if status is not None
            else "no longer known to the scheduler"
        )
        reason = (
            f"{self.name} job {job.job_id} ended ({what}) without its worker reporting the "
            "task's end"
        )
        tail = _tail(job.output)
        if tail:
            reason += f"; the job's output ends with: {tail}"
        job.on_lost(task, reason)

    # -- job files -----------------------------------------------------------------------------
    def _own_parameters(self, spec: TaskSpec) -> dict[str, str]:
        params = (spec.resources.backend_parameters if spec.resources else None) or {}
        return {k: v for k, v in params.items() if k in self.dialect.parameters}

    def _job_file(self, job: Job) -> dict[str, Any]:
        options = job.options
        return {
            "task_id": job.task.id,
            "attempt_dir": str(job.attempt_dir),
            "runtime": job.runtime.name,
            "claim": job.claim.data if job.claim is not None else None,
            "options": {
                "log_tail_bytes": options.log_tail_bytes,
                "cpu_cores": options.cpu_cores,
                "ram_gb": options.ram_gb,
                "network": options.network,
                "keep_work_dir": options.keep_work_dir,
                "initializing_limit_s": options.initializing_limit_s,
                "running_limit_s": options.running_limit_s,
                "placement": list(options.placement),
            },
            "settings": self._settings,
        }


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (it holds the hub's settings)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _OUTPUT_TAIL))
            return " ".join(fh.read().decode("utf-8", errors="replace").split())
    except OSError:
        return ""
