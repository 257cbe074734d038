"""Stored storage credentials on SQLite: the contract (tests/integration/store runs it on
PostgreSQL), and no secret in the database files."""

from __future__ import annotations

from pathlib import Path

from tests.unit.store.contract.credentials import (
    HEADER_SECRET,
    SECRETS,
    CredentialStoreContract,
    put_alices_secrets,
)

from toolferry.store.db import Database


class TestCredentialStoreOnSqlite(CredentialStoreContract):
    def test_the_database_files_hold_no_secret_in_clear(
        self, tmp_path: Path, database_url: str
    ) -> None:
        db = Database.connect(database_url)
        put_alices_secrets(db, tmp_path / "credentials.key")
        db.close()
        files = list(tmp_path.glob("db.sqlite*"))
        assert files
        for path in files:  # the WAL included
            data = path.read_bytes()
            for secret in [*SECRETS.values(), HEADER_SECRET]:
                assert secret.encode() not in data, path
