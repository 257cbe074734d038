"""Stored storage credentials: create/replace/list/delete, the 0002 migration, nothing in clear."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.unit.store.migrating import assert_table_as_declared, database_at

from toolferry.security.user_credentials import CredentialService
from toolferry.storage.base import Credential
from toolferry.store.credentials import SqlCredentialStore, StoredCredential
from toolferry.store.db import Database
from toolferry.store.sql import SqlTokenStore
from toolferry.store.tables import storage_credentials

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> SqlCredentialStore:
    return SqlCredentialStore(db)


def record(owner: str = "alice", name: str = "lab", **changes: object) -> StoredCredential:
    base = StoredCredential(
        owner=owner,
        name=name,
        prefix="s3://lab/",
        access_key="AKIA1",
        secret_kinds=("secret_key",),
        header_names=(),
        sealed="gAAAA-sealed",
        created_at=T0,
        updated_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_put_creates_then_replaces_keeping_the_creation_time(store: SqlCredentialStore) -> None:
    first, created = store.put(record())
    assert created and first == record()
    later = T0 + timedelta(hours=1)
    second, created = store.put(
        record(
            prefix="s3://lab/data/",
            username="u",
            access_key=None,
            secret_kinds=("password",),
            header_names=("X-Api-Key",),
            sealed="other",
            created_at=later,
            updated_at=later,
        )
    )
    assert not created
    assert second.created_at == T0 and second.updated_at == later
    assert store.list("alice") == [second]
    assert second.prefix == "s3://lab/data/" and second.access_key is None
    assert second.header_names == ("X-Api-Key",) and second.sealed == "other"


def test_list_is_per_owner_and_by_name(store: SqlCredentialStore) -> None:
    for owner, name in [("alice", "b"), ("bob", "a"), ("alice", "a"), ("alice", "c")]:
        store.put(record(owner, name))
    assert [r.name for r in store.list("alice")] == ["a", "b", "c"]
    assert [(r.owner, r.name) for r in store.list("bob")] == [("bob", "a")]
    assert store.list("carol") == []
    # Times come back aware (SQLite hands back naive ones).
    assert all(r.created_at.tzinfo is not None for r in store.list("alice"))


def test_delete_only_the_owners_credential(store: SqlCredentialStore) -> None:
    assert not store.any_stored()
    store.put(record("alice", "lab"))
    store.put(record("bob", "lab"))
    assert store.any_stored()
    assert not store.delete("carol", "lab")
    assert store.delete("alice", "lab")
    assert not store.delete("alice", "lab")
    assert store.list("alice") == [] and len(store.list("bob")) == 1


def test_the_repr_of_a_record_leaves_out_the_sealed_secrets() -> None:
    assert "gAAAA-sealed" not in repr(record())


def test_the_database_holds_no_secret_in_clear(tmp_path: Path, db: Database) -> None:
    secrets = {
        "password": "pw-Correct-Horse",
        "token": "tok-Battery-Staple",
        "secret_key": "sk-wJalrXUtnFEMI",
        "session_token": "st-FwoGZXIvYXdzE",
    }
    service = CredentialService(SqlCredentialStore(db), tmp_path / "credentials.key")
    service.put(
        "alice",
        "lab",
        Credential(
            prefix="s3://lab/",
            username="alice",
            access_key="AKIA1",
            headers={"X-Api-Key": "hdr-Tr0ub4dor"},
            **secrets,
        ),
    )
    with db.read() as conn:
        (row,) = conn.execute(select(storage_credentials)).all()
    raw = " ".join(str(value) for value in row)
    for secret in [*secrets.values(), "hdr-Tr0ub4dor"]:
        assert secret not in raw
    assert row.secret_kinds == ["password", "token", "secret_key", "session_token"]
    assert row.header_names == ["X-Api-Key"]
    # Nor do the database file's bytes (the WAL included).
    db.close()
    for path in tmp_path.glob("db.sqlite*"):
        data = path.read_bytes()
        for secret in [*secrets.values(), "hdr-Tr0ub4dor"]:
            assert secret.encode() not in data, path


def test_the_migration_creates_exactly_the_declared_table(db: Database) -> None:
    assert_table_as_declared(db, storage_credentials, ["owner", "name"])


def test_a_database_made_by_0001_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    url = database_at(tmp_path / "old.sqlite", "0001")
    raw = sqlite3.connect(tmp_path / "old.sqlite")
    assert "storage_credentials" not in {
        name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    raw.execute(
        "INSERT INTO tokens (id, user, token_hash, admin, description, created_at, revoked) "
        "VALUES ('t1', 'alice', 'h1', 0, 'old', '2026-01-01 00:00:00', 0)"
    )
    raw.commit()
    raw.close()

    upgraded = Database.connect(url)  # migrates to the newest revision
    try:
        (token,) = SqlTokenStore(upgraded).list_tokens()
        assert (token.id, token.user, token.description) == ("t1", "alice", "old")
        store = SqlCredentialStore(upgraded)
        assert store.put(record())[1]
        assert store.list("alice") == [record()]
    finally:
        upgraded.close()
    # Connecting again (migrating an up-to-date database) changes nothing.
    again = Database.connect(url)
    try:
        assert SqlCredentialStore(again).list("alice") == [record()]
    finally:
        again.close()
