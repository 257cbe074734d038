"""The store contracts (tests/unit/store/contract) on PostgreSQL: each test gets a database
of its own, created on the ``postgres`` server and dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.store.postgres import fresh_database


@pytest.fixture
def database_url(postgres: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (the SQLite twin is in tests/unit/store/conftest.py)."""
    with fresh_database(postgres) as url:
        yield url
