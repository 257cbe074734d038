"""The shared batch backend on an in-memory Slurm: the job it writes and submits, how it
follows jobs to their end, cancel, and following jobs again after a hub restart."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.backends.fakes import FakeSlurm, claim, new_task, open_store, spec, transfers
from tests.unit.fakes import FakeRuntime
from toolferry.backends.base import BackendUnavailable, Job, Size
from toolferry.backends.batch import BatchBackend
from toolferry.backends.slurm import SlurmDialect
from toolferry.config import Settings
from toolferry.domain.events import Event
from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.store.sql import SqlTaskStore
from toolferry.wiring import settings_values
from toolferry.worker.__main__ import StoreSink, run_job
from toolferry.worker.pipeline import WorkerOptions

PYTHON = "/opt/tool ferry/bin/python3"  # a space: the script must quote it


class Calls:
    """on_done and on_lost of the site, recorded."""

    def __init__(self) -> None:
        self.done: list[Task] = []
        self.lost: list[tuple[Task, str]] = []

    def on_done(self, task: Task) -> None:
        self.done.append(task)

    def on_lost(self, task: Task, reason: str) -> None:
        self.lost.append((task, reason))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTaskStore]:
    with open_store(tmp_path / "db.sqlite") as opened:
        yield opened


@pytest.fixture
def slurm() -> FakeSlurm:
    return FakeSlurm()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "shared fs"  # a space: paths must be quoted in the job script


@pytest.fixture
def backend(slurm: FakeSlurm, root: Path) -> Iterator[BatchBackend]:
    made = BatchBackend(
        SlurmDialect(),
        settings={"data_dir": "/srv/toolferry", "s3_secret_key": "s3cr3t"},
        work_dir=root / "work",
        python=PYTHON,
        poll_s=3600,  # tests call poll() themselves
        runtimes=("docker", "podman"),
        run=slurm,
    )
    yield made
    made.close()


@pytest.fixture
def calls() -> Calls:
    return Calls()


CLAIM = {"backend": "slurm", "host": "node1"}


def job_of(
    task: Task,
    store: SqlTaskStore,
    root: Path,
    *,
    options: WorkerOptions | None = None,
    claimed: bool = False,
) -> Job:
    """Attempt 1 of ``task``; ``claimed``: the site claimed the task before submitting (as it
    does for jobs outside the hub), else the job carries the claim for its worker."""
    initializing = Event.state(task.id, State.INITIALIZING, **CLAIM)
    if claimed:
        task = store.append(initializing)
    return Job(
        task=task,
        attempt_dir=root / "work" / task.id / "1",
        runtime=FakeRuntime(),
        transfers=transfers(root),
        sink=StoreSink(store),
        options=options or WorkerOptions(cpu_cores=2, ram_gb=1.5),
        claim=None if claimed else initializing,
    )


def submit(
    backend: BatchBackend,
    calls: Calls,
    store: SqlTaskStore,
    root: Path,
    task: Task,
    *,
    options: WorkerOptions | None = None,
    claimed: bool = False,
) -> Job:
    job = job_of(task, store, root, options=options, claimed=claimed)
    backend.submit(job, calls.on_done, calls.on_lost)
    return job


# -- what a backend is -------------------------------------------------------------------------
def test_its_capabilities_come_from_sinfo(backend: BatchBackend, slurm: FakeSlurm) -> None:
    caps = backend.capabilities
    assert caps.name == backend.name == "slurm"
    assert caps.total == caps.largest == Size(cpus=2, ram_gb=22.54, disk_gb=251.972)
    assert set(caps.parameters) == {"partition", "account", "qos"}
    assert caps.runtimes == ("docker", "podman") and not caps.workers_in_hub
    assert backend.runtimes == {}
    assert slurm.ran("sinfo") == [SlurmDialect().size_command()]


@pytest.mark.parametrize(
    "sinfo", ["", "node4|64|512000|900000|down*|debug*\nnode5|8|1|1|drained|debug*\n"]
)
def test_a_cluster_with_no_usable_node_is_refused(sinfo: str, root: Path) -> None:
    with pytest.raises(BackendUnavailable, match="slurm reports no usable node"):
        BatchBackend(
            SlurmDialect(), settings={}, work_dir=root, python=PYTHON, run=FakeSlurm(sinfo=sinfo)
        )


def test_a_controller_that_does_not_answer_is_refused_with_sinfos_words(root: Path) -> None:
    down = FakeSlurm(
        fail={"sinfo": (1, "slurm_load_partitions: Unable to contact slurm controller\n")}
    )
    with pytest.raises(BackendUnavailable, match=r"^sinfo: .*Unable to contact slurm controller"):
        BatchBackend(SlurmDialect(), settings={}, work_dir=root, python=PYTHON, run=down)


def test_check_reads_only_the_dialects_own_parameters(backend: BatchBackend) -> None:
    assert backend.check(spec(constraints="not a slurm thing;")) is None
    assert backend.check(spec(partition="debug")) is None
    reason = backend.check(spec(partition="nope"))
    assert reason is not None and "'nope' does not exist" in reason
    assert backend.check(spec(account="a b")) == "account 'a b' is not a valid Slurm name"


# -- submit ------------------------------------------------------------------------------------
def test_submit_writes_a_private_job_file_for_the_worker(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path
) -> None:
    task = new_task(store)
    options = WorkerOptions(
        cpu_cores=2,
        ram_gb=1.5,
        log_tail_bytes=777,
        network=True,
        keep_work_dir=True,
        initializing_limit_s=30,
        running_limit_s=90,
        placement=("node.role==worker",),
    )
    job = submit(backend, calls, store, root, task, options=options)
    job_file = job.attempt_dir / "job.json"
    assert stat.S_IMODE(job_file.stat().st_mode) == 0o600  # it holds the hub's secrets
    assert json.loads(job_file.read_text()) == {
        "task_id": task.id,
        "attempt_dir": str(job.attempt_dir),
        "runtime": "fake",
        "claim": {
            "state": "INITIALIZING",
            "metadata": {"backend": "slurm", "host": "node1"},
        },
        "options": {
            "log_tail_bytes": 777,
            "cpu_cores": 2,
            "ram_gb": 1.5,
            "network": True,
            "keep_work_dir": True,
            "initializing_limit_s": 30,
            "running_limit_s": 90,
            "placement": ["node.role==worker"],
        },
        "settings": {"data_dir": "/srv/toolferry", "s3_secret_key": "s3cr3t"},
    }


def test_the_job_file_of_a_task_the_site_claimed_has_no_claim(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path
) -> None:
    job = submit(backend, calls, store, root, new_task(store), claimed=True)
    assert json.loads((job.attempt_dir / "job.json").read_text())["claim"] is None


def test_the_job_script_execs_the_configured_python_on_the_worker_module(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, tmp_path: Path
) -> None:
    task = new_task(store)
    job = submit(backend, calls, store, root, task)
    script = job.attempt_dir / "job.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"exec '{PYTHON}' -m toolferry.worker '{job.attempt_dir}/job.json'\n" in text
    # Run it with an "interpreter" that prints its arguments: the quoting holds.
    script.write_text(text.replace(f"'{PYTHON}'", str(tmp_path / "echo-args")))
    (tmp_path / "echo-args").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (tmp_path / "echo-args").chmod(0o755)
    done = subprocess.run([str(script)], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["-m", "toolferry.worker", str(job.attempt_dir / "job.json")]


@pytest.mark.parametrize("claimed", [False, True])
def test_the_job_file_is_what_the_worker_reads(
    tmp_path: Path, calls: Calls, slurm: FakeSlurm, claimed: bool
) -> None:
    """``python -m toolferry.worker`` reads the job file, rebuilds the settings, reaches the
    store and claims the task (unless the site did); the fake runtime does not exist on a
    node, so it ends the task saying so, in the attempt's log."""
    settings = Settings(data_dir=tmp_path / "data")
    backend = BatchBackend(
        SlurmDialect(),
        settings=settings_values(settings),
        work_dir=settings.work_dir,
        python=PYTHON,
        poll_s=3600,
        run=slurm,
    )
    try:
        with open_store(Path(settings.effective_database_url.removeprefix("sqlite:///"))) as store:
            task = new_task(store)
            job = submit(backend, calls, store, settings.work_dir, task, claimed=claimed)
            assert run_job(job.attempt_dir / "job.json") == 0
            ended = store.get(task.id)
    finally:
        backend.close()
    assert ended.state is State.SYSTEM_ERROR and len(ended.logs) == 1
    assert ended.logs[0].metadata == CLAIM
    assert "runtime fake is not usable on this node" in ended.logs[0].system_logs[-1]


def test_sbatch_asks_for_the_booked_cores_memory_disk_and_time(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store, spec(cpus=3, ram_gb=1.5, disk_gb=2.5, partition="debug"))
    options = WorkerOptions(
        cpu_cores=2.5, ram_gb=1.5, initializing_limit_s=60, running_limit_s=3600
    )
    job = submit(backend, calls, store, root, task, options=options)
    (argv,) = slurm.submitted()
    assert f"--job-name=toolferry-{task.id}-1" in argv
    assert f"--output={job.attempt_dir / 'job.out'}" in argv
    assert f"--chdir={job.attempt_dir}" in argv
    assert "--cpus-per-task=3" in argv  # 2.5 cores booked: rounded up
    assert "--mem=1536M" in argv
    assert "--tmp=2560M" in argv
    assert "--time=62" in argv  # (60 + 3600) s is 61 min, plus one as a backstop
    assert "--partition=debug" in argv
    assert argv[-1] == str(job.attempt_dir / "job.sh")


def test_without_both_limits_the_job_has_no_time_limit(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task, options=WorkerOptions(running_limit_s=60))
    (argv,) = slurm.submitted()
    assert not any(a.startswith(("--time", "--tmp")) for a in argv)


def test_only_the_dialects_parameters_reach_sbatch(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    params = {"account": "lab", "qos": "low", "runtime": "docker", "constraints": "x==y"}
    task = new_task(store, spec(parameters=params))
    submit(backend, calls, store, root, task)
    (argv,) = slurm.submitted()
    options = [a for a in argv if a.startswith("--") and "=" in a]
    assert "--account=lab" in options and "--qos=low" in options
    assert not any("docker" in a or "x==y" in a for a in argv)


def test_a_task_that_books_no_memory_does_not_ask_slurm_for_one_megabyte(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    """The site books 0 GB for a task that asks for no memory (default_ram_gb is 0 by
    default) and hands the worker ram_gb=None; the job still runs a Python worker (and, with
    the none runtime, the executor itself), so it must get the cluster's default memory
    (no --mem), not --mem=1M, which a cluster enforcing memory limits kills at once."""
    task = new_task(store)
    submit(backend, calls, store, root, task, options=WorkerOptions(cpu_cores=1, ram_gb=None))
    (argv,) = slurm.submitted()
    assert not any(a.startswith("--mem") for a in argv)


def test_sbatch_failing_raises_backend_unavailable_with_its_stderr(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    slurm.fail["sbatch"] = (
        1,
        "sbatch: error: Batch job submission failed: Requested node configuration is not "
        "available\n",
    )
    task = new_task(store)
    with pytest.raises(BackendUnavailable) as raised:
        submit(backend, calls, store, root, task)
    assert str(raised.value) == (
        "sbatch: sbatch: error: Batch job submission failed: Requested node configuration is "
        "not available"
    )
    assert backend.cancel(task.id) is False  # nothing is followed
    assert backend.poll() == 0


def test_sbatch_printing_no_job_id_raises_backend_unavailable(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    slurm.sbatch_prints = "Submitted batch job\n"
    task = new_task(store)
    with pytest.raises(BackendUnavailable, match="sbatch printed no job id: 'Submitted batch job'"):
        submit(backend, calls, store, root, task)
    assert backend.tracked() == frozenset()


def test_job_files_that_cannot_be_written_raise_backend_unavailable(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    root.mkdir()
    (root / "work").write_text("the shared filesystem is not mounted")
    task = new_task(store)
    with pytest.raises(
        BackendUnavailable, match=r"cannot write the job's files in .*Not a directory"
    ):
        submit(backend, calls, store, root, task)
    assert slurm.submitted() == [] and backend.tracked() == frozenset()


# -- following jobs ----------------------------------------------------------------------------
def test_a_pending_or_running_job_is_kept(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task)
    assert backend.poll() == 0
    claim(store, task, State.RUNNING)
    for state in ("RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"):
        slurm.set("4711", state)
        assert backend.poll() == 0
    assert calls.done == [] and calls.lost == []
    assert slurm.ran("squeue") == [SlurmDialect().status_command()] * 5


def test_a_job_that_ended_after_its_worker_reported_is_done(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task)
    assert backend.tracked() == {task.id}
    slurm.set("4711", "RUNNING")
    claim(store, task, State.RUNNING, State.COMPLETE)
    assert backend.poll() == 0  # still running: the worker is finishing
    slurm.set("4711", "COMPLETED")
    assert backend.poll() == 1
    assert [t.state for t in calls.done] == [State.COMPLETE] and calls.lost == []
    assert calls.done[0] == store.get(task.id)
    assert backend.poll() == 0 and len(calls.done) == 1  # handed over once
    assert backend.tracked() == frozenset()
    assert backend.cancel(task.id) is False


def test_a_job_whose_worker_queued_a_retry_is_done(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task)
    claim(store, task, State.RUNNING)
    store.append(Event.state(task.id, State.QUEUED, "attempt 1 of 2 ended in a system error"))
    slurm.set("4711", "FAILED", "NonZeroExitCode")
    assert backend.poll() == 1
    assert [t.state for t in calls.done] == [State.QUEUED] and calls.lost == []


def test_a_job_that_ended_without_its_worker_reporting_is_lost_saying_why(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    job = submit(backend, calls, store, root, task)
    claim(store, task, State.RUNNING)
    noise = "x" * 5000
    (job.attempt_dir / "job.out").write_text(
        f"{noise}\nstarting the worker\n  slurmstepd: error: Detected 1 oom_kill event\n"
    )
    slurm.set("4711", "OUT_OF_MEMORY", "OutOfMemory")
    assert backend.poll() == 1
    assert calls.done == []
    ((lost, reason),) = calls.lost
    assert lost.id == task.id and lost.state is State.RUNNING
    assert reason.startswith(
        "slurm job 4711 ended (OUT_OF_MEMORY, OutOfMemory) without its worker reporting the "
        "task's end; the job's output ends with: "
    )
    assert reason.endswith("starting the worker slurmstepd: error: Detected 1 oom_kill event")
    assert reason.count("x") < 2100  # the tail only


@pytest.mark.parametrize("claimed", [False, True])
def test_a_job_cancelled_before_its_worker_started_is_lost(
    backend: BatchBackend,
    calls: Calls,
    store: SqlTaskStore,
    root: Path,
    slurm: FakeSlurm,
    claimed: bool,
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task, claimed=claimed)
    slurm.set("4711", "CANCELLED", "None")  # no output file: nothing quoted
    assert backend.poll() == 1
    ((lost, reason),) = calls.lost
    assert lost.state is (State.INITIALIZING if claimed else State.QUEUED)
    assert reason == (
        "slurm job 4711 ended (CANCELLED) without its worker reporting the task's end"
    )


def test_a_job_the_scheduler_forgot_is_lost(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task)
    claim(store, task, State.RUNNING)
    slurm.forget("4711")
    assert backend.poll() == 1
    ((_, reason),) = calls.lost
    assert "slurm job 4711 ended (no longer known to the scheduler)" in reason


def test_each_job_is_followed_apart(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    a, b, c = new_task(store), new_task(store), new_task(store)
    for task in (a, b, c):
        submit(backend, calls, store, root, task)
    claim(store, a, State.RUNNING, State.EXECUTOR_ERROR)
    slurm.set("4711", "COMPLETED")
    slurm.set("4712", "RUNNING")
    slurm.set("4713", "NODE_FAIL")
    assert backend.poll() == 2
    assert [t.id for t in calls.done] == [a.id]
    assert [t.id for t, _ in calls.lost] == [c.id] and "NODE_FAIL" in calls.lost[0][1]
    assert len(slurm.ran("squeue")) == 1  # one status command for all jobs
    assert backend.cancel(b.id) is True


def test_the_backend_follows_its_jobs_by_itself_until_closed(
    calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    backend = BatchBackend(
        SlurmDialect(), settings={}, work_dir=root / "work", python=PYTHON, poll_s=0.01, run=slurm
    )
    try:
        task = new_task(store)
        submit(backend, calls, store, root, task)
        claim(store, task, State.RUNNING, State.COMPLETE)
        slurm.set("4711", "COMPLETED")
        deadline = time.monotonic() + 3
        while not calls.done:
            assert time.monotonic() < deadline, "the ended job was not noticed"
            time.sleep(0.01)
        assert calls.done[0].state is State.COMPLETE
    finally:
        backend.close()
    polled = len(slurm.ran("squeue"))
    time.sleep(0.05)
    assert len(slurm.ran("squeue")) == polled  # closed: no more polling


def test_a_failing_status_command_keeps_following(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task)
    slurm.fail["squeue"] = (1, "squeue: error: Unable to contact slurm controller\n")
    with pytest.raises(BackendUnavailable, match="Unable to contact"):
        backend.poll()
    del slurm.fail["squeue"]
    slurm.set("4711", "TIMEOUT", "TimeLimit")
    assert backend.poll() == 1 and "TIMEOUT, TimeLimit" in calls.lost[0][1]


# -- cancel ------------------------------------------------------------------------------------
def test_cancel_runs_scancel_for_followed_tasks_only(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task, other = new_task(store), new_task(store)
    submit(backend, calls, store, root, task)
    assert backend.cancel(task.id) is True
    assert slurm.ran("scancel") == [["scancel", "4711"]]
    assert slurm.jobs["4711"].state == "CANCELLED"
    assert backend.cancel(other.id) is False
    assert len(slurm.ran("scancel")) == 1
    slurm.forget("4711")
    assert backend.cancel(task.id) is True  # scancel failing (the job is gone) is logged only


# -- reattach ----------------------------------------------------------------------------------
def test_reattach_follows_only_live_jobs_of_its_unended_tasks(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    running = claim(store, new_task(store), State.RUNNING)
    waiting = new_task(store)  # its job is still in Slurm's queue
    retried = claim(store, new_task(store))
    retried = store.append(Event.state(retried.id, State.QUEUED, "retrying"))
    retried = claim(store, retried)  # attempt 2 runs; attempt 1's job lingers
    ended_job = claim(store, new_task(store))
    terminal = claim(store, new_task(store), State.RUNNING, State.COMPLETE)
    theirs = claim(store, new_task(store), State.RUNNING)
    jobs = [
        ("100", f"toolferry-{running.id}-1", "RUNNING"),
        ("101", f"toolferry-{waiting.id}-1", "PENDING"),
        ("102", f"toolferry-{retried.id}-1", "COMPLETING"),
        ("103", f"toolferry-{retried.id}-2", "RUNNING"),
        ("104", f"toolferry-{ended_job.id}-1", "FAILED"),
        ("105", f"toolferry-{terminal.id}-1", "COMPLETING"),
        ("106", f"toolferry-{theirs.id}-1", "RUNNING"),
        ("107", "toolferry-01nosuchtask0000000000-1", "RUNNING"),  # another hub's
        ("108", "interactive", "RUNNING"),
        ("109", f"toolferry-{running.id}-x", "RUNNING"),
    ]
    for job_id, name, state in jobs:
        slurm.add(job_id, name, state)

    def mine(task: Task) -> bool:
        return task.id != theirs.id

    kept = backend.reattach(store.get, mine, calls.on_done, calls.on_lost)
    assert kept == {running.id, waiting.id, retried.id} == backend.tracked()
    for job_id in ("100", "101", "103"):
        slurm.set(job_id, "NODE_FAIL")
    assert backend.poll() == 3
    assert {t.id for t, _ in calls.lost} == kept
    reasons = {t.id: r for t, r in calls.lost}
    assert "slurm job 103 ended (NODE_FAIL)" in reasons[retried.id]


def test_reattached_jobs_quote_their_attempts_output(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = claim(store, new_task(store), State.RUNNING)
    slurm.add("55", f"toolferry-{task.id}-1", "RUNNING")
    assert backend.reattach(store.get, lambda t: True, calls.on_done, calls.on_lost) == {task.id}
    out = root / "work" / task.id / "1" / "job.out"
    out.parent.mkdir(parents=True)
    out.write_text("node1 went away\n")
    slurm.set("55", "NODE_FAIL")
    assert backend.poll() == 1
    assert calls.lost[0][1].endswith("the job's output ends with: node1 went away")


def test_reattach_needs_the_status_command(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, slurm: FakeSlurm
) -> None:
    slurm.fail["squeue"] = (1, "squeue: error: Invalid user\n")
    with pytest.raises(BackendUnavailable, match="Invalid user"):
        backend.reattach(store.get, lambda t: True, calls.on_done, calls.on_lost)


def test_a_task_that_moved_on_is_not_handed_over_twice(
    backend: BatchBackend, calls: Calls, store: SqlTaskStore, root: Path, slurm: FakeSlurm
) -> None:
    task = new_task(store)
    submit(backend, calls, store, root, task)
    claim(store, task, State.RUNNING, State.CANCELING, State.CANCELED)
    slurm.set("4711", "CANCELLED")
    assert backend.poll() == 1 and backend.poll() == 0
    assert [t.state for t in calls.done] == [State.CANCELED]
