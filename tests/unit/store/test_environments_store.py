"""Stored environments: add once, read by name and version, bookkeeping only; the 0003
migration."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.unit.store.migrating import assert_table_as_declared, database_at

from toolferry.domain.environment import Classification, ContentType, Environment, Kind, Status
from toolferry.domain.errors import InvalidTransition, NotFound
from toolferry.store.credentials import SqlCredentialStore
from toolferry.store.db import Database
from toolferry.store.environments import DuplicateVersion, SqlEnvironmentStore
from toolferry.store.tables import environments

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


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> SqlEnvironmentStore:
    return SqlEnvironmentStore(db)


def test_added_versions_read_back_equal(store: SqlEnvironmentStore) -> None:
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


def test_a_version_is_published_once(store: SqlEnvironmentStore) -> None:
    store.add(env())
    with pytest.raises(DuplicateVersion, match="lab/align:1 is already published"):
        store.add(env(id="other", digest="sha256:" + "b" * 64))
    assert store.versions("lab/align") == [env()]


def test_bookkeeping_changes_and_nothing_else(store: SqlEnvironmentStore) -> None:
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
    store: SqlEnvironmentStore,
) -> None:
    store.add(env())
    store.change("lab/align", 1, lambda e: e.with_rating(5))
    after = store.change("lab/align", 1, lambda e: e.with_rating(3))
    assert after.ratings == (5, 3)
    with pytest.raises(NotFound, match="no environment lab/align:2"):
        store.change("lab/align", 2, lambda e: e)


def test_a_failed_change_stores_nothing(store: SqlEnvironmentStore) -> None:
    store.add(env())

    def boom(e: Environment) -> Environment:
        raise InvalidTransition("no")

    with pytest.raises(InvalidTransition):
        store.change("lab/align", 1, boom)
    assert store.get("lab/align", 1) == env()


def test_the_migration_creates_exactly_the_declared_table(db: Database) -> None:
    assert_table_as_declared(db, environments, ["name", "version"])


def test_a_database_made_by_0002_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    url = database_at(tmp_path / "old.sqlite", "0002")
    raw = sqlite3.connect(tmp_path / "old.sqlite")
    tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "storage_credentials" in tables and "environments" not in tables
    raw.execute(
        "INSERT INTO storage_credentials (owner, name, prefix, secret_kinds, header_names, "
        "sealed, created_at, updated_at) VALUES ('alice', 'lab', 's3://lab/', '[]', '[]', "
        "'sealed', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    raw.commit()
    raw.close()

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
