"""Stored environments on SQLite: the contract (tests/integration/store runs it on
PostgreSQL)."""

from __future__ import annotations

from tests.unit.store.contract.environments import EnvironmentStoreContract


class TestEnvironmentStoreOnSqlite(EnvironmentStoreContract):
    pass
