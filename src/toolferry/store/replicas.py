"""Hub replicas in the database: register, heartbeat, and retire the dead (exactly once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from toolferry.store.db import Database
from toolferry.store.tables import replicas

# seen_at of a replica that stopped cleanly: any live replica may adopt its tasks at once.
STOPPED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Replica:
    id: str
    host: str
    pid: int
    url: str
    started_at: datetime
    seen_at: datetime


class SqlReplicaStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def register(self, replica: Replica) -> None:
        with self._db.write() as conn:
            conn.execute(
                insert(replicas).values(
                    id=replica.id,
                    host=replica.host,
                    pid=replica.pid,
                    url=replica.url,
                    started_at=replica.started_at,
                    seen_at=replica.seen_at,
                )
            )

    def beat(self, replica_id: str, at: datetime) -> bool:
        """Record that the replica is alive; False when it was retired (declared dead)."""
        with self._db.write() as conn:
            done = conn.execute(
                update(replicas).where(replicas.c.id == replica_id).values(seen_at=at)
            )
            return done.rowcount == 1

    def all(self) -> list[Replica]:
        with self._db.read() as conn:
            rows = conn.execute(select(replicas).order_by(replicas.c.started_at)).all()
        return [
            Replica(
                id=r.id,
                host=r.host,
                pid=r.pid,
                url=r.url,
                started_at=r.started_at,
                seen_at=r.seen_at,
            )
            for r in rows
        ]

    def retire(self, replica_id: str, seen_before: datetime) -> bool:
        """Remove a replica not seen since ``seen_before``; True for the one caller that did
        (it adopts the replica's tasks), False if it beat meanwhile or another retired it."""
        with self._db.write() as conn:
            done = conn.execute(
                delete(replicas).where(
                    replicas.c.id == replica_id, replicas.c.seen_at < seen_before
                )
            )
            return done.rowcount == 1

    def bury(self, replica_id: str) -> None:
        """Give a replica that tasks name but that has no row (its adopter died before
        taking its tasks over) a dead row, so that exactly one live replica retires it and
        adopts them. Nothing happens if it has a row."""
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(replicas).values(
                        id=replica_id, host="", pid=0, url="", started_at=STOPPED, seen_at=STOPPED
                    )
                )
        except IntegrityError:
            pass  # it has a row (alive, or buried by another replica just now)

    def stop(self, replica_id: str) -> None:
        """Mark a replica that stops cleanly: its tasks may be adopted at once."""
        with self._db.write() as conn:
            conn.execute(
                update(replicas).where(replicas.c.id == replica_id).values(seen_at=STOPPED)
            )
