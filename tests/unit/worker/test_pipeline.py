from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.unit.fakes import FakeRuntime, host

from toolferry.domain.errors import InvalidTransition
from toolferry.domain.events import Event, apply
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Input, Output, Task, TaskSpec
from toolferry.runtimes.base import ExecSpec, RuntimeFailure
from toolferry.storage.cache import InputCache
from toolferry.storage.memory import MemoryStorage
from toolferry.storage.router import StorageRouter, default_router
from toolferry.worker.journal import Journal, Phase
from toolferry.worker.pipeline import Worker, WorkerOptions
from toolferry.worker.transfers import Transfers


class MemorySink:
    """Applies events in memory through the real state machine."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.lock = threading.Lock()

    def emit(self, *events: Event) -> Task:
        with self.lock:
            task = self.task
            for event in events:
                task = apply(task, event)  # all or nothing, as in the store
            self.task = task
            return task

    def current(self, task_id: str) -> Task:
        return self.task


def started(spec: TaskSpec) -> Task:
    task = Task(id="t1", owner="a", spec=spec, creation_time=datetime.now(UTC))
    task = apply(task, Event.state("t1", State.QUEUED))
    return apply(task, Event.state("t1", State.INITIALIZING))


def worker_for(
    tmp_path: Path,
    sink: MemorySink,
    runtime: FakeRuntime,
    *,
    task: Task | None = None,
    storage: StorageRouter | None = None,
    keep: bool = True,
    **extra: Any,
) -> Worker:
    """A worker for ``sink``'s task (or ``task``) in ``tmp_path/attempt``."""
    return Worker(
        task=task or sink.task,
        attempt_dir=tmp_path / "attempt",
        runtime=runtime,
        transfers=Transfers(
            router=storage or default_router([tmp_path]),
            cache=InputCache(tmp_path / "cache", max_bytes=1 << 30),
        ),
        sink=sink,
        options=WorkerOptions(keep_work_dir=keep),
        **extra,
    )


def make_worker(tmp_path: Path, spec: TaskSpec, runtime: FakeRuntime) -> tuple[Worker, MemorySink]:
    sink = MemorySink(started(spec))
    return worker_for(tmp_path, sink, runtime), sink


def upper(spec: ExecSpec, _: FakeRuntime) -> int:
    text = host(spec, "/in/a.txt").read_text()
    host(spec, "/out/b.txt").write_text(text.upper())
    return 0


SPEC = TaskSpec(
    executors=(Executor(image="i", command=("upper",)),),
    inputs=(Input(path="/in/a.txt", content="hello"),),
)


def test_a_successful_attempt(tmp_path: Path) -> None:
    out_url = f"file://{tmp_path}/result.txt"
    spec = replace(SPEC, outputs=(Output(path="/out/b.txt", url=out_url),))
    worker, _sink = make_worker(tmp_path, spec, FakeRuntime(upper))
    task = worker.run()
    assert task.state is State.COMPLETE
    assert (tmp_path / "result.txt").read_text() == "HELLO"
    log = task.logs[-1]
    assert log.logs[0].exit_code == 0
    assert log.logs[0].stdout == "stdout of 0\n"
    assert [(o.url, o.path, o.size_bytes) for o in log.outputs] == [(out_url, "/out/b.txt", 5)]
    assert Journal.load(tmp_path / "attempt") is not None


def test_outputs_are_uploaded_even_after_an_executor_error(tmp_path: Path) -> None:
    def fail_after_writing(spec: ExecSpec, rt: FakeRuntime) -> int:
        upper(spec, rt)
        return 3

    spec = replace(
        SPEC,
        executors=(*SPEC.executors, Executor(image="i", command=("never",))),
        outputs=(Output(path="/out/b.txt", url=f"file://{tmp_path}/debug.txt"),),
    )
    runtime = FakeRuntime(fail_after_writing)
    task = make_worker(tmp_path, spec, runtime)[0].run()
    assert task.state is State.EXECUTOR_ERROR
    assert len(runtime.started) == 1  # execution stops at the first error
    assert (tmp_path / "debug.txt").read_text() == "HELLO"


def test_ignore_error_goes_on(tmp_path: Path) -> None:
    spec = replace(
        SPEC,
        executors=(
            Executor(image="i", command=("fail",), ignore_error=True),
            Executor(image="i", command=("ok",)),
        ),
    )
    runtime = FakeRuntime(lambda s, rt: 1 if s.index == 0 else 0)
    task = make_worker(tmp_path, spec, runtime)[0].run()
    assert task.state is State.COMPLETE
    assert [e.exit_code for e in task.logs[-1].logs] == [1, 0]


def test_a_missing_output_is_a_system_error_naming_it(tmp_path: Path) -> None:
    spec = replace(SPEC, outputs=(Output(path="/out/none.txt", url=f"file://{tmp_path}/x"),))
    task = make_worker(tmp_path, spec, FakeRuntime())[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert any("/out/none.txt matched no file" in line for line in task.logs[-1].system_logs)


def test_a_failed_input_is_a_system_error_and_runs_nothing(tmp_path: Path) -> None:
    spec = replace(SPEC, inputs=(Input(path="/in/a.txt", url=f"file://{tmp_path}/missing"),))
    runtime = FakeRuntime()
    task = make_worker(tmp_path, spec, runtime)[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert runtime.started == []
    assert "input 0 (/in/a.txt) could not be staged" in task.logs[-1].system_logs[-1]


def test_a_runtime_failure_is_a_system_error(tmp_path: Path) -> None:
    def broken(spec: ExecSpec, rt: FakeRuntime) -> int:
        raise RuntimeFailure("image 'x' is not available locally")

    task = make_worker(tmp_path, SPEC, FakeRuntime(broken))[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert task.logs[-1].system_logs[-1] == "image 'x' is not available locally"


def test_wildcard_outputs_keep_their_relative_paths(tmp_path: Path) -> None:
    def write(spec: ExecSpec, rt: FakeRuntime) -> int:
        for name in ("a.csv", "b.csv", "c.txt"):
            host(spec, f"/res/{name}").write_text(name)
        return 0

    spec = replace(
        SPEC,
        outputs=(Output(path="/res/*.csv", path_prefix="/res", url=f"file://{tmp_path}/csv"),),
    )
    task = make_worker(tmp_path, spec, FakeRuntime(write))[0].run()
    assert task.state is State.COMPLETE
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["a.csv", "b.csv"]
    assert [o.path for o in task.logs[-1].outputs] == ["/res/a.csv", "/res/b.csv"]


def test_cancel_kills_the_executor_and_reports_canceled(tmp_path: Path) -> None:
    def block(spec: ExecSpec, rt: FakeRuntime) -> int:
        rt.release.wait(5)
        return 137

    runtime = FakeRuntime(block)
    worker, sink = make_worker(tmp_path, SPEC, runtime)
    result: list[Task] = []
    thread = threading.Thread(target=lambda: result.append(worker.run()))
    thread.start()
    while not runtime.started:
        threading.Event().wait(0.01)
    sink.emit(Event.state("t1", State.CANCELING))
    worker.cancel()
    thread.join(5)
    assert result[0].state is State.CANCELED
    assert runtime.killed == ["fake-t1-0"]


def test_a_resumed_attempt_waits_on_the_running_executor(tmp_path: Path) -> None:
    spec = replace(SPEC, outputs=(Output(path="/out/b.txt", url=f"file://{tmp_path}/r.txt"),))
    runtime = FakeRuntime(upper)
    worker, sink = make_worker(tmp_path, spec, runtime)
    worker.layout.create(spec)
    worker.layout.host_path("/in/a.txt").parent.mkdir(parents=True)
    worker.layout.host_path("/in/a.txt").write_text("resumed")
    sink.emit(Event.state("t1", State.RUNNING))
    journal = Journal(
        task_id="t1",
        attempt=1,
        runtime="fake",
        phase=Phase.RUNNING,
        ref="fake-t1-0",
        started_at="2026-01-01T00:00:00+00:00",
    )
    resumed = worker_for(tmp_path, sink, runtime, resume=journal)
    task = resumed.run()
    assert task.state is State.COMPLETE
    assert runtime.started == []  # re-attached, not started again
    assert task.logs[-1].logs[0].exit_code == 0
    assert task.logs[-1].logs[0].start_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert (tmp_path / "r.txt").read_text() == "RESUMED"


def test_events_racing_a_cancel_end_canceled(tmp_path: Path) -> None:
    worker, sink = make_worker(tmp_path, SPEC, FakeRuntime())
    sink.emit(Event.state("t1", State.CANCELING))  # canceled before the worker got going
    task = worker.run()
    assert task.state is State.CANCELED
    with pytest.raises(InvalidTransition):
        sink.emit(Event.state("t1", State.RUNNING))


def test_an_output_symlink_to_a_host_file_is_not_uploaded(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("do not leak")

    def link(spec: ExecSpec, rt: FakeRuntime) -> int:
        host(spec, "/out/b.txt").symlink_to(secret)
        return 0

    spec = replace(SPEC, outputs=(Output(path="/out/b.txt", url=f"file://{tmp_path}/leak"),))
    task = make_worker(tmp_path, spec, FakeRuntime(link))[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert not (tmp_path / "leak").exists()
    assert "links outside the task's files" in task.logs[-1].system_logs[-1]


def test_a_stdout_symlink_to_a_host_file_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "host-file"
    victim.write_text("keep me")

    def link(spec: ExecSpec, rt: FakeRuntime) -> int:
        host(spec, "/logs/out.txt").symlink_to(victim)
        return 0

    spec = replace(
        SPEC,
        executors=(
            Executor(image="i", command=("link",), stdout="/logs/first.txt"),
            Executor(image="i", command=("x",), stdout="/logs/out.txt"),
        ),
    )
    task = make_worker(tmp_path, spec, FakeRuntime(link))[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert victim.read_text() == "keep me"
    assert "stdout path" in task.logs[-1].system_logs[-1]


def test_a_worker_whose_task_was_canceled_before_its_claim_does_nothing(tmp_path: Path) -> None:
    queued = apply(
        Task(id="t1", owner="a", spec=SPEC, creation_time=datetime.now(UTC)),
        Event.state("t1", State.QUEUED),
    )
    sink = MemorySink(apply(queued, Event.state("t1", State.CANCELED)))
    runtime = FakeRuntime()
    worker = worker_for(
        tmp_path, sink, runtime, task=queued, claim=Event.state("t1", State.INITIALIZING)
    )
    assert worker.run().state is State.CANCELED
    assert runtime.started == []
    assert sink.task.logs == ()


def test_a_claimed_task_without_inputs_starts_in_one_write(tmp_path: Path) -> None:
    queued = apply(
        Task(id="t1", owner="a", spec=replace(SPEC, inputs=()), creation_time=datetime.now(UTC)),
        Event.state("t1", State.QUEUED),
    )
    sink = MemorySink(queued)
    writes: list[int] = []
    emit = sink.emit

    def counting(*events: Event) -> Task:
        writes.append(len(events))
        return emit(*events)

    sink.emit = counting  # type: ignore[method-assign]
    worker = worker_for(
        tmp_path, sink, FakeRuntime(), task=queued, claim=Event.state("t1", State.INITIALIZING)
    )
    assert worker.run().state is State.COMPLETE
    assert writes == [2, 2]  # INITIALIZING + RUNNING, then the executor's end + COMPLETE


def test_cancel_does_not_wait_for_a_download(tmp_path: Path) -> None:
    # A storage whose downloads block until released: a stand-in for a huge input.
    gate = threading.Event()
    slow = MemoryStorage("slow", objects={"slow://huge": b"x"}, gate=gate)
    spec = replace(SPEC, inputs=(Input(path="/in/big", url="slow://huge"),))
    sink = MemorySink(started(spec))
    worker = worker_for(tmp_path, sink, FakeRuntime(), storage=StorageRouter([slow]), keep=False)
    result: list[Task] = []
    thread = threading.Thread(target=lambda: result.append(worker.run()))
    thread.start()
    time.sleep(0.2)
    sink.emit(Event.state("t1", State.CANCELING))
    began = time.monotonic()
    worker.cancel()
    thread.join(5)
    gate.set()
    assert result[0].state is State.CANCELED
    assert time.monotonic() - began < 1


def test_no_output_noise_when_nothing_ran(tmp_path: Path) -> None:
    def broken(spec: ExecSpec, rt: FakeRuntime) -> int:
        raise AssertionError("never waited for")

    class NoStart(FakeRuntime):
        def start(self, spec: ExecSpec) -> str:
            raise RuntimeFailure("image 'x' is not available locally")

    spec = replace(SPEC, outputs=(Output(path="/out/b.txt", url=f"file://{tmp_path}/o"),))
    task = make_worker(tmp_path, spec, NoStart(broken))[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert task.logs[-1].system_logs == ("image 'x' is not available locally",)


def test_a_missing_output_is_reported_once(tmp_path: Path) -> None:
    spec = replace(SPEC, outputs=(Output(path="/out/none.txt", url=f"file://{tmp_path}/x"),))
    task = make_worker(tmp_path, spec, FakeRuntime())[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert task.logs[-1].system_logs == ("output 0: /out/none.txt matched no file in the task",)


def _resume(tmp_path: Path, sink: MemorySink, runtime: FakeRuntime, journal: Journal) -> Task:
    return worker_for(tmp_path, sink, runtime, resume=journal).run()


TWO = replace(
    SPEC,
    executors=(Executor(image="i", command=("a",)), Executor(image="i", command=("b",))),
)


def test_an_executor_whose_start_was_cut_short_is_adopted_not_rerun(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    first = make_worker(tmp_path, SPEC, runtime)[0]
    first.layout.create(SPEC)
    first.layout.host_path("/in/a.txt").parent.mkdir(parents=True)
    first.layout.host_path("/in/a.txt").write_text("x")
    spec = first._exec_spec(0)
    runtime.start(spec)  # the last hub started it, then stopped before noting its ref
    sink = first.sink
    assert isinstance(sink, MemorySink)
    sink.emit(Event.state("t1", State.RUNNING))
    journal = Journal(
        task_id="t1",
        attempt=1,
        runtime="fake",
        phase=Phase.RUNNING,
        starting=True,
        started_at="2026-01-01T00:00:00+00:00",
    )
    task = _resume(tmp_path, sink, runtime, journal)
    assert task.state is State.COMPLETE
    assert len(runtime.started) == 1  # adopted, never started twice
    assert task.logs[-1].logs[0].exit_code == 0


def test_an_executor_already_recorded_is_not_rerun_or_recorded_again(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    spec = TWO
    worker, sink = make_worker(tmp_path, spec, runtime)
    worker.layout.create(spec)
    sink.emit(Event.state("t1", State.RUNNING))
    sink.emit(Event.executor_finished("t1", 0, 0, started=datetime.now(UTC)))
    # The journal still points at executor 0's container: the hub died before it moved on.
    journal = Journal(task_id="t1", attempt=1, runtime="fake", phase=Phase.RUNNING, ref="fake-t1-0")
    task = _resume(tmp_path, sink, runtime, journal)
    assert task.state is State.COMPLETE
    assert [s.index for s in runtime.started] == [1]
    assert [e.exit_code for e in task.logs[-1].logs] == [0, 0]


def test_a_file_output_that_is_a_directory_says_so(tmp_path: Path) -> None:
    def make_dir(spec: ExecSpec, rt: FakeRuntime) -> int:
        host(spec, "/out/b.txt").mkdir()
        return 0

    spec = replace(SPEC, outputs=(Output(path="/out/b.txt", url=f"file://{tmp_path}/x"),))
    task = make_worker(tmp_path, spec, FakeRuntime(make_dir))[0].run()
    assert task.state is State.SYSTEM_ERROR
    assert task.logs[-1].system_logs == (
        "output 0: /out/b.txt is a directory, but the output is a file",
    )
