"""What every storage-credential store must do, whatever the database: subclass
:class:`CredentialStoreContract` beside a ``database_url`` fixture (a new, empty database)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.unit.store.migrating import (
    assert_table_as_declared,
    database_at,
    run_sql,
    table_names,
)

from toolferry.security.user_credentials import CredentialService
from toolferry.storage.base import Credential
from toolferry.store.credentials import SqlCredentialStore, StoredCredential
from toolferry.store.db import Database
from toolferry.store.sql import SqlTokenStore
from toolferry.store.tables import storage_credentials

__all__ = ["HEADER_SECRET", "SECRETS", "CredentialStoreContract", "put_alices_secrets", "record"]

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRETS = {
    "password": "pw-Correct-Horse",
    "token": "tok-Battery-Staple",
    "secret_key": "sk-wJalrXUtnFEMI",
    "session_token": "st-FwoGZXIvYXdzE",
}
HEADER_SECRET = "hdr-Tr0ub4dor"


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


def put_alices_secrets(db: Database, key_file: Path) -> None:
    service = CredentialService(SqlCredentialStore(db), key_file)
    service.put(
        "alice",
        "lab",
        Credential(
            prefix="s3://lab/",
            username="alice",
            access_key="AKIA1",
            headers={"X-Api-Key": HEADER_SECRET},
            **SECRETS,
        ),
    )


class CredentialStoreContract:
    @pytest.fixture
    def db(self, database_url: str) -> Iterator[Database]:
        database = Database.connect(database_url)
        yield database
        database.close()

    @pytest.fixture
    def store(self, db: Database) -> SqlCredentialStore:
        return SqlCredentialStore(db)

    def test_put_creates_then_replaces_keeping_the_creation_time(
        self, store: SqlCredentialStore
    ) -> None:
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

    def test_list_is_per_owner_and_by_name(self, store: SqlCredentialStore) -> None:
        for owner, name in [("alice", "b"), ("bob", "a"), ("alice", "a"), ("alice", "c")]:
            store.put(record(owner, name))
        assert [r.name for r in store.list("alice")] == ["a", "b", "c"]
        assert [(r.owner, r.name) for r in store.list("bob")] == [("bob", "a")]
        assert store.list("carol") == []

    def test_times_come_back_aware_and_in_utc(self, store: SqlCredentialStore) -> None:
        east = datetime(2026, 3, 4, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        store.put(record(created_at=east, updated_at=east))
        (found,) = store.list("alice")
        assert found.created_at == east and found.updated_at == east
        assert found.created_at.tzinfo is UTC
        assert (found.created_at.day, found.created_at.hour) == (3, 20)

    def test_delete_only_the_owners_credential(self, store: SqlCredentialStore) -> None:
        assert not store.any_stored()
        store.put(record("alice", "lab"))
        store.put(record("bob", "lab"))
        assert store.any_stored()
        assert not store.delete("carol", "lab")
        assert store.delete("alice", "lab")
        assert not store.delete("alice", "lab")
        assert store.list("alice") == [] and len(store.list("bob")) == 1

    def test_puts_of_one_name_at_once_create_it_once(self, store: SqlCredentialStore) -> None:
        results: list[bool] = []
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def put(n: int) -> None:
            try:
                start.wait(10)
                results.append(store.put(record(sealed=f"s{n}"))[1])
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=put, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert sorted(results) == [False] * 5 + [True]
        (stored,) = store.list("alice")
        assert stored.sealed in {f"s{n}" for n in range(6)}

    def test_the_repr_of_a_record_leaves_out_the_sealed_secrets(self) -> None:
        assert "gAAAA-sealed" not in repr(record())

    def test_the_database_holds_no_secret_in_clear(self, tmp_path: Path, db: Database) -> None:
        put_alices_secrets(db, tmp_path / "credentials.key")
        with db.read() as conn:
            (row,) = conn.execute(select(storage_credentials)).all()
        raw = " ".join(str(value) for value in row)
        for secret in [*SECRETS.values(), HEADER_SECRET]:
            assert secret not in raw
        assert row.secret_kinds == ["password", "token", "secret_key", "session_token"]
        assert row.header_names == ["X-Api-Key"]

    def test_the_migration_creates_exactly_the_declared_table(self, db: Database) -> None:
        assert_table_as_declared(db, storage_credentials, ["owner", "name"])

    def test_a_database_made_by_0001_upgrades_and_keeps_its_data(self, database_url: str) -> None:
        url = database_at(database_url, "0001")
        assert "storage_credentials" not in table_names(url)
        run_sql(
            url,
            'INSERT INTO tokens (id, "user", token_hash, admin, description, created_at, '
            "revoked) VALUES ('t1', 'alice', 'h1', :no, 'old', :at, :no)",
            no=False,
            at=datetime(2026, 1, 1),
        )
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
