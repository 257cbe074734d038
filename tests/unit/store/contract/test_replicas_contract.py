"""What the replica store must do, whatever the database: subclass
:class:`ReplicaStoreContract` beside a ``database_url`` fixture (a new, empty database). It runs
here on SQLite (tests/unit/store/conftest.py) and in tests/integration/store on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from toolferry.store.db import Database
from toolferry.store.replicas import STOPPED, Replica, SqlReplicaStore

__all__ = ["ReplicaStoreContract"]

T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def replica(replica_id: str, seen_at: datetime = T0, started_at: datetime = T0) -> Replica:
    return Replica(
        id=replica_id,
        host="hub-1.example.org",
        pid=4242,
        url="http://10.0.0.1:8000",
        started_at=started_at,
        seen_at=seen_at,
    )


def race(contenders: list[SqlReplicaStore], victim: str, seen_before: datetime) -> list[bool]:
    """What each contender's ``retire`` answered, all asking at once."""
    start = threading.Barrier(len(contenders))
    won: list[bool] = []
    errors: list[BaseException] = []

    def retire(store: SqlReplicaStore) -> None:
        try:
            start.wait(10)
            won.append(store.retire(victim, seen_before))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=retire, args=(store,)) for store in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return won


class ReplicaStoreContract:
    @pytest.fixture
    def db(self, database_url: str) -> Iterator[Database]:
        database = Database.connect(database_url)
        yield database
        database.close()

    @pytest.fixture
    def replicas(self, db: Database) -> SqlReplicaStore:
        return SqlReplicaStore(db)

    def test_registered_replicas_are_listed_oldest_first(self, replicas: SqlReplicaStore) -> None:
        late = replica("b", started_at=T0 + SECOND)
        replicas.register(late)
        replicas.register(replica("a"))
        assert replicas.all() == [replica("a"), late]
        assert all(r.seen_at.tzinfo is not None for r in replicas.all())

    def test_a_beat_records_when_the_replica_was_seen(self, replicas: SqlReplicaStore) -> None:
        replicas.register(replica("a"))
        replicas.register(replica("b"))
        assert replicas.beat("a", T0 + 5 * SECOND) is True
        seen = {r.id: r.seen_at for r in replicas.all()}
        assert seen == {"a": T0 + 5 * SECOND, "b": T0}

    def test_a_beat_of_a_retired_or_unknown_replica_is_false(
        self, replicas: SqlReplicaStore
    ) -> None:
        replicas.register(replica("a"))
        assert replicas.retire("a", T0 + SECOND)
        assert replicas.beat("a", T0 + 2 * SECOND) is False
        assert replicas.beat("never", T0) is False
        assert replicas.all() == []

    def test_only_a_replica_not_seen_since_the_time_is_retired(
        self, replicas: SqlReplicaStore
    ) -> None:
        replicas.register(replica("a"))
        assert replicas.retire("a", T0 - SECOND) is False
        assert replicas.retire("a", T0) is False  # seen exactly then: not before
        assert replicas.retire("a", T0 + timedelta(microseconds=1)) is True
        assert replicas.retire("a", T0 + SECOND) is False  # only once
        assert replicas.retire("never", T0 + SECOND) is False

    def test_a_beat_saves_a_replica_from_a_retirement_decided_before_it(
        self, replicas: SqlReplicaStore
    ) -> None:
        replicas.register(replica("a"))
        assert replicas.beat("a", T0 + 10 * SECOND)
        assert replicas.retire("a", T0 + 5 * SECOND) is False
        assert [r.id for r in replicas.all()] == ["a"]

    def test_of_replicas_retiring_one_at_once_exactly_one_wins(
        self, replicas: SqlReplicaStore, database_url: str
    ) -> None:
        """Each contender has its own connection pool, as replicas in other processes do."""
        dbs = [Database.connect(database_url) for _ in range(4)]
        try:
            for victim in ("dead1", "dead2", "dead3"):
                replicas.register(replica(victim))
                won = race([SqlReplicaStore(db) for db in dbs], victim, T0 + SECOND)
                assert sorted(won) == [False, False, False, True]
        finally:
            for db in dbs:
                db.close()
        assert replicas.all() == []

    def test_a_stopped_replica_may_be_retired_at_once(self, replicas: SqlReplicaStore) -> None:
        now = datetime.now(UTC)
        replicas.register(replica("a", seen_at=now, started_at=now))
        replicas.register(replica("b", seen_at=now, started_at=now + SECOND))
        lease_ago = now - 10 * SECOND
        assert replicas.retire("a", lease_ago) is False  # alive
        replicas.stop("a")
        assert [r.seen_at for r in replicas.all()] == [STOPPED, now]
        assert replicas.retire("a", lease_ago) is True
        assert [r.id for r in replicas.all()] == ["b"]


class TestReplicaStoreOnSqlite(ReplicaStoreContract):
    pass
