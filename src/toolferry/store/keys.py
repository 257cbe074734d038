"""Users' public keys in the database."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from toolferry.domain.events import now
from toolferry.store.db import Database
from toolferry.store.tables import user_keys


class SqlKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, user: str, public_key: str) -> None:
        with self._db.write() as conn:
            conn.execute(delete(user_keys).where(user_keys.c.user == user))
            conn.execute(
                insert(user_keys).values(user=user, public_key=public_key, updated_at=now())
            )

    def get(self, user: str) -> str | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(user_keys.c.public_key).where(user_keys.c.user == user)
            ).one_or_none()
        return str(row.public_key) if row is not None else None
