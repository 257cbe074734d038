"""What the site store (and the task store's exactly-once :meth:`append_from`, which the agent
protocol relies on) must do, whatever the database: subclass :class:`SiteStoreContract` beside a
``database_url`` fixture (a new, empty database). It runs here on SQLite
(tests/unit/store/conftest.py) and in tests/integration/store on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from toolferry.domain.errors import Conflict, NotFound
from toolferry.domain.events import Event, now
from toolferry.domain.ids import new_task_id
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Resources, Task, TaskSpec
from toolferry.store.db import Database
from toolferry.store.sites import SqlSiteStore
from toolferry.store.sql import SqlTaskStore
from toolferry.store.tables import site_deliveries

__all__ = ["SiteStoreContract"]

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def make(tasks: SqlTaskStore, site: str | None = None, owner: str = "alice") -> Task:
    """A QUEUED task bound to ``site`` (None: the hub's own)."""
    resources = Resources(backend_parameters={"site": site}) if site else None
    spec = TaskSpec(executors=(Executor(image="img", command=("true",)),), resources=resources)
    return tasks.create(Task(id=new_task_id(), owner=owner, spec=spec, creation_time=now()))


def ids(found: list[Task]) -> list[str]:
    return [t.id for t in found]


class SiteStoreContract:
    @pytest.fixture
    def db(self, database_url: str) -> Iterator[Database]:
        database = Database.connect(database_url)
        yield database
        database.close()

    @pytest.fixture
    def tasks(self, db: Database) -> SqlTaskStore:
        return SqlTaskStore(db)

    @pytest.fixture
    def sites(self, db: Database, tasks: SqlTaskStore) -> SqlSiteStore:
        store = SqlSiteStore(db, tasks)
        store.add("site-a", "partner A", "hash-a")
        store.add("site-b", "", "hash-b")
        return store

    def backdate_deliveries(self, db: Database, by: timedelta) -> None:
        with db.write() as conn:
            conn.execute(update(site_deliveries).values(delivered_at=now() - by))

    # -- enrolment and reports -----------------------------------------------------------------
    def test_an_enrolled_site_is_found_by_name_and_by_its_token_hash(
        self, sites: SqlSiteStore
    ) -> None:
        record = sites.get("site-a")
        assert (record.name, record.description, record.seen_at, record.info) == (
            "site-a",
            "partner A",
            None,
            {},
        )
        assert record.created_at.tzinfo is not None
        assert sites.by_token("hash-b") == sites.get("site-b")
        assert sites.by_token("hash-c") is None
        assert [r.name for r in sites.all()] == ["site-a", "site-b"]
        with pytest.raises(NotFound):
            sites.get("site-c")

    def test_a_name_is_enrolled_once(self, sites: SqlSiteStore) -> None:
        with pytest.raises(Conflict, match="site-a"):
            sites.add("site-a", "again", "hash-other")
        assert sites.by_token("hash-other") is None
        assert sites.get("site-a").description == "partner A"

    def test_a_report_records_when_the_site_was_seen_and_what_it_said(
        self, sites: SqlSiteStore
    ) -> None:
        before = now()
        info = {"datasets": [{"name": "adni", "description": "scores"}], "capacity": {"n": 2}}
        sites.report("site-a", info)
        record = sites.get("site-a")
        assert record.info == info
        assert record.seen_at is not None and before <= record.seen_at <= now()
        assert sites.get("site-b").seen_at is None

    # -- hand-out ----------------------------------------------------------------------------------
    def test_hand_out_gives_the_queued_tasks_of_that_site_only(
        self, sites: SqlSiteStore, tasks: SqlTaskStore
    ) -> None:
        mine = sorted([make(tasks, "site-a").id, make(tasks, "site-a").id])
        other = make(tasks, "site-b")
        own = make(tasks)  # the hub's own site runs it
        ended = make(tasks, "site-a")
        tasks.append(Event.state(ended.id, State.CANCELED, "canceled by the user"))

        handed = sites.hand_out("site-a", limit=32, redeliver_after=HOUR)

        assert ids(handed) == mine
        assert all(t.state is State.QUEUED for t in handed)
        assert [sites.delivered(i) for i in mine] == [True, True]
        assert not any(sites.delivered(t.id) for t in (other, own, ended))
        assert ids(sites.hand_out("site-b", limit=32, redeliver_after=HOUR)) == [other.id]

    def test_hand_out_gives_at_most_limit_tasks_oldest_id_first(
        self, sites: SqlSiteStore, tasks: SqlTaskStore
    ) -> None:
        made = sorted(make(tasks, "site-a").id for _ in range(3))
        assert ids(sites.hand_out("site-a", limit=2, redeliver_after=HOUR)) == made[:2]
        assert ids(sites.hand_out("site-a", limit=2, redeliver_after=HOUR)) == made[2:]

    def test_an_unconfirmed_task_is_handed_out_again_only_after_redeliver_after(
        self, sites: SqlSiteStore, tasks: SqlTaskStore, db: Database
    ) -> None:
        task = make(tasks, "site-a")
        assert ids(sites.hand_out("site-a", limit=32, redeliver_after=MINUTE)) == [task.id]
        assert sites.hand_out("site-a", limit=32, redeliver_after=MINUTE) == []
        self.backdate_deliveries(db, by=timedelta(seconds=30))
        assert sites.hand_out("site-a", limit=32, redeliver_after=MINUTE) == []
        self.backdate_deliveries(db, by=2 * MINUTE)
        assert ids(sites.hand_out("site-a", limit=32, redeliver_after=MINUTE)) == [task.id]
        # Handed out again means delivered again, now: the clock starts over.
        assert sites.hand_out("site-a", limit=32, redeliver_after=MINUTE) == []

    def test_a_confirmed_task_is_never_handed_out_again(
        self, sites: SqlSiteStore, tasks: SqlTaskStore, db: Database
    ) -> None:
        kept, lost = make(tasks, "site-a"), make(tasks, "site-a")
        assert len(sites.hand_out("site-a", limit=32, redeliver_after=MINUTE)) == 2
        sites.confirm("site-a", [kept.id])
        sites.confirm("site-b", [lost.id])  # another site cannot confirm site-a's task
        sites.confirm("site-a", [])
        self.backdate_deliveries(db, by=HOUR)
        assert ids(sites.hand_out("site-a", limit=32, redeliver_after=MINUTE)) == [lost.id]
        self.backdate_deliveries(db, by=HOUR)
        assert ids(sites.hand_out("site-a", limit=32, redeliver_after=timedelta(0))) == [lost.id]

    def test_a_task_canceled_at_the_hub_before_hand_out_is_not_handed_out(
        self, sites: SqlSiteStore, tasks: SqlTaskStore
    ) -> None:
        task = make(tasks, "site-a")
        tasks.append(Event.state(task.id, State.CANCELED, "canceled by the user"))
        assert sites.hand_out("site-a", limit=32, redeliver_after=timedelta(0)) == []
        assert not sites.delivered(task.id)

    def test_a_task_that_left_the_queue_is_not_handed_out_again(
        self, sites: SqlSiteStore, tasks: SqlTaskStore, db: Database
    ) -> None:
        task = make(tasks, "site-a")
        sites.hand_out("site-a", limit=32, redeliver_after=MINUTE)
        tasks.append_from(2, [Event.state(task.id, State.INITIALIZING)])
        self.backdate_deliveries(db, by=HOUR)
        assert sites.hand_out("site-a", limit=32, redeliver_after=MINUTE) == []

    # -- cancels -----------------------------------------------------------------------------------
    def test_cancel_requests_lists_requested_live_tasks_of_that_site_only(
        self, sites: SqlSiteStore, tasks: SqlTaskStore
    ) -> None:
        asked, quiet, ending = (make(tasks, "site-a") for _ in range(3))
        elsewhere = make(tasks, "site-b")
        sites.hand_out("site-a", limit=32, redeliver_after=HOUR)
        sites.hand_out("site-b", limit=32, redeliver_after=HOUR)
        for task in (asked, ending, elsewhere):
            sites.request_cancel(task.id)
        assert sorted(sites.cancel_requests("site-a")) == sorted([asked.id, ending.id])
        assert quiet.id not in sites.cancel_requests("site-a")

        # Once the task has ended (the agent's CANCELED arrived), nothing is left to do.
        tasks.append_from(2, [Event.state(ending.id, State.CANCELED, "canceled by the user")])
        assert sites.cancel_requests("site-a") == [asked.id]
        assert sites.cancel_requests("site-b") == [elsewhere.id]

    # -- events from the agent (SqlTaskStore.append_from) ----------------------------------------
    def test_append_from_applies_a_batch_sent_twice_once(
        self, sites: SqlSiteStore, tasks: SqlTaskStore
    ) -> None:
        task = make(tasks, "site-a")
        batch = [Event.state(task.id, State.INITIALIZING), Event.state(task.id, State.RUNNING)]
        assert tasks.append_from(2, batch).version == 3
        again = tasks.append_from(2, batch)
        assert (again.version, again.state) == (3, State.RUNNING)
        assert [e.seq for e in tasks.events(task.id)] == [1, 2, 3]
        assert len(tasks.get(task.id).logs) == 1

    def test_append_from_appends_only_the_new_tail_of_an_overlapping_batch(
        self, sites: SqlSiteStore, tasks: SqlTaskStore
    ) -> None:
        task = make(tasks, "site-a")
        initializing = Event.state(task.id, State.INITIALIZING)
        running = Event.state(task.id, State.RUNNING)
        complete = Event.state(task.id, State.COMPLETE)
        tasks.append_from(2, [initializing, running])
        done = tasks.append_from(2, [initializing, running, complete])
        assert (done.version, done.state) == (4, State.COMPLETE)
        events = tasks.events(task.id)
        assert [e.seq for e in events] == [1, 2, 3, 4]
        assert [e.data["state"] for e in events] == [
            "QUEUED",
            "INITIALIZING",
            "RUNNING",
            "COMPLETE",
        ]
        assert tasks.append_from(3, [running, complete]).version == 4  # all known already

    def test_append_from_with_a_gap_raises_conflict_and_changes_nothing(
        self, sites: SqlSiteStore, tasks: SqlTaskStore
    ) -> None:
        task = make(tasks, "site-a")
        tasks.append_from(2, [Event.state(task.id, State.INITIALIZING)])
        with pytest.raises(Conflict, match="start at 4"):
            tasks.append_from(4, [Event.state(task.id, State.COMPLETE)])
        assert tasks.get(task.id).state is State.INITIALIZING
        assert [e.seq for e in tasks.events(task.id)] == [1, 2]


class TestSiteStoreOnSqlite(SiteStoreContract):
    pass
