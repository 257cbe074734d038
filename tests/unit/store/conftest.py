"""The store contracts (tests/unit/store/contract) run here on SQLite; tests/integration/store
runs them on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A new, empty SQLite database."""
    return f"sqlite:///{tmp_path / 'db.sqlite'}"
