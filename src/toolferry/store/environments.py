"""Catalogue environments as stored: one row per published version, its content final.

A version is added once; afterwards only its bookkeeping (status, review, ratings, counters,
``updated``) may change, and :meth:`SqlEnvironmentStore.change` refuses anything else.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy import Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from toolferry.domain.environment import Environment, environment_from_dict, environment_to_dict
from toolferry.domain.errors import Conflict, InvalidTransition, NotFound
from toolferry.store.db import Database
from toolferry.store.tables import environments

__all__ = ["DuplicateVersion", "EnvironmentStore", "SqlEnvironmentStore"]

_T = environments


class DuplicateVersion(Conflict):
    """That name and version is already published; a published version never changes."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"{ref} is already published and a published version never changes; "
            "publish the next version instead"
        )
        self.ref = ref


class EnvironmentStore(Protocol):
    def add(self, env: Environment) -> None:
        """Store a new version; :class:`DuplicateVersion` if its name and version exist."""
        ...

    def get(self, name: str, version: int) -> Environment | None: ...

    def latest(self, name: str) -> Environment | None:
        """The highest version of ``name``, whatever its status."""
        ...

    def versions(self, name: str) -> builtins.list[Environment]:
        """Every version of ``name``, oldest first."""
        ...

    def list(self) -> builtins.list[Environment]:
        """Every version of every environment, by name then version."""
        ...

    def change(
        self, name: str, version: int, how: Callable[[Environment], Environment]
    ) -> Environment:
        """Apply ``how`` to the stored version and store its bookkeeping, atomically."""
        ...


def _environment(row: Row[Any]) -> Environment:
    return environment_from_dict(row.document)


def _bookkeeping(env: Environment) -> dict[str, Any]:
    return {
        "status": env.status.value,
        "review": env.review.value,
        "updated": env.updated,
        "document": environment_to_dict(env),
    }


class SqlEnvironmentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, env: Environment) -> None:
        row = {
            "id": env.id,
            "name": env.name,
            "version": env.version,
            "kind": env.kind.value,
            "owner_id": env.owner_id,
            "group_id": env.group_id,
            "created": env.created,
            **_bookkeeping(env),
        }
        key = and_(_T.c.name == env.name, _T.c.version == env.version)
        try:
            with self._db.write() as conn:
                if conn.execute(select(_T.c.id).where(key)).first() is not None:
                    raise DuplicateVersion(env.ref)
                conn.execute(insert(_T).values(**row))
        except IntegrityError:
            # PostgreSQL: another request published the same version between our check and
            # our insert.
            raise DuplicateVersion(env.ref) from None

    def get(self, name: str, version: int) -> Environment | None:
        stmt = select(_T.c.document).where(and_(_T.c.name == name, _T.c.version == version))
        with self._db.read() as conn:
            row = conn.execute(stmt).one_or_none()
        return None if row is None else _environment(row)

    def latest(self, name: str) -> Environment | None:
        stmt = select(_T.c.document).where(_T.c.name == name).order_by(_T.c.version.desc())
        with self._db.read() as conn:
            row = conn.execute(stmt.limit(1)).one_or_none()
        return None if row is None else _environment(row)

    def versions(self, name: str) -> builtins.list[Environment]:
        stmt = select(_T.c.document).where(_T.c.name == name).order_by(_T.c.version)
        with self._db.read() as conn:
            return [_environment(row) for row in conn.execute(stmt).all()]

    def list(self) -> builtins.list[Environment]:
        stmt = select(_T.c.document).order_by(_T.c.name, _T.c.version)
        with self._db.read() as conn:
            return [_environment(row) for row in conn.execute(stmt).all()]

    def change(
        self, name: str, version: int, how: Callable[[Environment], Environment]
    ) -> Environment:
        key = and_(_T.c.name == name, _T.c.version == version)
        with self._db.write() as conn:
            row = conn.execute(select(_T.c.document).where(key).with_for_update()).one_or_none()
            if row is None:
                raise NotFound(f"no environment {name}:{version}")
            stored = _environment(row)
            changed = how(stored)
            _check_only_bookkeeping(stored, changed)
            conn.execute(update(_T).where(key).values(**_bookkeeping(changed)))
        return changed

    def replace_bookkeeping(self, env: Environment) -> Environment:
        """Store ``env``'s status, review, ratings and counters over the stored version's."""
        return self.change(env.name, env.version, lambda _: env)


_BOOKKEEPING = ("status", "review", "ratings", "total_exports", "active_deployments", "updated")


def _check_only_bookkeeping(stored: Environment, changed: Environment) -> None:
    kept = replace(changed, **{name: getattr(stored, name) for name in _BOOKKEEPING})
    if kept != stored:
        raise InvalidTransition(
            f"{stored.ref} is published: only its status, review, ratings and counters may change"
        )
