"""The task, token, credential and environment stores on PostgreSQL: the same contracts the
SQLite stores meet (tests/unit/store), plus what only PostgreSQL has."""

from __future__ import annotations

from sqlalchemy import JSON, DateTime, inspect
from tests.integration.store.postgres import exists, fresh_database
from tests.unit.store.contract.credentials import CredentialStoreContract
from tests.unit.store.contract.environments import EnvironmentStoreContract
from tests.unit.store.contract.tasks import TaskStoreContract
from tests.unit.store.contract.test_replicas_contract import ReplicaStoreContract
from tests.unit.store.contract.test_sites_contract import SiteStoreContract

from toolferry.store.db import Database
from toolferry.store.tables import metadata


class TestTaskStoreOnPostgres(TaskStoreContract):
    pass


class TestCredentialStoreOnPostgres(CredentialStoreContract):
    pass


class TestEnvironmentStoreOnPostgres(EnvironmentStoreContract):
    pass


class TestReplicaStoreOnPostgres(ReplicaStoreContract):
    pass


class TestSiteStoreOnPostgres(SiteStoreContract):
    pass


def test_the_migrations_make_timestamptz_and_json_columns(database_url: str) -> None:
    db = Database.connect(database_url)
    try:
        assert db.engine.dialect.driver == "psycopg"
        found = inspect(db.engine)
        assert set(found.get_table_names()) == {*metadata.tables, "alembic_version"}
        kinds: dict[str, set[str]] = {"time": set(), "json": set()}
        for table in metadata.sorted_tables:
            for column in found.get_columns(table.name):
                where = f"{table.name}.{column['name']}"
                if isinstance(column["type"], DateTime):
                    assert column["type"].timezone, f"{where} is a timestamp without time zone"
                    kinds["time"].add(where)
                elif isinstance(column["type"], JSON):
                    kinds["json"].add(where)
        assert "tasks.creation_time" in kinds["time"] and "task_events.time" in kinds["time"]
        assert {"tasks.spec", "tasks.logs", "task_events.data"} <= kinds["json"]
        assert "environments.document" in kinds["json"]
    finally:
        db.close()


def test_hubs_migrating_one_database_at_once_both_succeed(database_url: str) -> None:
    """Replicas starting together take turns on an advisory lock instead of racing to create
    the same tables."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def connect() -> None:
        try:
            start.wait(10)
            Database.connect(database_url).close()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_a_fresh_database_is_dropped_afterwards_even_with_connections_open(
    postgres: str,
) -> None:
    with fresh_database(postgres) as url:
        db = Database.connect(url)  # left open on purpose
        assert exists(postgres, url)
    assert not exists(postgres, url)
    db.close()
