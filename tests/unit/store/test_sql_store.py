from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from toolferry.domain.errors import InvalidTask, InvalidTransition, NotFound
from toolferry.domain.events import Event, replay
from toolferry.domain.ids import new_task_id
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Task, TaskSpec
from toolferry.store.base import TaskQuery
from toolferry.store.db import Database
from toolferry.store.sql import SqlTaskStore, SqlTokenStore

SPEC = TaskSpec(executors=(Executor(image="img", command=("true",)),))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> SqlTaskStore:
    return SqlTaskStore(db)


def make(
    store: SqlTaskStore, name: str = "t", tags: dict[str, str] | None = None, owner: str = "a"
) -> Task:
    task = Task(
        id=new_task_id(),
        owner=owner,
        spec=replace(SPEC, name=name, tags=tags or {}),
        creation_time=datetime.now(UTC),
    )
    return store.create(task)


def test_create_queues_and_records_the_first_event(store: SqlTaskStore) -> None:
    task = make(store)
    assert task.state is State.QUEUED
    assert store.get(task.id) == task
    (event,) = store.events(task.id)
    assert event.data == {"state": "QUEUED"} and event.seq == 1


def test_the_snapshot_equals_a_replay_of_the_events(store: SqlTaskStore) -> None:
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


def test_an_illegal_event_stores_nothing(store: SqlTaskStore) -> None:
    task = make(store)
    with pytest.raises(InvalidTransition):
        store.append(Event.state(task.id, State.COMPLETE))
    assert store.get(task.id) == task
    assert len(store.events(task.id)) == 1


def test_unknown_task(store: SqlTaskStore) -> None:
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.append(Event.state("nope", State.CANCELED))


def test_listeners_see_committed_changes(store: SqlTaskStore) -> None:
    seen: list[State] = []
    store.subscribe(lambda t: seen.append(t.state))
    task = make(store)
    store.append(Event.state(task.id, State.CANCELED))
    assert seen == [State.QUEUED, State.CANCELED]


def test_pages_cover_every_task_once_newest_first(store: SqlTaskStore) -> None:
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


def test_a_forged_page_token_is_refused(store: SqlTaskStore) -> None:
    with pytest.raises(InvalidTask) as info:
        store.query(TaskQuery(page_token="garbage!"))
    assert info.value.field == "page_token"


def test_filters(store: SqlTaskStore) -> None:
    a = make(store, name="align-1", tags={"foo": "bar", "baz": "bat"})
    b = make(store, name="align_%", tags={"foo": "bat"}, owner="b")
    c = make(store, name="call", tags={})
    store.append(Event.state(c.id, State.CANCELED))

    def ids(**kw: object) -> set[str]:
        return {t.id for t in store.query(TaskQuery(**kw)).tasks}  # type: ignore[arg-type]

    assert ids(name_prefix="align") == {a.id, b.id}
    assert ids(name_prefix="align_%") == {b.id}  # LIKE wildcards are literal
    assert ids(state=State.CANCELED) == {c.id}
    assert ids(owner="b") == {b.id}
    assert ids(tags={"foo": "bar"}) == {a.id}
    assert ids(tags={"foo": ""}) == {a.id, b.id}
    assert ids(tags={"foo": "bar", "baz": "bat"}) == {a.id}
    assert ids(tags={"foo": "bat", "baz": "bat"}) == set()


def test_in_states_is_oldest_first(store: SqlTaskStore) -> None:
    ids = [make(store).id for _ in range(3)]
    assert [t.id for t in store.in_states(frozenset({State.QUEUED}))] == ids


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.sqlite'}"
    Database.connect(url).close()
    Database.connect(url).close()


def test_tokens_are_stored_hashed(db: Database) -> None:
    from toolferry.security.tokens import TokenService, hash_token

    service = TokenService(SqlTokenStore(db))
    assert not service.any_active()
    record, secret = service.create("alice", admin=True, description="laptop")
    assert service.verify(secret) == record
    assert service.verify(secret + "x") is None
    with db.read() as conn:
        stored = conn.exec_driver_sql("select token_hash from tokens").scalar_one()
    assert stored == hash_token(secret) and secret not in stored
    assert service.revoke(record.id)
    assert service.verify(secret) is None
    assert not service.any_active()


WRITER = """
import sys
from toolferry.domain.events import Event
from toolferry.store.db import Database
from toolferry.store.sql import SqlTaskStore
store = SqlTaskStore(Database.connect(sys.argv[1]))
for i in range(100):
    store.append(Event.metadata(sys.argv[2], **{f"{sys.argv[3]}{i}": "v"}))
"""


def test_writers_in_several_processes_queue_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    db = Database.connect(url)
    store = SqlTaskStore(db)
    task = make(store)
    store.append(Event.state(task.id, State.INITIALIZING))
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, task.id, f"p{n}"]) for n in range(3)
    ]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    events = store.events(task.id)
    assert [e.seq for e in events] == list(range(1, 303))
    assert len(store.get(task.id).logs[-1].metadata) == 300
    db.close()
