"""Dispatch over several backends: a full backend holds up only its own tasks, FIFO."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.backends.fakes import FakeBackend, claim, make_site, new_task, open_store, spec
from toolferry.agent.capacity import Reservation
from toolferry.agent.site import Site
from toolferry.domain.task import Task
from toolferry.scheduler.scheduler import Scheduler
from toolferry.store.sql import SqlTaskStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTaskStore]:
    with open_store(tmp_path / "db.sqlite") as opened:
        yield opened


@pytest.fixture
def a() -> FakeBackend:
    return FakeBackend("a", cpus=2)


@pytest.fixture
def b() -> FakeBackend:
    return FakeBackend("b", cpus=2)


@pytest.fixture
def site(store: SqlTaskStore, tmp_path: Path, a: FakeBackend, b: FakeBackend) -> Site:
    return make_site(store, tmp_path, [a, b])


@pytest.fixture
def scheduler(store: SqlTaskStore, site: Site) -> Scheduler:
    return Scheduler(store, site, batch=8)


def on(store: SqlTaskStore, backend: str, cpus: int = 1, owner: str = "alice") -> Task:
    return new_task(store, spec(cpus=cpus, backend=backend), owner=owner)


def fill(site: Site, backend: str) -> None:
    """Book every core of ``backend`` for a task outside the queue."""
    capacity = site.capacities[backend]
    assert capacity.reserve(f"elsewhere-{backend}", Reservation(cpus=capacity.cpus, ram_gb=0))


def test_a_full_backend_does_not_hold_up_another(
    store: SqlTaskStore, site: Site, scheduler: Scheduler, a: FakeBackend, b: FakeBackend
) -> None:
    fill(site, "a")
    a1, a2, b1, a3, b2 = (on(store, x) for x in "aabab")
    assert scheduler.dispatch_once() == 2
    assert b.submitted == [b1.id, b2.id] and a.submitted == []
    assert site.held() >= {b1.id, b2.id}
    assert not site.held() & {a1.id, a2.id, a3.id}


def test_a_task_that_does_not_fit_blocks_the_tasks_of_its_backend_behind_it(
    store: SqlTaskStore, site: Site, scheduler: Scheduler, a: FakeBackend, b: FakeBackend
) -> None:
    assert site.capacities["a"].reserve("elsewhere", Reservation(cpus=1, ram_gb=0))
    big = on(store, "a", cpus=2)  # does not fit in the one core left
    small = on(store, "a", cpus=1)  # would fit, but waits its turn
    b1, b2 = on(store, "b"), on(store, "b")
    assert scheduler.dispatch_once() == 2
    assert a.submitted == [] and b.submitted == [b1.id, b2.id]
    site.capacities["a"].release("elsewhere")
    assert scheduler.dispatch_once() == 1
    assert a.submitted == [big.id]  # first come, first served: small still waits
    a.done(claim(store, big))
    assert scheduler.dispatch_once() == 1 and a.submitted == [big.id, small.id]


def test_a_backend_with_room_is_reached_past_a_long_queue_of_a_full_one(
    store: SqlTaskStore, site: Site, scheduler: Scheduler, a: FakeBackend, b: FakeBackend
) -> None:
    fill(site, "a")
    assert site.capacities["b"].reserve("elsewhere", Reservation(cpus=1, ram_gb=0))
    for _ in range(30):  # many more than one read of the queue holds
        on(store, "a")
    last = on(store, "b")
    assert scheduler.dispatch_once() == 1
    assert b.submitted == [last.id] and a.submitted == []


def test_tasks_of_several_users_still_start_on_the_backend_with_room(
    store: SqlTaskStore, site: Site, scheduler: Scheduler, a: FakeBackend, b: FakeBackend
) -> None:
    fill(site, "a")
    on(store, "a", owner="alice")
    bob1 = on(store, "b", owner="bob")
    on(store, "a", owner="alice")
    carol = on(store, "b", owner="carol")
    assert scheduler.dispatch_once() == 2
    assert set(b.submitted) == {bob1.id, carol.id} and a.submitted == []


def test_nothing_starts_when_every_backend_is_full(
    store: SqlTaskStore, site: Site, scheduler: Scheduler, a: FakeBackend, b: FakeBackend
) -> None:
    fill(site, "a")
    fill(site, "b")
    for backend in "abab":
        on(store, backend)
    assert scheduler.dispatch_once() == 0
    assert a.submitted == [] and b.submitted == []


def test_tasks_naming_no_backend_go_to_the_default(
    store: SqlTaskStore, site: Site, scheduler: Scheduler, a: FakeBackend, b: FakeBackend
) -> None:
    first, second, third = (new_task(store, spec(cpus=1)) for _ in range(3))
    assert scheduler.dispatch_once() == 2
    assert a.submitted == [first.id, second.id] and b.submitted == []
    assert third.id not in site.held()
