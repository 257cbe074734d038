"""Engines by URL and the time column type, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from toolferry.store.columns import UtcDateTime
from toolferry.store.db import make_engine


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1:5432/db", "postgres://u@127.0.0.1/db"])
def test_postgresql_urls_use_psycopg(url: str) -> None:
    engine = make_engine(url)  # connects lazily: no server needed
    try:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        assert engine.url.database == "db"
    finally:
        engine.dispose()


def test_times_are_stored_as_utc_and_read_back_aware() -> None:
    sqlite = make_engine("sqlite://").dialect
    postgresql = make_engine("postgresql://u@127.0.0.1/db").dialect
    column = UtcDateTime()
    east = datetime(2026, 1, 2, 3, 0, tzinfo=timezone(timedelta(hours=2)))
    utc = datetime(2026, 1, 2, 1, 0, tzinfo=UTC)
    # SQLite keeps text without an offset: the UTC wall clock goes in.
    assert column.process_bind_param(east, sqlite) == utc.replace(tzinfo=None)
    assert column.process_bind_param(east, postgresql) == utc
    # Naive values are UTC already (what toolferry always stored).
    assert column.process_bind_param(utc.replace(tzinfo=None), postgresql) == utc
    back = column.process_result_value(utc.replace(tzinfo=None), sqlite)
    assert back == utc and back is not None and back.tzinfo is UTC
    back = column.process_result_value(east, postgresql)
    assert back == east and back is not None and back.tzinfo is UTC
    assert column.process_bind_param(None, sqlite) is None
    assert column.process_result_value(None, sqlite) is None
