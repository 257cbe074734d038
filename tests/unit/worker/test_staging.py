"""Staging through the worker: checksums recorded, the cache shared, transfers bounded,
credentials handed to the transfer only, failures naming the URL and the cause."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from tests.unit.fakes import FakeRuntime, host
from tests.unit.worker.test_pipeline import MemorySink, started

from toolferry.domain.states import State
from toolferry.domain.task import Executor, FileType, Input, Output, TaskSpec
from toolferry.runtimes.base import ExecSpec
from toolferry.storage.base import Credential, ObjectInfo, StorageError
from toolferry.storage.cache import InputCache
from toolferry.storage.file import FileStorage
from toolferry.storage.memory import MemoryStorage
from toolferry.storage.router import StorageRouter
from toolferry.worker.pipeline import Worker, WorkerOptions
from toolferry.worker.transfers import BoundedRunner, CredentialLookup, Transfers, scrub


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_with(*inputs: Input, outputs: tuple[Output, ...] = ()) -> TaskSpec:
    return TaskSpec(
        executors=(Executor(image="x", command=("true",)),), inputs=inputs, outputs=outputs
    )


def run_task(
    tmp_path: Path,
    spec: TaskSpec,
    transfers: Transfers,
    *,
    runtime: FakeRuntime | None = None,
    credentials: CredentialLookup | None = None,
    attempt: str = "attempt",
) -> MemorySink:
    sink = MemorySink(started(spec))
    extra = {"credentials": credentials} if credentials else {}
    worker = Worker(
        task=sink.task,
        attempt_dir=tmp_path / attempt,
        runtime=runtime or FakeRuntime(),
        transfers=transfers,
        sink=sink,
        options=WorkerOptions(keep_work_dir=True),
        **extra,  # type: ignore[arg-type]
    )
    worker.run()
    return sink


@pytest.fixture
def mem() -> MemoryStorage:
    return MemoryStorage("mem", objects={"mem://data/ref.txt": b"reference"})


@pytest.fixture
def transfers(tmp_path: Path, mem: MemoryStorage) -> Transfers:
    router = StorageRouter([mem, FileStorage([tmp_path])])
    return Transfers(router=router, cache=InputCache(tmp_path / "cache", max_bytes=1 << 30))


def test_inputs_are_recorded_with_their_sha256(tmp_path: Path, transfers: Transfers) -> None:
    spec = spec_with(
        Input(path="/in/ref.txt", url="mem://data/ref.txt"),
        Input(path="/in/inline.txt", content="hello"),
    )
    task = run_task(tmp_path, spec, transfers).task
    assert task.state is State.COMPLETE
    staged = {i.path: i for i in task.logs[-1].inputs}
    assert staged["/in/ref.txt"].sha256 == sha(b"reference")
    assert staged["/in/ref.txt"].size_bytes == len(b"reference")
    assert staged["/in/ref.txt"].cached is False
    assert staged["/in/inline.txt"].sha256 == sha(b"hello")


def test_a_second_task_takes_the_input_from_the_cache(
    tmp_path: Path, transfers: Transfers, mem: MemoryStorage
) -> None:
    spec = spec_with(Input(path="/in/ref.txt", url="mem://data/ref.txt"))
    seen: list[tuple[bytes, int]] = []

    def read(exec_spec: ExecSpec, rt: FakeRuntime) -> int:
        path = host(exec_spec, "/in/ref.txt")
        seen.append((path.read_bytes(), path.stat().st_ino))
        return 0

    first = run_task(tmp_path, spec, transfers, runtime=FakeRuntime(read), attempt="a1").task
    second = run_task(tmp_path, spec, transfers, runtime=FakeRuntime(read), attempt="a2").task
    assert mem.count("get") == 1
    assert [i.cached for i in (*first.logs[-1].inputs, *second.logs[-1].inputs)] == [False, True]
    # Linked, never copied: both tasks saw the same inode.
    assert seen[0] == seen[1] == (b"reference", seen[0][1])


def test_inputs_are_mounted_read_only(tmp_path: Path, transfers: Transfers) -> None:
    spec = spec_with(Input(path="/data/ref.txt", url="mem://data/ref.txt"))
    spec = TaskSpec(
        executors=spec.executors,
        inputs=spec.inputs,
        outputs=(Output(path="/data/out.txt", url=(tmp_path / "out.txt").as_uri()),),
    )
    mounts: list[ExecSpec] = []

    def record(exec_spec: ExecSpec, rt: FakeRuntime) -> int:
        mounts.append(exec_spec)
        host(exec_spec, "/data/out.txt").write_text("out")
        return 0

    assert run_task(tmp_path, spec, transfers, runtime=FakeRuntime(record)).task.state is (
        State.COMPLETE
    )
    by_path = {m.container: m for m in mounts[0].mounts}
    assert by_path["/data/ref.txt"].read_only
    assert not by_path["/data"].read_only


def test_a_directory_input_is_recorded_by_its_tree_digest(
    tmp_path: Path, transfers: Transfers
) -> None:
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "a").write_text("a")
    (tmp_path / "tree" / "sub" / "b").write_text("b")
    spec = spec_with(
        Input(path="/in/tree", url=(tmp_path / "tree").as_uri(), type=FileType.DIRECTORY)
    )
    task = run_task(tmp_path, spec, transfers).task
    assert task.state is State.COMPLETE
    (staged,) = task.logs[-1].inputs
    assert staged.directory and staged.size_bytes == 2 and len(staged.sha256) == 64
    assert (tmp_path / "attempt" / "root" / "in" / "tree" / "sub" / "b").read_text() == "b"


def test_outputs_are_recorded_with_their_sha256(tmp_path: Path, transfers: Transfers) -> None:
    out_dir = tmp_path / "results"
    spec = spec_with(
        outputs=(
            Output(path="/out/a.txt", url=(out_dir / "a.txt").as_uri()),
            Output(path="/out/d", url=(out_dir / "d").as_uri(), type=FileType.DIRECTORY),
        )
    )

    def write(exec_spec: ExecSpec, rt: FakeRuntime) -> int:
        host(exec_spec, "/out/a.txt").write_bytes(b"A")
        (host(exec_spec, "/out/d") / "x").mkdir(parents=True)
        (host(exec_spec, "/out/d") / "x" / "y").write_bytes(b"Y")
        return 0

    task = run_task(tmp_path, spec, transfers, runtime=FakeRuntime(write)).task
    assert task.state is State.COMPLETE
    logged = {o.path: o.sha256 for o in task.logs[-1].outputs}
    assert logged == {"/out/a.txt": sha(b"A"), "/out/d/x/y": sha(b"Y")}
    assert (out_dir / "d" / "x" / "y").read_bytes() == b"Y"


def test_a_failed_input_names_url_and_cause_and_hides_the_secret(tmp_path: Path) -> None:
    class Refusing(MemoryStorage):
        def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
            secret = credential.password if credential else ""
            raise StorageError(url, f"access denied (HTTP 403) for password {secret}")

    router = StorageRouter([Refusing("mem")])
    transfers = Transfers(router=router, cache=InputCache(tmp_path / "cache", max_bytes=0))
    credential = Credential(prefix="mem://", username="u", password="hunter22")
    spec = spec_with(Input(path="/in/x", url="mem://data/x"))
    task = run_task(tmp_path, spec, transfers, credentials=lambda url: credential).task
    assert task.state is State.SYSTEM_ERROR
    message = task.logs[-1].system_logs[-1]
    assert "input 0 (/in/x)" in message and "mem://data/x" in message
    assert "access denied (HTTP 403)" in message
    assert "hunter22" not in message


def test_the_credential_goes_to_the_transfer(tmp_path: Path, mem: MemoryStorage) -> None:
    router = StorageRouter([mem])
    transfers = Transfers(router=router, cache=InputCache(tmp_path / "cache", max_bytes=0))
    credential = Credential(prefix="mem://data/", token="t0ken")
    spec = spec_with(Input(path="/in/ref.txt", url="mem://data/ref.txt"))
    lookup: CredentialLookup = lambda url: credential if credential.applies_to(url) else None  # noqa: E731
    assert run_task(tmp_path, spec, transfers, credentials=lookup).task.state is State.COMPLETE
    assert set(mem.credentials) == {credential}


def test_an_upload_failure_is_a_system_error_naming_the_output(tmp_path: Path) -> None:
    class Failing(MemoryStorage):
        def put(self, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
            raise StorageError("mem://out/x", "disk full")

    router = StorageRouter([Failing("mem")])
    transfers = Transfers(router=router, cache=InputCache(tmp_path / "cache", max_bytes=0))
    spec = spec_with(outputs=(Output(path="/out/x", url="mem://out/x"),))

    def write(exec_spec: ExecSpec, rt: FakeRuntime) -> int:
        host(exec_spec, "/out/x").write_text("x")
        return 0

    task = run_task(tmp_path, spec, transfers, runtime=FakeRuntime(write)).task
    assert task.state is State.SYSTEM_ERROR
    assert task.logs[-1].system_logs == (
        "output 0 (/out/x) could not be uploaded: mem://out/x: disk full",
    )


def test_transfers_run_in_parallel_within_the_bound(tmp_path: Path) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    class Slow(MemoryStorage):
        def get(self, url: str, dest: Path, **kwargs: object) -> str | None:  # type: ignore[override]
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.1)
            with lock:
                running -= 1
            return super().get(url, dest, **kwargs)  # type: ignore[arg-type]

    objects = {f"mem://f{i}": str(i).encode() for i in range(6)}
    router = StorageRouter([Slow("mem", objects=objects)])
    transfers = Transfers(
        router=router, cache=InputCache(tmp_path / "cache", max_bytes=1 << 20), parallelism=2
    )
    spec = spec_with(*(Input(path=f"/in/f{i}", url=f"mem://f{i}") for i in range(6)))
    began = time.monotonic()
    task = run_task(tmp_path, spec, transfers).task
    assert task.state is State.COMPLETE
    assert peak == 2
    assert time.monotonic() - began < 0.6 * 6 / 2 + 0.5
    assert [i.path for i in task.logs[-1].inputs] == [f"/in/f{i}" for i in range(6)]


def test_bounded_runner_honours_cancel_before_start() -> None:
    runner = BoundedRunner(1)
    gate = threading.Event()
    first = runner.submit(gate.wait, 5)
    second = runner.submit(lambda: "ran")
    assert second.cancel()
    gate.set()
    assert first.result(5) is True
    assert second.cancelled()


def test_scrub_removes_every_secret() -> None:
    credential = Credential(prefix="x", password="pa55word", headers={"X-Key": "k3y-value"})
    assert scrub("pa55word and k3y-value", credential, None) == "*** and ***"


def test_inputs_are_never_left_writable_in_the_cache(tmp_path: Path, transfers: Transfers) -> None:
    spec = spec_with(Input(path="/in/ref.txt", url="mem://data/ref.txt"))
    run_task(tmp_path, spec, transfers)
    staged = tmp_path / "attempt" / "root" / "in" / "ref.txt"
    assert not os.stat(staged).st_mode & 0o222


def test_bounded_runner_never_starts_more_threads_than_its_limit() -> None:
    runner = BoundedRunner(3)
    before = threading.active_count()
    futures = [runner.submit(time.sleep, 0.001) for _ in range(200)]
    for future in futures:
        future.result(5)
    assert threading.active_count() - before <= 3


def test_a_streamable_local_input_is_linked_in_place(tmp_path: Path, transfers: Transfers) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "data.bin").write_bytes(b"in place")
    url = (tmp_path / "src" / "data.bin").as_uri()
    spec = spec_with(Input(path="/in/data.bin", url=url, streamable=True))
    task = run_task(tmp_path, spec, transfers).task
    assert task.state is State.COMPLETE
    staged = tmp_path / "attempt" / "root" / "in" / "data.bin"
    assert staged.is_symlink() and staged.resolve() == tmp_path / "src" / "data.bin"
    assert task.logs[-1].inputs[0].sha256 == sha(b"in place")
    assert transfers.cache.entries() == []


def test_a_streamable_input_of_the_wrong_type_says_so(tmp_path: Path, transfers: Transfers) -> None:
    (tmp_path / "src").mkdir()
    url = (tmp_path / "src").as_uri()
    spec = spec_with(Input(path="/in/d", url=url, streamable=True))  # a FILE input
    task = run_task(tmp_path, spec, transfers).task
    assert task.state is State.SYSTEM_ERROR
    assert "is a directory; declare it a DIRECTORY" in task.logs[-1].system_logs[-1]


def test_a_streamable_remote_input_is_staged_as_usual(
    tmp_path: Path, transfers: Transfers, mem: MemoryStorage
) -> None:
    spec = spec_with(Input(path="/in/ref.txt", url="mem://data/ref.txt", streamable=True))
    task = run_task(tmp_path, spec, transfers).task
    assert task.state is State.COMPLETE
    assert mem.count("get") == 1
    assert not (tmp_path / "attempt" / "root" / "in" / "ref.txt").is_symlink()
