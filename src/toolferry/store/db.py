"""Engine creation and migrations; SQLite gets WAL and a write lock, PostgreSQL row locks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant unique to toolferry; PostgreSQL advisory locks are keyed by a bigint.
_MIGRATION_LOCK = 0x746F6F6C66657272  # b"toolferr"


def make_engine(url: str, *, immediate: bool = False) -> Engine:
    """An engine for ``url``; for SQLite, creates the folder and sets the pragmas we rely on.

    ``immediate`` (SQLite): every transaction takes the write lock when it begins, so writers
    in different processes queue up instead of failing halfway on a stale read."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        if immediate:

            @event.listens_for(engine, "connect")
            def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None

            @event.listens_for(engine, "begin")
            def _begin_immediate(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        # psycopg (3) is the driver toolferry depends on; "postgres://" is the libpq spelling.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, the newest by default (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Hubs starting together on one database take turns: the first migrates, the
            # others then find the schema current. Released when this transaction ends.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


class Database:
    """An engine plus the write discipline of its dialect."""

    def __init__(self, engine: Engine, write_engine: Engine | None = None) -> None:
        self.engine = engine
        self.write_engine = write_engine or engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite allows one writer; serialising writers in-process avoids SQLITE_BUSY storms
        # between threads; BEGIN IMMEDIATE serialises them across processes.
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @classmethod
    def connect(cls, url: str) -> Database:
        engine = make_engine(url)
        write = make_engine(url, immediate=True) if engine.dialect.name == "sqlite" else engine
        db = cls(engine, write)
        migrate(db.write_engine)
        return db

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction for writing; commits on success."""
        if self._write_lock is None:
            with self.write_engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.write_engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()
        self.write_engine.dispose()
