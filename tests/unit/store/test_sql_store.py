"""The task and token stores on SQLite (the contract; tests/integration/store runs it on
PostgreSQL)."""

from __future__ import annotations

from tests.unit.store.contract.tasks import TaskStoreContract


class TestTaskStoreOnSqlite(TaskStoreContract):
    pass
