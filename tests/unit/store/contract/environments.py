"""What every environment store must do, whatever the database: subclass
:class:`EnvironmentStoreContract` beside a ``database_url`` fixture (a new, empty database)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tests.unit.store.migrating import (
    assert_table_as_declared,
    database_at,
    run_sql,
    table_names,
)

from toolferry.domain.environment import Classification, ContentType, Environment, Kind, Status
from toolferry.domain.errors import InvalidTransition, NotFound
from toolferry.store.credentials import SqlCredentialStore
from toolferry.store.db import Database
from toolferry.store.environments import DuplicateVersion, SqlEnvironmentStore
from toolferry.store.tables import environments

__all__ = ["EnvironmentStoreContract", "env"]

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
DIGEST = "sha256:" + "a" * 64


def env(name: str = "lab/align", version: int = 1, **changes: Any) -> Environment:
    base = Environment(
        id=f"{name}-{version}".replace("/", "-"),
        name=name,
        version=version,
        kind=Kind.OCI_IMAGE,
        digest=DIGEST,
        classification=Classification(title="Aligner", content_type=ContentType.OCI),
        created=T0,
        updated=T0,
        owner_id="alice",
        base=f"{name}:{version - 1}" if version > 1 else None,
    )
    return replace(base, **changes)


class EnvironmentStoreContract:
    @pytest.fixture
    def db(self, database_url: str) -> Iterator[Database]:
        database = Database.connect(database_url)
        yield database
        database.close()

    @pytest.fixture
    def store(self, db: Database) -> SqlEnvironmentStore:
        return SqlEnvironmentStore(db)

    def test_added_versions_read_back_equal(self, store: SqlEnvironmentStore) -> None:
        store.add(env())
        store.add(env(version=2))
        store.add(env("lab/qc"))
        assert store.get("lab/align", 1) == env()
        assert store.get("lab/align", 3) is None
        assert store.get("nope", 1) is None
        assert store.latest("lab/align") == env(version=2)
        assert store.latest("nope") is None
        assert store.versions("lab/align") == [env(), env(version=2)]
        assert store.versions("nope") == []
        assert [e.ref for e in store.list()] == ["lab/align:1", "lab/align:2", "lab/qc:1"]

    def test_the_document_keeps_unicode_and_times_in_another_zone(
        self, store: SqlEnvironmentStore
    ) -> None:
        west = datetime(2026, 7, 1, 22, 0, tzinfo=timezone(timedelta(hours=-7)))
        title = 'Aligner für Grüße ✓ "quoted" \\ 🚀'
        stored = env(
            classification=Classification(title=title, content_type=ContentType.OCI),
            created=west,
            updated=west,
        )
        store.add(stored)
        found = store.get("lab/align", 1)
        assert found == stored and found is not None
        assert found.classification.title == title and found.created == west

    def test_a_version_is_published_once(self, store: SqlEnvironmentStore) -> None:
        store.add(env())
        with pytest.raises(DuplicateVersion, match="lab/align:1 is already published"):
            store.add(env(id="other", digest="sha256:" + "b" * 64))
        assert store.versions("lab/align") == [env()]

    def test_of_versions_published_at_once_one_wins(self, store: SqlEnvironmentStore) -> None:
        won: list[str] = []
        lost: list[str] = []
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def publish(n: int) -> None:
            try:
                start.wait(10)
                store.add(env(id=f"try-{n}"))
                won.append(f"try-{n}")
            except DuplicateVersion:
                lost.append(f"try-{n}")
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=publish, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == [] and len(won) == 1 and len(lost) == 5
        assert [e.id for e in store.versions("lab/align")] == won

    def test_bookkeeping_changes_and_nothing_else(self, store: SqlEnvironmentStore) -> None:
        store.add(env())
        rated = store.replace_bookkeeping(env().with_rating(4).deprecate(now=T1))
        assert store.get("lab/align", 1) == rated
        assert (rated.status, rated.ratings, rated.updated) == (Status.DEPRECATED, (4,), T1)
        for changed in (
            replace(rated, digest="sha256:" + "b" * 64),
            replace(rated, classification=Classification(title="X", content_type=ContentType.OCI)),
            replace(rated, owner_id="bob"),
        ):
            with pytest.raises(InvalidTransition, match="only its status, review, ratings"):
                store.replace_bookkeeping(changed)
        assert store.get("lab/align", 1) == rated

    def test_change_applies_to_the_stored_version_or_says_not_found(
        self, store: SqlEnvironmentStore
    ) -> None:
        store.add(env())
        store.change("lab/align", 1, lambda e: e.with_rating(5))
        after = store.change("lab/align", 1, lambda e: e.with_rating(3))
        assert after.ratings == (5, 3)
        with pytest.raises(NotFound, match="no environment lab/align:2"):
            store.change("lab/align", 2, lambda e: e)

    def test_changes_at_once_are_all_kept(self, store: SqlEnvironmentStore) -> None:
        """The row lock makes each change start from the one before (no lost rating)."""
        store.add(env())
        errors: list[BaseException] = []

        def rate(stars: int) -> None:
            try:
                for _ in range(5):
                    store.change("lab/align", 1, lambda e: e.with_rating(stars))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=rate, args=(n,)) for n in range(1, 5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        found = store.get("lab/align", 1)
        assert found is not None
        assert sorted(found.ratings) == sorted([1, 2, 3, 4] * 5)

    def test_a_failed_change_stores_nothing(self, store: SqlEnvironmentStore) -> None:
        store.add(env())

        def boom(e: Environment) -> Environment:
            raise InvalidTransition("no")

        with pytest.raises(InvalidTransition):
            store.change("lab/align", 1, boom)
        assert store.get("lab/align", 1) == env()

    def test_the_migration_creates_exactly_the_declared_table(self, db: Database) -> None:
        assert_table_as_declared(db, environments, ["name", "version"])

    def test_a_database_made_by_0002_upgrades_and_keeps_its_data(self, database_url: str) -> None:
        url = database_at(database_url, "0002")
        tables = table_names(url)
        assert "storage_credentials" in tables and "environments" not in tables
        run_sql(
            url,
            "INSERT INTO storage_credentials (owner, name, prefix, secret_kinds, header_names, "
            "sealed, created_at, updated_at) VALUES ('alice', 'lab', 's3://lab/', '[]', '[]', "
            "'sealed', :at, :at)",
            at=datetime(2026, 1, 1),
        )
        upgraded = Database.connect(url)  # migrates to the newest revision
        try:
            assert [c.name for c in SqlCredentialStore(upgraded).list("alice")] == ["lab"]
            store = SqlEnvironmentStore(upgraded)
            store.add(env())
            assert store.latest("lab/align") == env()
        finally:
            upgraded.close()
        again = Database.connect(url)
        try:
            assert SqlEnvironmentStore(again).versions("lab/align") == [env()]
        finally:
            again.close()
