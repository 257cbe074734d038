"""The worker: one attempt of one task as a fixed sequence of steps and one finalizer.

Steps run in order (stage inputs → executors → stage outputs); the first system failure stops
them. Outputs are staged even after an executor error, since users need them to debug. The
finalizer always reports exactly one end state and releases what the attempt held.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from toolferry.domain.errors import InvalidTransition
from toolferry.domain.events import Event, now
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.runtimes.base import ExecSpec, Runtime, RuntimeFailure
from toolferry.storage.base import StorageError
from toolferry.worker.janitor import later
from toolferry.worker.journal import Journal, Phase
from toolferry.worker.layout import Layout
from toolferry.worker.staging import StagingFailed, fetch_inputs, find_outputs, upload_outputs
from toolferry.worker.transfers import CredentialLookup, Transfers, no_credentials

log = logging.getLogger(__name__)


class SystemFailure(Exception):
    """Something outside the executors failed; the message is shown to the user."""


class Canceled(Exception):
    """The task was canceled while this attempt ran."""


class NotClaimed(Exception):
    """The task was no longer QUEUED when this worker tried to take it (canceled meanwhile)."""


class Detached(Exception):
    """The hub that ran this worker stopped: leave the executor running, report nothing, so
    the next hub re-attaches to it."""


class EventSink(Protocol):
    def emit(self, *events: Event) -> Task:
        """Record ``events`` (one transaction); raises InvalidTransition like the store."""
        ...

    def current(self, task_id: str) -> Task: ...


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    log_tail_bytes: int = 10 * 1024
    cpu_cores: float | None = None
    ram_gb: float | None = None
    network: bool = False
    keep_work_dir: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Time limits of this attempt's states (None: none); past one, the attempt is stopped and
    # ends in SYSTEM_ERROR saying which limit it hit.
    initializing_limit_s: float | None = None
    running_limit_s: float | None = None
    # Where executors may run, for runtimes that place them on nodes (Swarm constraints).
    placement: tuple[str, ...] = ()
    # Called once the executors are done: staging outputs does not use the cores and memory
    # the task reserved, so the next task may start meanwhile.
    executors_done: Callable[[], None] = lambda: None


def _tail(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


class Worker:
    """Runs one attempt. ``run`` never raises: every outcome ends in a reported state."""

    def __init__(
        self,
        *,
        task: Task,
        attempt_dir: Path,
        runtime: Runtime,
        transfers: Transfers,
        sink: EventSink,
        options: WorkerOptions,
        resume: Journal | None = None,
        claim: Event | None = None,
        credentials: CredentialLookup = no_credentials,
    ) -> None:
        """``claim`` is the INITIALIZING event that makes the QUEUED task this worker's;
        ``resume`` instead continues an attempt a previous hub process started."""
        self.task = task
        self.claim = claim
        self.layout = Layout(attempt_dir)
        self.runtime = runtime
        self.transfers = transfers
        self.credentials = credentials
        self.sink = sink
        self.options = options
        self.resume = resume
        self._canceled = threading.Event()
        self._expired: str | None = None
        self._timer: threading.Timer | None = None
        self._ref: str | None = None
        self._finished_ref: str | None = None
        # The last executor's end, held back to be written with the final state when there is
        # nothing to stage out in between (one write instead of two).
        self._held: list[Event] = []
        self._ran = resume is not None and resume.phase is not Phase.STAGING_IN
        self._journal = resume or Journal(
            task_id=task.id,
            attempt=len(task.logs) + (claim is not None),
            runtime=runtime.name,
            phase=Phase.STAGING_IN,
        )

    # -- control ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the attempt to stop: the running executor is killed, the finalizer reports."""
        self._canceled.set()
        ref = self._ref
        if ref is not None:
            try:
                self.runtime.kill(ref)
            except RuntimeFailure:
                log.exception("could not kill executor %s of task %s", ref, self.task.id)

    def expire(self, reason: str) -> None:
        """Stop the attempt for a time limit: it ends in SYSTEM_ERROR with ``reason``."""
        self._expired = reason
        self.cancel()

    def _limit(self, state: State, seconds: float | None) -> None:
        """Replace the running time limit by ``seconds`` in ``state`` (None: no limit)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if seconds is not None:
            reason = f"{state} for more than {seconds:g} s: the time limit of that state"
            self._timer = threading.Timer(seconds, self.expire, args=(reason,))
            self._timer.daemon = True
            self._timer.start()

    def _check_canceled(self) -> None:
        if self._canceled.is_set():
            raise Canceled()

    def _emit(self, *events: Event) -> None:
        try:
            self.task = self.sink.emit(*events)
        except InvalidTransition as exc:
            current = self.sink.current(self.task.id)
            self.task = current
            if current.state is State.CANCELING:
                self._canceled.set()
                raise Canceled() from exc
            raise

    def _take(self, *then: Event) -> None:
        """Emit the claim (and what follows it at once); NotClaimed if the task moved on."""
        if self.claim is None:
            if then:
                self._emit(*then)
            return
        try:
            self.task = self.sink.emit(self.claim, *then)
        except InvalidTransition as exc:
            self.task = self.sink.current(self.task.id)
            raise NotClaimed() from exc

    def _save(self, *, persist: bool = True, **changes: object) -> None:
        """Update the journal; write it only where a restarted hub needs it (writes cost)."""
        self._journal = replace(self._journal, **changes)  # type: ignore[arg-type]
        if persist:
            self._journal.save(self.layout.attempt_dir)
            self._cleanup_finished()

    def _cleanup_finished(self) -> None:
        # An ended executor is released only once the journal no longer points at it, so a
        # restart in between re-reads its exit code instead of finding it gone.
        ref, self._finished_ref = self._finished_ref, None
        if ref is not None:
            runtime = self.runtime
            later(lambda: runtime.cleanup(ref))

    # -- the pipeline ----------------------------------------------------------------------
    def run(self) -> Task:
        try:
            return self._run()
        except NotClaimed:
            return self.task
        except Detached:
            log.info("task %s: detached from its executor; the next hub re-attaches", self.task.id)
            return self.task

    def _run(self) -> Task:
        system_error: str | None = None
        canceled = False
        try:
            phase = self._journal.phase
            if phase is Phase.STAGING_IN:
                self._limit(State.INITIALIZING, self.options.initializing_limit_s)
                # No journal is written while staging in: after a restart, a missing journal
                # and an interrupted staging mean the same (the attempt cannot be resumed).
                running = Event.state(self.task.id, State.RUNNING)
                if self.task.spec.inputs:
                    self._take()
                    self.layout.create(self.task.spec)
                    self._emit(*self._stage_inputs(), running)
                else:  # nothing to stage: claim the task and start it in one write
                    self._take(running)
                    self.layout.create(self.task.spec)
                self._save(phase=Phase.RUNNING, executor=0, ref=None, persist=False)
            if self._journal.phase is Phase.RUNNING:
                self._limit(State.RUNNING, self.options.running_limit_s)
                self._run_executors()
        except Canceled:
            canceled = True
        except (SystemFailure, RuntimeFailure, StorageError) as exc:
            system_error = str(exc)
        except (Detached, NotClaimed):
            raise
        except Exception as exc:
            log.exception("worker for task %s failed", self.task.id)
            system_error = f"internal error in the worker: {type(exc).__name__}: {exc}"
        return self._finish(system_error=system_error, canceled=canceled)

    def _stage_inputs(self) -> list[Event]:
        """Stage every input; a cancel does not wait for a large download to end (an
        abandoned download is cleaned up by the cache, its links with the attempt)."""
        try:
            staged = fetch_inputs(
                self.task, self.layout, self.transfers, self.credentials, canceled=self._canceled
            )
        except StagingFailed as exc:
            raise SystemFailure(str(exc)) from exc
        self._check_canceled()
        return staged

    def _exec_spec(self, index: int) -> ExecSpec:
        spec = self.task.spec
        ex = spec.executors[index]
        stdin = None
        if ex.stdin:
            stdin = self.layout.host_path(ex.stdin)
            if stdin.is_dir():
                raise SystemFailure(f"executor {index}: stdin {ex.stdin} is a directory")
            if not stdin.is_file():
                raise SystemFailure(
                    f"executor {index}: stdin {ex.stdin} does not exist in the task; declare it "
                    "as an input or write it in an earlier executor"
                )
        stdout, stderr = self.layout.stdout(spec, index), self.layout.stderr(spec, index)
        for log_file in (stdout, stderr):
            log_file.parent.mkdir(parents=True, exist_ok=True)
        # The host opens these files for the executor: an earlier executor's symlink must not
        # make it read or overwrite a file of the host.
        declared = (
            ("stdin", ex.stdin, stdin),
            ("stdout", ex.stdout, stdout),
            ("stderr", ex.stderr, stderr),
        )
        # A streamable input on this host is linked from where it lies (read-only for the
        # executors, which cannot replace it): reading stdin from it is fine.
        in_place = [i.path.rstrip("/") for i in spec.inputs if i.streamable]
        for what, declared_path, opened in declared:
            if what == "stdin" and any(
                declared_path == p or (declared_path or "").startswith(p + "/") for p in in_place
            ):
                continue
            # Only paths inside the task's root can have been replaced by an executor.
            if declared_path and opened is not None and not self.layout.confines(opened):
                raise SystemFailure(
                    f"executor {index}: {what} path {opened.relative_to(self.layout.root)} "
                    "links outside the task's files"
                )
        return ExecSpec(
            task_id=self.task.id,
            index=index,
            image=ex.image,
            command=ex.command,
            workdir=ex.workdir,
            env=dict(ex.env),
            mounts=self.layout.mounts(spec),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cpu_cores=self.options.cpu_cores,
            ram_gb=self.options.ram_gb,
            network=self.options.network,
            scratch=self.layout.meta,
            placement=self.options.placement,
        )

    def _run_executors(self) -> None:
        executors = self.task.spec.executors
        index = self._journal.executor
        while index < len(executors):
            self._check_canceled()
            exec_spec = self._exec_spec(index)
            recorded = self._recorded_exit(index)
            if recorded is not None:
                # A restart came after this executor's end was written but before the journal
                # moved on: neither run nor record it again.
                exit_code = recorded
                self._finished_ref = self._journal.ref
            else:
                exit_code = self._run_one(index, exec_spec)
                finished = Event.executor_finished(
                    self.task.id,
                    index,
                    exit_code,
                    started=datetime.fromisoformat(self._journal.started_at or now().isoformat()),
                    stdout=_tail(exec_spec.stdout, self.options.log_tail_bytes),
                    stderr=_tail(exec_spec.stderr, self.options.log_tail_bytes),
                )
            index += 1
            failed = exit_code != 0 and not executors[index - 1].ignore_error
            if recorded is None:
                if (failed or index == len(executors)) and not self.task.spec.outputs:
                    self._held.append(finished)
                else:
                    self._emit(finished)
            self._save(
                executor=index,
                ref=None,
                started_at=None,
                starting=False,
                executor_error=self._journal.executor_error or failed,
                persist=False,
            )
            if failed:
                break

    def _recorded_exit(self, index: int) -> int | None:
        """The exit code this attempt already recorded for executor ``index``, if any."""
        if not self.task.logs:
            return None
        entries = self.task.logs[-1].logs
        return entries[index].exit_code if index < len(entries) else None

    def _run_one(self, index: int, exec_spec: ExecSpec) -> int:
        """Start executor ``index`` (or re-attach to it) and wait for its exit code."""
        journal = self._journal
        ref = journal.ref if journal.executor == index else None
        if ref is None and journal.executor == index and journal.starting:
            # The last hub stopped while starting it: adopt it if it did start.
            ref = self.runtime.find(exec_spec)
        if ref is None:
            started = now()
            # Written before the start, so that a restart looks for this executor instead of
            # starting it a second time.
            self._save(executor=index, ref=None, starting=True, started_at=started.isoformat())
            ref = self.runtime.start(exec_spec)
            self._save(ref=ref, starting=False)
        self._ran = True
        self._ref = ref
        if self._canceled.is_set():  # canceled between start and bookkeeping
            self.runtime.kill(ref)
        exit_code = self.runtime.wait(ref, exec_spec)
        self._ref = None
        self._finished_ref = ref
        self._check_canceled()
        return exit_code

    def _stage_outputs(self) -> str | None:
        """Upload every output that exists; return the first problem, if any."""
        sources, missing = find_outputs(self.task, self.layout)
        for message in missing:
            self._emit(Event.system_log(self.task.id, message))
        done = {o.url for o in self.task.logs[-1].outputs} if self.task.logs else set()
        problems = upload_outputs(
            self.task,
            sources,
            self.layout,
            self.transfers,
            self.credentials,
            emit=self._emit,
            already=done,
        )
        return next(iter(missing + problems), None)

    # -- the finalizer ---------------------------------------------------------------------
    def _finish(self, *, system_error: str | None, canceled: bool) -> Task:
        task_id = self.task.id
        logged = False  # the cause is in the system logs already
        self._limit(State.RUNNING, None)  # outputs are staged whatever the limits said
        self.options.executors_done()
        try:
            if self._ref is not None:
                self.runtime.kill(self._ref)
                self.runtime.cleanup(self._ref)
            # Outputs exist only once an executor ran; staging them after an earlier failure
            # would bury its cause under "matched no file" lines.
            if not canceled and self._ran:
                self._save(phase=Phase.STAGING_OUT, persist=bool(self.task.spec.outputs))
                problem = self._stage_outputs()
                if problem and system_error is None and not self._journal.executor_error:
                    system_error, logged = problem, True
        except Canceled:
            canceled = True
        except Detached:
            raise
        except Exception as exc:
            log.exception("staging outputs of task %s failed", task_id)
            system_error = system_error or f"staging outputs failed: {exc}"
        reason: str | None
        if self._expired is not None:
            final, reason = State.SYSTEM_ERROR, self._expired
        elif canceled or self._canceled.is_set():
            final, reason = State.CANCELED, "canceled by the user"
        elif system_error is not None:
            final, reason = State.SYSTEM_ERROR, None if logged else system_error
            retry = self.options.retry
            if retry.retries(self.task):
                attempt, attempts = len(self.task.logs), retry.attempts_of(self.task)
                final = State.QUEUED
                reason = (
                    f"attempt {attempt} of {attempts} ended in a system error"
                    f"{': ' + system_error if not logged else ''}; retrying in "
                    f"{retry.delay(attempt):g} s"
                )
        elif self._journal.executor_error:
            final, reason = State.EXECUTOR_ERROR, None
        else:
            final, reason = State.COMPLETE, None
        try:
            self._cleanup_finished()
        except RuntimeFailure:
            log.exception("could not clean up after task %s", task_id)
        held, self._held = self._held, []
        try:
            self.task = self.sink.emit(*held, Event.state(task_id, final, reason))
        except InvalidTransition:
            current = self.sink.current(task_id)
            if current.state is State.CANCELING:
                end = Event.state(task_id, State.CANCELED, "canceled by the user")
                self.task = self.sink.emit(*held, end)
            else:
                self.task = current
        if not self.options.keep_work_dir:
            attempt_dir = self.layout.attempt_dir
            later(lambda: shutil.rmtree(attempt_dir, ignore_errors=True))
        return self.task


def host_metadata(runtime: str, backend: str, work_dir: Path) -> dict[str, str]:
    return {
        "host": socket.gethostname(),
        "backend": backend,
        "runtime": runtime,
        "work_dir": str(work_dir),
    }
