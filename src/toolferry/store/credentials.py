"""Users' storage credentials: the fields a listing shows in clear, the secrets as one sealed blob.

The store never sees a secret: :class:`toolferry.security.user_credentials.CredentialService`
encrypts them into ``sealed`` before they get here and decrypts them on the way out.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, and_, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from toolferry.store.codec import aware
from toolferry.store.db import Database
from toolferry.store.tables import storage_credentials

__all__ = ["CredentialStore", "SqlCredentialStore", "StoredCredential"]

_T = storage_credentials


@dataclass(frozen=True, kw_only=True)
class StoredCredential:
    """One credential as stored: ``sealed`` is the Fernet token holding the secrets."""

    owner: str
    name: str
    prefix: str
    username: str | None = None
    access_key: str | None = None
    secret_kinds: tuple[str, ...] = ()
    header_names: tuple[str, ...] = ()
    sealed: str = field(repr=False)
    created_at: datetime
    updated_at: datetime


class CredentialStore(Protocol):
    def put(self, record: StoredCredential) -> tuple[StoredCredential, bool]:
        """Create or replace the owner's credential of that name; True when it is new. A
        replaced credential keeps its ``created_at``."""
        ...

    def list(self, owner: str) -> builtins.list[StoredCredential]:
        """The owner's credentials, by name."""
        ...

    def delete(self, owner: str, name: str) -> bool: ...

    def any_stored(self) -> bool:
        """Whether any user has a credential (then a lost key cannot just be made anew)."""
        ...


class SqlCredentialStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _record(row: Row[Any]) -> StoredCredential:
        return StoredCredential(
            owner=row.owner,
            name=row.name,
            prefix=row.prefix,
            username=row.username,
            access_key=row.access_key,
            secret_kinds=tuple(row.secret_kinds),
            header_names=tuple(row.header_names),
            sealed=row.sealed,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )

    def put(self, record: StoredCredential) -> tuple[StoredCredential, bool]:
        try:
            return self._put(record)
        except IntegrityError:
            # PostgreSQL: another request inserted the same name between our read and our
            # insert; now the row exists and the second attempt replaces it.
            return self._put(record)

    def _put(self, record: StoredCredential) -> tuple[StoredCredential, bool]:
        key = and_(_T.c.owner == record.owner, _T.c.name == record.name)
        values = {
            "prefix": record.prefix,
            "username": record.username,
            "access_key": record.access_key,
            "secret_kinds": list(record.secret_kinds),
            "header_names": list(record.header_names),
            "sealed": record.sealed,
            "updated_at": record.updated_at,
        }
        with self._db.write() as conn:
            found = conn.execute(select(_T.c.created_at).where(key).with_for_update()).one_or_none()
            if found is None:
                conn.execute(
                    insert(_T).values(
                        owner=record.owner,
                        name=record.name,
                        created_at=record.created_at,
                        **values,
                    )
                )
                return record, True
            conn.execute(update(_T).where(key).values(**values))
        return replace(record, created_at=aware(found.created_at)), False

    def list(self, owner: str) -> builtins.list[StoredCredential]:
        stmt = select(_T).where(_T.c.owner == owner).order_by(_T.c.name)
        with self._db.read() as conn:
            return [self._record(row) for row in conn.execute(stmt).all()]

    def delete(self, owner: str, name: str) -> bool:
        with self._db.write() as conn:
            result = conn.execute(delete(_T).where(and_(_T.c.owner == owner, _T.c.name == name)))
        return bool(result.rowcount)

    def any_stored(self) -> bool:
        with self._db.read() as conn:
            return bool(conn.execute(select(exists().where(_T.c.id.is_not(None)))).scalar_one())
