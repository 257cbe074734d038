"""Databases at an older schema revision, for tests of upgrades (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import DateTime, Table, inspect, text

from toolferry.store.columns import UtcDateTime
from toolferry.store.db import Database, make_engine, migrate

__all__ = ["assert_table_as_declared", "database_at", "run_sql", "table_names"]


def database_at(url: str, revision: str) -> str:
    """Migrate the empty database at ``url`` only up to ``revision``; return ``url``."""
    engine = make_engine(url)
    try:
        migrate(engine, revision)
    finally:
        engine.dispose()
    return url


def run_sql(url: str, statement: str, **params: Any) -> None:
    """Run one statement on ``url`` as older code would have, outside the stores."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def assert_table_as_declared(db: Database, table: Table, unique: list[str]) -> None:
    """The migrations made ``table`` with exactly its declared columns and one unique key;
    on PostgreSQL its times are ``timestamptz`` (SQLite has no such type)."""
    found = inspect(db.engine)
    columns = {c["name"]: c for c in found.get_columns(table.name)}
    assert set(columns) == {c.name for c in table.columns}
    assert [u["column_names"] for u in found.get_unique_constraints(table.name)] == [unique]
    if db.engine.dialect.name == "postgresql":
        for column in table.columns:
            if isinstance(column.type, UtcDateTime):
                reflected = columns[column.name]["type"]
                assert isinstance(reflected, DateTime) and reflected.timezone, column.name
