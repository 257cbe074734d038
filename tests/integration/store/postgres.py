"""Fresh PostgreSQL databases for tests: one per test, dropped afterwards, so that tests can
run in parallel (each its own name) and leave nothing behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

__all__ = ["PREFIX", "exists", "fresh_database"]

PREFIX = "toolferry_test_"


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the server of ``server_url``; dropped on exit,
    connections still open to it included."""
    name = f"{PREFIX}{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def exists(server_url: str, database_url: str) -> bool:
    """Whether the database ``database_url`` names is on the server."""
    name = make_url(database_url).database
    with psycopg.connect(server_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None
