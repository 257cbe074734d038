"""What every task and token store must do, whatever the database: subclass
:class:`TaskStoreContract` beside a ``database_url`` fixture (a new, empty database)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from toolferry.domain.errors import InvalidTask, InvalidTransition, NotFound
from toolferry.domain.events import Event, replay
from toolferry.domain.ids import new_task_id
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Task, TaskSpec
from toolferry.security.tokens import TokenService, hash_token
from toolferry.store.base import TaskQuery
from toolferry.store.db import Database
from toolferry.store.sql import SqlTaskStore, SqlTokenStore
from toolferry.store.tables import tasks

__all__ = ["TaskStoreContract"]

SPEC = TaskSpec(executors=(Executor(image="img", command=("true",)),))
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))

WRITER = """
import sys
from toolferry.domain.events import Event
from toolferry.store.db import Database
from toolferry.store.sql import SqlTaskStore
store = SqlTaskStore(Database.connect(sys.argv[1]))
for i in range(100):
    store.append(Event.metadata(sys.argv[2], **{f"{sys.argv[3]}{i}": "v"}))
"""


def make(
    store: SqlTaskStore,
    name: str = "t",
    tags: dict[str, str] | None = None,
    owner: str = "a",
    created: datetime | None = None,
) -> Task:
    task = Task(
        id=new_task_id(),
        owner=owner,
        spec=replace(SPEC, name=name, tags=tags or {}),
        creation_time=created or datetime.now(UTC),
    )
    return store.create(task)


class TaskStoreContract:
    @pytest.fixture
    def db(self, database_url: str) -> Iterator[Database]:
        database = Database.connect(database_url)
        yield database
        database.close()

    @pytest.fixture
    def store(self, db: Database) -> SqlTaskStore:
        return SqlTaskStore(db)

    def test_create_queues_and_records_the_first_event(self, store: SqlTaskStore) -> None:
        task = make(store)
        assert task.state is State.QUEUED
        assert store.get(task.id) == task
        (event,) = store.events(task.id)
        assert event.data == {"state": "QUEUED"} and event.seq == 1

    def test_the_snapshot_equals_a_replay_of_the_events(self, store: SqlTaskStore) -> None:
        task = make(store)
        for event in [
            Event.state(task.id, State.INITIALIZING, host="h"),
            Event.state(task.id, State.RUNNING),
            Event.executor_finished(task.id, 0, 0, started=datetime.now(UTC), stdout="o"),
            Event.output_uploaded(task.id, "file:///x", "/x", 3),
            Event.state(task.id, State.COMPLETE),
        ]:
            store.append(event)
        stored = store.get(task.id)
        initial = replace(stored, state=State.UNKNOWN, logs=(), notes=(), version=0)
        assert replay(initial, store.events(task.id)) == stored
        assert [e.seq for e in store.events(task.id)] == list(range(1, 7))

    def test_json_columns_keep_unicode_nul_and_nesting(self, store: SqlTaskStore) -> None:
        tags = {"projekt": "Grüße 🚀", "empty": "", "quote": 'a"b\\c'}
        task = make(store, name="ñame ✓", tags=tags)
        stdout = "line\x00with nul ✓\n"
        store.append(Event.state(task.id, State.INITIALIZING, host="h", note="ünï"))
        store.append(Event.executor_finished(task.id, 0, 3, started=T0, stdout=stdout))
        stored = store.get(task.id)
        assert stored.spec.tags == tags and stored.spec.name == "ñame ✓"
        assert stored.logs[-1].logs[0].stdout == stdout
        assert stored.logs[-1].logs[0].start_time == T0
        assert stored.logs[-1].metadata == {"host": "h", "note": "ünï"}
        assert store.events(task.id)[-1].data["stdout"] == stdout
        (found,) = store.query(TaskQuery(tags={"projekt": "Grüße 🚀"})).tasks
        assert found == stored

    def test_times_come_back_in_utc_whatever_zone_they_were_given_in(
        self, store: SqlTaskStore
    ) -> None:
        created = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=PLUS_TWO)
        task = make(store, created=created)
        stored = store.get(task.id)
        assert stored.creation_time == created
        assert stored.creation_time.tzinfo is UTC and stored.creation_time.hour == 5
        (event,) = store.events(task.id)
        assert event.time == created and event.time.tzinfo is UTC
        store.append(replace(Event.state(task.id, State.CANCELED), time=created))
        assert store.events(task.id)[-1].time == created

    def test_an_illegal_event_stores_nothing(self, store: SqlTaskStore) -> None:
        task = make(store)
        with pytest.raises(InvalidTransition):
            store.append(Event.state(task.id, State.COMPLETE))
        assert store.get(task.id) == task
        assert len(store.events(task.id)) == 1

    def test_unknown_task(self, store: SqlTaskStore) -> None:
        with pytest.raises(NotFound):
            store.get("nope")
        with pytest.raises(NotFound):
            store.append(Event.state("nope", State.CANCELED))
        with pytest.raises(NotFound):
            store.owner_and_state("nope")

    def test_listeners_see_committed_changes(self, store: SqlTaskStore) -> None:
        seen: list[State] = []
        store.subscribe(lambda t: seen.append(t.state))
        task = make(store)
        store.append(Event.state(task.id, State.CANCELED))
        assert seen == [State.QUEUED, State.CANCELED]
        assert store.owner_and_state(task.id) == ("a", State.CANCELED)

    def test_pages_cover_every_task_once_newest_first(self, store: SqlTaskStore) -> None:
        ids = [make(store).id for _ in range(7)]
        seen: list[str] = []
        token = None
        while True:
            page = store.query(TaskQuery(page_size=3, page_token=token))
            seen += [t.id for t in page.tasks]
            token = page.next_page_token
            if token is None:
                break
        assert seen == sorted(ids, reverse=True)
        states = store.query_states(TaskQuery(page_size=10))
        assert states.states == [(i, State.QUEUED) for i in sorted(ids, reverse=True)]
        assert states.next_page_token is None

    def test_a_forged_page_token_is_refused(self, store: SqlTaskStore) -> None:
        with pytest.raises(InvalidTask) as info:
            store.query(TaskQuery(page_token="garbage!"))
        assert info.value.field == "page_token"

    def test_filters(self, store: SqlTaskStore) -> None:
        a = make(store, name="align-1", tags={"foo": "bar", "baz": "bat"})
        b = make(store, name="align_%", tags={"foo": "bat"}, owner="b")
        c = make(store, name="call", tags={})
        make(store, name="Align-2")
        store.append(Event.state(c.id, State.CANCELED))

        def ids(**kw: object) -> set[str]:
            return {t.id for t in store.query(TaskQuery(**kw)).tasks}  # type: ignore[arg-type]

        assert ids(name_prefix="align") == {a.id, b.id}  # case matters
        assert ids(name_prefix="align_%") == {b.id}  # LIKE wildcards are literal
        assert ids(state=State.CANCELED) == {c.id}
        assert ids(owner="b") == {b.id}
        assert ids(tags={"foo": "bar"}) == {a.id}
        assert ids(tags={"foo": ""}) == {a.id, b.id}
        assert ids(tags={"foo": "bar", "baz": "bat"}) == {a.id}
        assert ids(tags={"foo": "bat", "baz": "bat"}) == set()

    def test_in_states_is_oldest_first(self, store: SqlTaskStore) -> None:
        ids = [make(store).id for _ in range(4)]
        assert [t.id for t in store.in_states(frozenset({State.QUEUED}))] == ids
        left = store.in_states(frozenset({State.QUEUED}), limit=2, exclude=frozenset({ids[0]}))
        assert [t.id for t in left] == ids[1:3]
        assert store.count() == 4

    def test_migrations_are_idempotent(self, database_url: str) -> None:
        Database.connect(database_url).close()
        db = Database.connect(database_url)
        try:
            make(SqlTaskStore(db))
        finally:
            db.close()
        again = Database.connect(database_url)
        try:
            assert SqlTaskStore(again).count() == 1
        finally:
            again.close()

    def test_tokens_are_stored_hashed(self, db: Database) -> None:
        service = TokenService(SqlTokenStore(db))
        assert not service.any_active()
        record, secret = service.create("alice", admin=True, description="laptop")
        other, _ = service.create("bob", admin=False, description="ci")
        assert service.verify(secret) == record
        assert service.verify(secret + "x") is None
        with db.read() as conn:
            stored = conn.exec_driver_sql(
                f"select token_hash from tokens where id = '{record.id}'"
            ).scalar_one()
        assert stored == hash_token(secret) and secret not in stored
        assert [t.id for t in SqlTokenStore(db).list_tokens("bob")] == [other.id]
        assert service.revoke(record.id)
        assert not SqlTokenStore(db).revoke("nope")
        assert service.verify(secret) is None
        assert service.any_active()
        assert service.revoke(other.id)
        assert not service.any_active()

    def test_a_writer_of_a_task_waits_for_the_transaction_holding_it(
        self, db: Database, store: SqlTaskStore
    ) -> None:
        """What another hub replica's append looks like from here: it holds the row until it
        commits, and this append then builds on what it wrote (no lost update)."""
        task = make(store)
        appended = threading.Event()

        def append_meanwhile() -> None:
            store.append(Event.system_log(task.id, "second"))
            appended.set()

        with db.write() as conn:
            conn.execute(update(tasks).where(tasks.c.id == task.id).values(notes=["first"]))
            writer = threading.Thread(target=append_meanwhile)
            writer.start()
            assert not appended.wait(0.3), "the append did not wait for the row lock"
        writer.join(10)
        assert appended.is_set()
        assert store.get(task.id).notes == ("first", "second")
        assert [e.seq for e in store.events(task.id)] == [1, 2]

    def test_concurrent_appends_to_one_task_are_all_kept(self, store: SqlTaskStore) -> None:
        task = make(store)
        store.append(Event.state(task.id, State.INITIALIZING))
        errors: list[BaseException] = []

        def write(prefix: str) -> None:
            try:
                for i in range(25):
                    store.append(Event.metadata(task.id, **{f"{prefix}{i}": "v"}))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(f"t{n}-",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert [e.seq for e in store.events(task.id)] == list(range(1, 103))
        assert len(store.get(task.id).logs[-1].metadata) == 100

    def test_writers_in_several_processes_queue_up(
        self, database_url: str, store: SqlTaskStore
    ) -> None:
        task = make(store)
        store.append(Event.state(task.id, State.INITIALIZING))
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER, database_url, task.id, f"p{n}"])
            for n in range(3)
        ]
        assert [p.wait(60) for p in procs] == [0, 0, 0]
        events = store.events(task.id)
        assert [e.seq for e in events] == list(range(1, 303))
        assert len(store.get(task.id).logs[-1].metadata) == 300
