"""Hub replicas sharing one database: who adopts whose tasks at start, heartbeats retiring a
replica that went silent, and a replica that finds itself retired stopping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.unit.backends.fakes import FakeBackend, claim, make_site, new_task

from toolferry.agent.replicas import ReplicaMonitor, replica_of
from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.store.db import Database
from toolferry.store.replicas import Replica, SqlReplicaStore
from toolferry.store.sql import SqlTaskStore

LEASE_S = 1.0
ME = "me"


@dataclass
class Hub:
    """The parts of a hub the monitor works with, on one SQLite database."""

    root: Path
    db: Database
    tasks: SqlTaskStore
    replicas: SqlReplicaStore
    monitors: list[ReplicaMonitor] = field(default_factory=list)
    lease_lost: threading.Event = field(default_factory=threading.Event)

    def monitor(
        self,
        replica_id: str = ME,
        *,
        exclusive: bool,
        backends: Sequence[FakeBackend] = (),
    ) -> ReplicaMonitor:
        site = make_site(
            self.tasks,
            self.root / replica_id,
            backends or [FakeBackend("local")],
            replica_id=replica_id,
        )
        made = ReplicaMonitor(
            self.replicas,
            site,
            url=f"http://{replica_id}:8000",
            lease_s=LEASE_S,
            exclusive=exclusive,
            on_lease_lost=self.lease_lost.set,
        )
        self.monitors.append(made)
        return made

    def other(self, replica_id: str, seen_s_ago: float) -> None:
        """Register another replica, last seen ``seen_s_ago`` seconds ago."""
        seen = datetime.now(UTC) - timedelta(seconds=seen_s_ago)
        self.replicas.register(
            Replica(
                id=replica_id,
                host="other",
                pid=1,
                url="http://other",
                started_at=seen,
                seen_at=seen,
            )
        )

    def running(self, replica_id: str | None) -> Task:
        """A RUNNING task whose attempt ``replica_id`` started (None: recorded no replica)."""
        metadata = {"backend": "local"}
        if replica_id is not None:
            metadata["replica"] = replica_id
        return claim(self.tasks, new_task(self.tasks), State.RUNNING, **metadata)

    def adopted(self, task: Task, by: str = ME) -> bool:
        """The task was taken over by ``by``: recorded as its replica, and (its worker being
        gone, with no journal) ended in SYSTEM_ERROR."""
        now = self.tasks.get(task.id)
        return now.state is State.SYSTEM_ERROR and replica_of(now) == by

    def untouched(self, task: Task) -> bool:
        return self.tasks.get(task.id) == task

    def ids(self) -> set[str]:
        return {r.id for r in self.replicas.all()}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    db = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    made = Hub(tmp_path, db, SqlTaskStore(db), SqlReplicaStore(db))
    try:
        yield made
    finally:
        for monitor in made.monitors:
            monitor.stop()
        db.close()


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- at start ----------------------------------------------------------------------------------
def test_an_exclusive_start_retires_every_other_replica_and_adopts_all_tasks(hub: Hub) -> None:
    hub.other("fresh", seen_s_ago=0)
    hub.other("stale", seen_s_ago=3600)
    of_fresh, of_stale, of_none = hub.running("fresh"), hub.running("stale"), hub.running(None)
    queued = new_task(hub.tasks)
    hub.monitor(exclusive=True).start()
    assert hub.ids() == {ME}
    assert hub.adopted(of_fresh) and hub.adopted(of_stale) and hub.adopted(of_none)
    assert (
        "the hub stopped before the task's first executor started"
        in (hub.tasks.get(of_fresh.id).logs[-1].system_logs[-1])
    )
    assert hub.untouched(queued)


def test_an_exclusive_start_adopts_tasks_of_replicas_that_left_no_row(hub: Hub) -> None:
    """A replica that retired another and died before marking the tasks it adopted as its
    own leaves tasks naming a replica with no row; no other hub can be running them (the
    start is exclusive), so they are adopted too."""
    orphan = hub.running("retired-long-ago")
    hub.monitor(exclusive=True).start()
    assert hub.adopted(orphan)


def test_a_shared_start_adopts_only_what_stale_replicas_left(hub: Hub) -> None:
    hub.other("alive", seen_s_ago=0)
    hub.other("stale", seen_s_ago=3600)
    of_alive, of_stale, of_none = hub.running("alive"), hub.running("stale"), hub.running(None)
    hub.monitor(exclusive=False).start()
    assert hub.ids() == {"alive", ME}
    assert hub.adopted(of_stale)
    assert hub.untouched(of_alive)
    assert hub.untouched(of_none)  # another replica is alive: it may be running those


def test_a_shared_start_with_no_other_replica_alive_adopts_tasks_naming_none(hub: Hub) -> None:
    hub.other("stale", seen_s_ago=3600)
    hub.other("stopped", seen_s_ago=0)
    hub.replicas.stop("stopped")  # stopped cleanly: adopted at once
    of_stale, of_stopped, of_none = (
        hub.running("stale"),
        hub.running("stopped"),
        hub.running(None),
    )
    hub.monitor(exclusive=False).start()
    assert hub.ids() == {ME}
    assert hub.adopted(of_stale) and hub.adopted(of_stopped) and hub.adopted(of_none)


def test_a_shared_start_with_no_other_replica_alive_adopts_tasks_of_rowless_replicas(
    hub: Hub,
) -> None:
    """A replica that retired another and died before marking the adopted tasks as its own
    leaves tasks naming a replica with no row: retired, so dead. When no other replica is
    alive, nobody else can be running them (as with tasks naming no replica)."""
    hub.other("stale", seen_s_ago=3600)  # the one that retired "gone", then died
    orphan = hub.running("gone")
    hub.monitor(exclusive=False).start()
    assert hub.adopted(orphan)


def test_a_replica_that_stops_cleanly_hands_its_tasks_over_at_once(hub: Hub) -> None:
    first = hub.monitor("first", exclusive=False)
    first.start()
    task = hub.running("first")
    second = hub.monitor("second", exclusive=False)
    second.start()
    assert hub.untouched(task)  # first is alive
    first.stop()
    third = hub.monitor("third", exclusive=False)
    third.start()
    assert hub.adopted(task, by="third")
    assert hub.ids() == {"second", "third"}


def test_adopted_batch_jobs_are_followed_again_as_the_adopters(hub: Hub) -> None:
    hub.other("stale", seen_s_ago=3600)
    alive = claim(hub.tasks, new_task(hub.tasks), State.RUNNING, backend="batch", replica="stale")
    gone = claim(hub.tasks, new_task(hub.tasks), State.RUNNING, backend="batch", replica="stale")
    batch = FakeBackend("batch", workers_in_hub=False)
    batch.live = {alive.id, gone.id}
    monitor = hub.monitor(exclusive=False, backends=[FakeBackend("local"), batch])
    batch.live.discard(gone.id)  # its job ended while no hub followed it
    monitor.start()
    followed = hub.tasks.get(alive.id)
    assert followed.state is State.RUNNING and replica_of(followed) == ME
    assert set(batch.jobs) == {alive.id} and monitor.site.held() == {alive.id}
    assert hub.adopted(gone)


# -- heartbeats --------------------------------------------------------------------------------
def test_a_replica_that_stops_beating_is_retired_and_its_tasks_adopted(hub: Hub) -> None:
    hub.other("silent", seen_s_ago=LEASE_S / 2)
    hub.other("beating", seen_s_ago=0)
    of_silent, of_beating = hub.running("silent"), hub.running("beating")
    ended = hub.tasks.get(
        claim(hub.tasks, new_task(hub.tasks), State.RUNNING, State.COMPLETE, replica="silent").id
    )
    monitor = hub.monitor(exclusive=False)
    monitor.start()
    assert hub.untouched(of_silent)  # not stale yet

    def beat_and_check() -> bool:
        assert hub.replicas.beat("beating", datetime.now(UTC))
        return hub.adopted(of_silent)

    eventually(beat_and_check)
    assert hub.ids() == {"beating", ME}
    assert hub.untouched(of_beating) and hub.untouched(ended)
    assert not hub.lease_lost.is_set()


def test_a_live_replica_keeps_beating(hub: Hub) -> None:
    hub.monitor(exclusive=False).start()
    (first,) = hub.replicas.all()
    eventually(lambda: hub.replicas.all()[0].seen_at > first.seen_at)


def test_a_replica_whose_row_was_retired_stops(hub: Hub) -> None:
    hub.monitor(exclusive=False).start()
    far = datetime.now(UTC) + timedelta(days=1)
    assert hub.replicas.retire(ME, far)  # the others declared it dead
    assert hub.lease_lost.wait(3)
    assert hub.ids() == set()  # it does not come back
