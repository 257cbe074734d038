"""Databases at an older schema revision, for tests of upgrades."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Table, inspect

from toolferry.store import db as db_module
from toolferry.store.db import Database, make_engine

__all__ = ["assert_table_as_declared", "database_at"]


def database_at(path: Path, revision: str) -> str:
    """The URL of a new SQLite database at ``path`` migrated only up to ``revision``."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(db_module._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()
    return url


def assert_table_as_declared(db: Database, table: Table, unique: list[str]) -> None:
    """The migrations made ``table`` with exactly its declared columns and one unique key."""
    found = inspect(db.engine)
    assert {c["name"] for c in found.get_columns(table.name)} == {c.name for c in table.columns}
    assert [u["column_names"] for u in found.get_unique_constraints(table.name)] == [unique]
