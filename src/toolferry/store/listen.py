"""Wake-ups between hub replicas on PostgreSQL: a task that enters QUEUED is announced with
NOTIFY (sent when its transaction commits), and every replica LISTENs, so an idle replica
takes work at once instead of at its next poll."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "toolferry_queued"


def announce_queued(conn: Connection, task_id: str) -> None:
    """Tell the other replicas (on PostgreSQL) that ``task_id`` waits in the queue."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :task_id)"), {"channel": CHANNEL, "task_id": task_id}
        )


class QueueListener:
    """Calls ``on_queued(task_id)`` for every task another process queued."""

    def __init__(self, url: str, on_queued: Callable[[str], None]) -> None:
        self._url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_queued = on_queued
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="queue-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._on_queued(note.payload)
            except Exception as exc:  # the scheduler's polling covers the gap
                log.warning("listening for queued tasks failed (%s); again in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30)
