"""A site with two backends — ``local`` (workers in the hub) and ``batch`` (jobs outside it):
each has its own room, lost jobs are retried or ended per the retry policy, and cancel
reaches the backend that holds the task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.unit.backends.fakes import (
    FakeBackend,
    FakeSlurm,
    claim,
    make_site,
    new_task,
    open_store,
    spec,
)
from tests.unit.fakes import FakeRuntime

from toolferry.agent.site import CANCELED_BY_USER, Site
from toolferry.backends.base import BackendUnavailable, Job, LostJob
from toolferry.backends.batch import BatchBackend
from toolferry.backends.slurm import SlurmDialect
from toolferry.domain.events import Event
from toolferry.domain.retry import RetryPolicy
from toolferry.domain.states import State
from toolferry.domain.task import Task, TaskSpec
from toolferry.store.sql import SqlTaskStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTaskStore]:
    with open_store(tmp_path / "db.sqlite") as opened:
        yield opened


@pytest.fixture
def local() -> FakeBackend:
    return FakeBackend("local", cpus=2, ram_gb=4)


@pytest.fixture
def batch() -> FakeBackend:
    return FakeBackend(
        "batch", cpus=1, ram_gb=64, parameters={"queue": "the batch queue"}, workers_in_hub=False
    )


@pytest.fixture
def site(store: SqlTaskStore, tmp_path: Path, local: FakeBackend, batch: FakeBackend) -> Site:
    return make_site(
        store,
        tmp_path,
        [local, batch],
        retry=RetryPolicy(max_attempts=2, backoff_s=10),
        replica_id="r1",
    )


def admitted(site: Site, store: SqlTaskStore, task: TaskSpec) -> Task:
    """A task submitted through the site's admission, as the API does."""
    return new_task(store, site.admission.admit(task)[0])


def dispatched(site: Site, store: SqlTaskStore, task: TaskSpec) -> Task:
    """An admitted task handed to its backend; as the store has it now."""
    queued = admitted(site, store, task)
    assert site.try_dispatch(queued)
    return store.get(queued.id)


def running(store: SqlTaskStore, task: Task) -> Task:
    """The worker of a task the site claimed at dispatch reports RUNNING."""
    return store.append(Event.state(task.id, State.RUNNING))


# -- room --------------------------------------------------------------------------------------
def test_each_backend_has_its_own_room(
    site: Site, store: SqlTaskStore, local: FakeBackend, batch: FakeBackend
) -> None:
    assert site.capacities["local"].cpus == 2 and site.capacities["batch"].cpus == 1
    assert site.backend is local and site.capacity is site.capacities["local"]
    a, b = admitted(site, store, spec()), admitted(site, store, spec())
    c = admitted(site, store, spec())
    on_batch = admitted(site, store, spec(queue="long"))
    second_on_batch = admitted(site, store, spec(queue="long"))
    assert site.backend_of(on_batch) == "batch" and site.backend_of(a) == "local"
    assert site.try_dispatch(a) and site.try_dispatch(b)
    assert not site.try_dispatch(c)  # local is full ...
    assert not site.room_for(c) and site.room_for(on_batch)
    assert site.try_dispatch(on_batch)  # ... batch is not
    assert not site.try_dispatch(second_on_batch)
    assert local.submitted == [a.id, b.id] and batch.submitted == [on_batch.id]
    assert site.capacities["local"].held() == {a.id, b.id}
    assert site.capacities["batch"].held() == {on_batch.id}
    assert site.held() == {a.id, b.id, on_batch.id}
    assert site.default_slots() == 0 and not site.has_room()
    assert store.get(c.id).state is State.QUEUED and store.get(c.id).logs == ()


def test_ending_a_job_frees_its_own_backends_room(
    site: Site, store: SqlTaskStore, local: FakeBackend, batch: FakeBackend
) -> None:
    freed: list[str] = []
    site.on_capacity_freed = lambda: freed.append("freed")
    a = dispatched(site, store, spec(cpus=2))
    on_batch = dispatched(site, store, spec(queue="q"))
    local.done(claim(store, a, State.RUNNING, State.COMPLETE))
    assert site.held() == {on_batch.id} and freed == ["freed"]
    assert site.capacities["local"].default_slots() == 2
    assert site.capacities["batch"].default_slots() == 0
    batch.done(store.append(Event.state(on_batch.id, State.SYSTEM_ERROR, "x")))
    assert site.held() == set() and freed == ["freed", "freed"]


# -- claims ------------------------------------------------------------------------------------
def test_a_worker_in_the_hub_claims_its_task_itself(
    site: Site, store: SqlTaskStore, local: FakeBackend, tmp_path: Path
) -> None:
    task = dispatched(site, store, spec(ram_gb=3))
    assert task.state is State.QUEUED  # the worker claims it with its first write
    job = local.jobs[task.id].job
    assert isinstance(job, Job) and job.claim is not None
    assert job.attempt_dir == tmp_path / "work" / task.id / "1"
    assert job.claim.data["state"] == "INITIALIZING"
    metadata = job.claim.data["metadata"]
    assert metadata["backend"] == "local" and metadata["replica"] == "r1"
    assert metadata["runtime"] == "fake" and metadata["work_dir"] == str(job.attempt_dir)
    assert job.options.cpu_cores == 1 and job.options.ram_gb == 3


def test_a_job_outside_the_hub_gets_a_task_the_site_claimed(
    site: Site, store: SqlTaskStore, batch: FakeBackend, tmp_path: Path
) -> None:
    task = dispatched(site, store, spec(queue="q"))
    job = batch.jobs[task.id].job
    assert isinstance(job, Job) and job.claim is None
    assert task.state is State.INITIALIZING and job.task == task
    metadata = task.logs[0].metadata
    assert metadata["backend"] == "batch" and metadata["replica"] == "r1"
    assert metadata["work_dir"] == str(tmp_path / "work" / task.id / "1")


def test_claiming_at_dispatch_a_task_another_replica_took_leaves_it(
    store: SqlTaskStore, tmp_path: Path, local: FakeBackend
) -> None:
    site = make_site(store, tmp_path, [local], replica_id="r1", claim_at_dispatch=True)
    mine = admitted(site, store, spec())
    assert site.try_dispatch(mine)
    assert store.get(mine.id).state is State.INITIALIZING and local.jobs[mine.id].job
    taken = admitted(site, store, spec())
    claim(store, taken, replica="r2")  # the other replica was faster
    assert site.try_dispatch(taken)  # the stale QUEUED copy
    assert local.submitted == [mine.id] and site.held() == {mine.id}
    assert store.get(taken.id).logs[0].metadata == {"replica": "r2"}


def test_a_task_naming_an_unknown_backend_runs_on_the_default(
    site: Site, store: SqlTaskStore
) -> None:
    task = new_task(store, spec(backend="gone"))  # admitted by a hub that had it
    assert site.backend_of(task) == "local"


# -- a backend that cannot take the task -------------------------------------------------------
class Refusing(FakeBackend):
    def __init__(self, error: Exception, *, workers_in_hub: bool) -> None:
        super().__init__("batch", cpus=4, parameters={"queue": "q"}, workers_in_hub=workers_in_hub)
        self.error = error

    def submit(self, job: Job, on_done: Callable[[Task], None], on_lost: LostJob) -> None:
        raise self.error


@pytest.mark.parametrize("workers_in_hub", [True, False])
def test_a_backend_that_does_not_answer_ends_the_task_and_frees_its_room(
    store: SqlTaskStore, tmp_path: Path, local: FakeBackend, workers_in_hub: bool
) -> None:
    error = BackendUnavailable("sbatch: Unable to contact slurm controller")
    site = make_site(store, tmp_path, [local, Refusing(error, workers_in_hub=workers_in_hub)])
    task = admitted(site, store, spec(queue="q"))
    assert site.try_dispatch(task)
    ended = store.get(task.id)
    assert ended.state is State.SYSTEM_ERROR
    said = ended.logs[0].system_logs if ended.logs else ended.notes
    assert said[-1] == (
        "backend batch could not take the task: sbatch: Unable to contact slurm controller"
    )
    assert site.held() == set()


@pytest.mark.parametrize(
    ("breaks", "said"),
    [
        # sbatch exits 0 but prints no job id (a wrapper script, a site's submit plugin)
        ("sbatch_prints", "sbatch printed no job id: 'sbatch: job submitted'"),
        # the attempt's folder cannot be made on the shared filesystem
        ("work_dir", "cannot write the job's files in"),
    ],
)
def test_a_batch_job_that_cannot_be_submitted_ends_the_task_and_frees_its_room(
    store: SqlTaskStore, tmp_path: Path, local: FakeBackend, breaks: str, said: str
) -> None:
    """Whatever goes wrong while submitting, try_dispatch must not raise: the task would be
    left claimed (INITIALIZING) with no job and its booking held until the reconciler's
    second look, and then end saying only that no worker holds it."""
    slurm = FakeSlurm()
    backend = BatchBackend(
        SlurmDialect(), settings={}, work_dir=tmp_path / "work", python="python3", run=slurm
    )
    site = make_site(store, tmp_path, [local, backend])
    if breaks == "sbatch_prints":
        slurm.sbatch_prints = "sbatch: job submitted\n"
    else:
        (tmp_path / "work").write_text("not a folder")
    task = admitted(site, store, spec(partition="debug"))
    try:
        assert site.try_dispatch(task)
    finally:
        backend.close()
    ended = store.get(task.id)
    assert ended.state is State.SYSTEM_ERROR
    assert (
        ended.logs[0].system_logs[-1].startswith(f"backend slurm could not take the task: {said}")
    )
    assert site.held() == set()


# -- lost jobs ---------------------------------------------------------------------------------
def test_a_lost_attempt_is_retried_per_the_policy(
    site: Site, store: SqlTaskStore, batch: FakeBackend
) -> None:
    task = dispatched(site, store, spec(queue="q"))
    batch.lose(running(store, task), "batch job 7 ended (NODE_FAIL)")
    retried = store.get(task.id)
    assert retried.state is State.QUEUED and len(retried.logs) == 1
    assert retried.logs[0].system_logs[-1] == (
        "attempt 1 of 2 ended in a system error: batch job 7 ended (NODE_FAIL); retrying in 10 s"
    )
    assert site.held() == set()
    # The second attempt is the last one: lost again, the task ends.
    assert site.try_dispatch(retried)
    batch.lose(running(store, retried), "batch job 8 ended (NODE_FAIL)")
    ended = store.get(task.id)
    assert ended.state is State.SYSTEM_ERROR and len(ended.logs) == 2
    assert ended.logs[1].system_logs[-1] == "batch job 8 ended (NODE_FAIL)"


def test_a_task_may_ask_for_more_attempts_than_the_site(
    store: SqlTaskStore, tmp_path: Path, local: FakeBackend
) -> None:
    site = make_site(store, tmp_path, [local], retry=RetryPolicy(max_attempts=1, backoff_s=1))
    once = dispatched(site, store, spec())
    local.lose(claim(store, once), "gone")
    assert store.get(once.id).state is State.SYSTEM_ERROR
    twice = dispatched(site, store, spec(max_attempts="3"))
    local.lose(claim(store, twice), "gone")
    assert "attempt 1 of 3 ended in a system error: gone; retrying in 1 s" in (
        store.get(twice.id).logs[0].system_logs
    )


def test_a_worker_lost_before_it_claimed_its_task_ends_it(
    site: Site, store: SqlTaskStore, local: FakeBackend
) -> None:
    task = dispatched(site, store, spec())
    local.lose(task, "the worker thread died")  # never claimed: still QUEUED
    ended = store.get(task.id)
    assert ended.state is State.SYSTEM_ERROR and ended.logs == ()
    assert ended.notes[-1] == "the worker thread died"
    assert site.held() == set()


def test_a_batch_job_lost_while_waiting_in_its_queue_is_retried(
    site: Site, store: SqlTaskStore, batch: FakeBackend
) -> None:
    task = dispatched(site, store, spec(queue="q"))  # claimed by the site, job pending
    batch.lose(task, "batch job 7 ended (CANCELLED)")
    retried = store.get(task.id)
    assert retried.state is State.QUEUED
    assert retried.logs[0].system_logs[-1].startswith("attempt 1 of 2 ended in a system error")


def test_a_lost_job_of_a_task_being_canceled_ends_it_canceled(
    site: Site, store: SqlTaskStore, batch: FakeBackend
) -> None:
    task = dispatched(site, store, spec(queue="q"))
    canceling = store.append(Event.state(task.id, State.CANCELING))
    batch.lose(canceling, "batch job 7 ended (CANCELLED)")
    ended = store.get(task.id)
    assert ended.state is State.CANCELED and len(ended.logs) == 1
    assert ended.logs[0].system_logs[-1] == "batch job 7 ended (CANCELLED)"


def test_a_lost_job_of_an_ended_task_changes_nothing(
    site: Site, store: SqlTaskStore, batch: FakeBackend
) -> None:
    task = dispatched(site, store, spec(queue="q"))
    complete = store.append(
        Event.state(task.id, State.RUNNING), Event.state(task.id, State.COMPLETE)
    )
    batch.lose(complete, "late")
    assert store.get(task.id) == complete and site.held() == set()


class Sweeping(FakeRuntime):
    """Records which tasks' leftovers each sweep would remove."""

    def __init__(self, tasks: list[str]) -> None:
        super().__init__()
        self.tasks = tasks
        self.swept: list[set[str]] = []

    def sweep(self, keep: Callable[[str], bool]) -> int:
        self.swept.append({t for t in self.tasks if not keep(t)})
        return len(self.swept[-1])


def test_a_lost_workers_leftover_executors_are_removed_before_a_retry(
    store: SqlTaskStore, tmp_path: Path, local: FakeBackend
) -> None:
    lost, other = new_task(store), new_task(store)
    runtime = Sweeping([lost.id, other.id])
    site = make_site(store, tmp_path, [local], runtimes={"fake": runtime})
    assert site.try_dispatch(lost) and site.try_dispatch(other)
    job = local.jobs[lost.id].job
    assert job is not None and job.claim is not None
    local.lose(store.append(job.claim), "the worker thread died")
    assert runtime.swept == [{lost.id}]  # only what the lost task left


def test_the_reconciler_looks_at_the_jobs_of_every_backend(
    site: Site, store: SqlTaskStore, batch: FakeBackend
) -> None:
    followed = running(store, dispatched(site, store, spec(queue="q")))
    orphan = claim(store, admitted(site, store, spec()), State.RUNNING, replica="r1")
    assert site.reconcile() == 0
    assert site.reconcile() == 1
    assert store.get(followed.id) == followed
    assert store.get(orphan.id).state is State.QUEUED  # attempt 1 of 2: retried


# -- cancel ------------------------------------------------------------------------------------
def test_canceling_a_queued_task_a_backend_holds_cancels_its_worker(
    site: Site, store: SqlTaskStore, local: FakeBackend, batch: FakeBackend
) -> None:
    task = dispatched(site, store, spec())  # handed over; the worker did not claim it yet
    assert task.state is State.QUEUED
    canceled = site.cancel(task)
    assert canceled.state is State.CANCELED and canceled.notes[-1] == CANCELED_BY_USER
    assert local.canceled == [task.id] and batch.canceled == []


def test_canceling_a_queued_task_no_backend_holds_just_ends_it(
    site: Site, store: SqlTaskStore, local: FakeBackend, batch: FakeBackend
) -> None:
    task = admitted(site, store, spec(queue="q"))
    assert site.cancel(task).state is State.CANCELED
    assert batch.canceled == [] and local.canceled == []


@pytest.mark.parametrize("started", [False, True])
def test_canceling_a_batch_task_cancels_its_job(
    site: Site, store: SqlTaskStore, local: FakeBackend, batch: FakeBackend, started: bool
) -> None:
    task = dispatched(site, store, spec(queue="q"))  # its job waits in the batch queue ...
    if started:
        task = running(store, task)  # ... or runs
    assert site.cancel(task).state is State.CANCELING  # the job's end ends it
    assert batch.canceled == [task.id] and local.canceled == []


def test_canceling_a_running_task_no_backend_follows_ends_it(
    site: Site, store: SqlTaskStore, batch: FakeBackend
) -> None:
    task = claim(store, admitted(site, store, spec(queue="q")), State.RUNNING)
    assert site.cancel(task).state is State.CANCELED
    assert batch.canceled == [task.id]


# -- after a restart ---------------------------------------------------------------------------
def test_recover_follows_live_jobs_again_and_ends_the_others(
    site: Site, store: SqlTaskStore, batch: FakeBackend
) -> None:
    alive = claim(store, admitted(site, store, spec(queue="q")), State.RUNNING, backend="batch")
    gone = claim(store, admitted(site, store, spec(queue="q")), State.RUNNING, backend="batch")
    batch.live = {alive.id}
    site.recover()
    assert set(batch.jobs) == {alive.id} and site.capacities["batch"].held() == {alive.id}
    assert store.get(alive.id).state is State.RUNNING
    retried = store.get(gone.id)  # attempt 1 of 2: queued again
    assert retried.state is State.QUEUED
    assert "its batch job ended while the hub was down" in retried.logs[0].system_logs[-1]


def test_detach_stops_every_backend(site: Site, local: FakeBackend, batch: FakeBackend) -> None:
    site.detach()
    assert local.closed and batch.closed
