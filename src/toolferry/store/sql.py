"""SQLAlchemy implementations of the task and token stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
    true,
    update,
)

from toolferry.domain.errors import Conflict, InvalidTask, NotFound
from toolferry.domain.events import Event, EventKind, apply
from toolferry.domain.states import State
from toolferry.domain.task import Task, TaskSpec, spec_from_dict
from toolferry.store import codec
from toolferry.store.base import StatePage, TaskPage, TaskQuery, TokenRecord
from toolferry.store.db import Database
from toolferry.store.listen import announce_queued
from toolferry.store.tables import task_events, task_tags, tasks, tokens

# Statements built once: SQLAlchemy then skips re-building and re-hashing them on every call,
# which dominated the cost of an event append.
_INSERT_EVENT = insert(task_events)
_INSERT_TASK = insert(tasks)
_UPDATE_TASK = update(tasks).where(tasks.c.id == bindparam("task_id_"))
_SELECT_TASK = select(tasks).where(tasks.c.id == bindparam("task_id_"))
# Appending an event needs the task's derived state but never its (immutable) spec.
_SELECT_STATE_COLUMNS = select(*(c for c in tasks.c if c.name != "spec"))
# FOR UPDATE: on PostgreSQL, a second writer of the same task waits here until the first
# commits, then reads its version (no lost update, no duplicate event seq). SQLite renders no
# clause: Database.write serialises its writers instead.
_SELECT_STATE_LOCKED = _SELECT_STATE_COLUMNS.where(
    tasks.c.id == bindparam("task_id_")
).with_for_update()
_SELECT_OWNER_STATE = select(tasks.c.owner, tasks.c.state).where(
    tasks.c.id == bindparam("task_id_")
)
_SELECT_SPEC = select(tasks.c.spec).where(tasks.c.id == bindparam("task_id_"))
_SPEC_CACHE_SIZE = 4096


def encode_page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith("after:"):
        raise InvalidTask("page_token", "is not a token this server issued")
    return raw.removeprefix("after:")


def _task_from_row(row: Row[Any], spec: TaskSpec | None = None) -> Task:
    return Task(
        id=row.id,
        owner=row.owner,
        spec=spec or spec_from_dict(row.spec),
        creation_time=codec.aware(row.creation_time),
        state=State(row.state),
        logs=codec.logs_from_json(row.logs),
        notes=tuple(row.notes),
        version=row.version,
    )


class SqlTaskStore:
    """Tasks as a snapshot row plus an append-only event table, written in one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: list[Callable[[Task], None]] = []
        self._specs: OrderedDict[str, TaskSpec] = OrderedDict()  # specs never change
        self._specs_lock = threading.Lock()

    def _remember(self, task_id: str, spec: TaskSpec) -> None:
        with self._specs_lock:
            self._specs[task_id] = spec
            self._specs.move_to_end(task_id)
            while len(self._specs) > _SPEC_CACHE_SIZE:
                self._specs.popitem(last=False)

    def _spec(self, conn: Connection, task_id: str) -> TaskSpec:
        with self._specs_lock:
            spec = self._specs.get(task_id)
        if spec is None:
            spec = spec_from_dict(conn.execute(_SELECT_SPEC, {"task_id_": task_id}).scalar_one())
            self._remember(task_id, spec)
        return spec

    def subscribe(self, listener: Callable[[Task], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, task: Task) -> None:
        for listener in self._listeners:
            listener(task)

    def create(self, task: Task) -> Task:
        queued = apply(task, Event.state(task.id, State.QUEUED))
        now = datetime.now(UTC)
        with self._db.write() as conn:
            conn.execute(
                _INSERT_TASK,
                {
                    "id": task.id,
                    "owner": task.owner,
                    "name": task.spec.name,
                    "state": str(queued.state),
                    "creation_time": task.creation_time,
                    "updated_at": now,
                    "version": queued.version,
                    "spec": codec.spec_to_json(task.spec),
                    "logs": codec.logs_to_json(queued.logs),
                    "notes": list(queued.notes),
                    "site": task.spec.backend_parameter("site"),
                },
            )
            if task.spec.tags:
                conn.execute(
                    insert(task_tags),
                    [{"task_id": task.id, "key": k, "value": v} for k, v in task.spec.tags.items()],
                )
            conn.execute(
                _INSERT_EVENT,
                {
                    "task_id": task.id,
                    "seq": queued.version,
                    "kind": str(EventKind.STATE),
                    "time": task.creation_time,
                    "data": {"state": str(State.QUEUED)},
                },
            )
            announce_queued(conn, task.id)
        self._remember(task.id, task.spec)
        self._notify(queued)
        return queued

    def append(self, *events: Event) -> Task:
        return self._append(events, after=None)

    def append_from(self, first_seq: int, events: list[Event]) -> Task:
        """Append events numbered ``first_seq``, ``first_seq + 1``, ... by another store (a
        site's agent), exactly once: those the task has already are skipped; a gap (the task
        lacks events before ``first_seq``) raises Conflict and changes nothing."""
        return self._append(tuple(events), after=first_seq - 1)

    def _append(self, events: tuple[Event, ...], *, after: int | None) -> Task:
        task_id = events[0].task_id
        if any(e.task_id != task_id for e in events):
            raise ValueError("events appended together must belong to one task")
        with self._db.write() as conn:
            row = conn.execute(_SELECT_STATE_LOCKED, {"task_id_": task_id}).one_or_none()
            if row is None:
                raise NotFound(f"no task {task_id}")
            task = _task_from_row(row, self._spec(conn, task_id))
            if after is not None:
                if after > task.version:
                    raise Conflict(
                        f"task {task_id} has {task.version} events; these start at {after + 1}"
                    )
                events = events[task.version - after :]
                if not events:
                    return task  # all of them arrived before
            rows = []
            for event in events:
                task = apply(task, event)
                rows.append(
                    {
                        "task_id": task_id,
                        "seq": task.version,
                        "kind": str(event.kind),
                        "time": event.time,
                        "data": codec.event_data_to_json(event.data),
                    }
                )
            conn.execute(_INSERT_EVENT, rows)
            conn.execute(
                _UPDATE_TASK,
                {
                    "task_id_": task_id,
                    "state": str(task.state),
                    "version": task.version,
                    "logs": codec.logs_to_json(task.logs),
                    "notes": list(task.notes),
                    "updated_at": events[-1].time,
                },
            )
            if task.state is State.QUEUED:  # back in the queue for another attempt
                announce_queued(conn, task_id)
        self._notify(task)
        return task

    def get(self, task_id: str) -> Task:
        with self._db.read() as conn:
            row = conn.execute(_SELECT_TASK, {"task_id_": task_id}).one_or_none()
        if row is None:
            raise NotFound(f"no task {task_id}")
        return _task_from_row(row)

    def owner_and_state(self, task_id: str) -> tuple[str, State]:
        """Who owns the task and its state, without decoding it (what polling clients ask)."""
        with self._db.read() as conn:
            row = conn.execute(_SELECT_OWNER_STATE, {"task_id_": task_id}).one_or_none()
        if row is None:
            raise NotFound(f"no task {task_id}")
        return row.owner, State(row.state)

    def query(self, query: TaskQuery) -> TaskPage:
        rows, token = self._page(select(tasks), query)
        return TaskPage(tasks=[_task_from_row(r) for r in rows], next_page_token=token)

    def query_states(self, query: TaskQuery) -> StatePage:
        rows, token = self._page(select(tasks.c.id, tasks.c.state), query)
        return StatePage(states=[(r.id, State(r.state)) for r in rows], next_page_token=token)

    def _page(self, base: Select[Any], query: TaskQuery) -> tuple[list[Row[Any]], str | None]:
        conditions = []
        if query.owner is not None:
            conditions.append(tasks.c.owner == query.owner)
        if query.name_prefix:
            # Not LIKE: SQLite's LIKE ignores case, and TES prefixes are exact.
            prefix = query.name_prefix
            conditions.append(func.substr(tasks.c.name, 1, len(prefix)) == prefix)
        if query.state is not None:
            conditions.append(tasks.c.state == str(query.state))
        for key, value in query.tags.items():
            match = and_(task_tags.c.task_id == tasks.c.id, task_tags.c.key == key)
            if value:
                match = and_(match, task_tags.c.value == value)
            conditions.append(exists().where(match))
        if query.page_token:
            conditions.append(tasks.c.id < decode_page_token(query.page_token))
        stmt = (
            base.where(and_(true(), *conditions))
            .order_by(tasks.c.id.desc())
            .limit(query.page_size + 1)
        )
        with self._db.read() as conn:
            rows = list(conn.execute(stmt).all())
        more = len(rows) > query.page_size
        rows = rows[: query.page_size]
        return rows, encode_page_token(rows[-1].id) if more and rows else None

    def events(self, task_id: str) -> list[Event]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(task_events)
                .where(task_events.c.task_id == task_id)
                .order_by(task_events.c.seq)
            ).all()
        return [
            Event(
                task_id=r.task_id,
                kind=EventKind(r.kind),
                data=dict(r.data),
                time=codec.aware(r.time),
                seq=r.seq,
            )
            for r in rows
        ]

    def in_states(
        self,
        states: frozenset[State],
        limit: int = 1000,
        exclude: frozenset[str] = frozenset(),
        site: str | None = None,
    ) -> list[Task]:
        stmt = _SELECT_STATE_COLUMNS.where(
            tasks.c.state.in_([str(s) for s in states]),
            tasks.c.site.is_(None) if site is None else tasks.c.site == site,
        )
        if exclude:
            stmt = stmt.where(tasks.c.id.not_in(sorted(exclude)))
        stmt = stmt.order_by(tasks.c.id).limit(limit)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
            return [_task_from_row(r, self._spec(conn, r.id)) for r in rows]

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())


class SqlTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _record(row: Row[Any]) -> TokenRecord:
        return TokenRecord(
            id=row.id,
            user=row.user,
            admin=row.admin,
            description=row.description,
            revoked=row.revoked,
        )

    def add(self, record: TokenRecord, token_hash: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                insert(tokens).values(
                    id=record.id,
                    user=record.user,
                    token_hash=token_hash,
                    admin=record.admin,
                    description=record.description,
                    created_at=datetime.now(UTC),
                    revoked=record.revoked,
                )
            )

    def by_hash(self, token_hash: str) -> TokenRecord | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(tokens).where(tokens.c.token_hash == token_hash)
            ).one_or_none()
        return self._record(row) if row else None

    def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        stmt = select(tokens).order_by(tokens.c.created_at)
        if user is not None:
            stmt = stmt.where(tokens.c.user == user)
        with self._db.read() as conn:
            return [self._record(r) for r in conn.execute(stmt).all()]

    def revoke(self, token_id: str) -> bool:
        with self._db.write() as conn:
            result = conn.execute(
                update(tokens).where(tokens.c.id == token_id).values(revoked=True)
            )
        return bool(result.rowcount)

    def any_active(self) -> bool:
        with self._db.read() as conn:
            return conn.execute(select(exists().where(tokens.c.revoked.is_(False)))).scalar_one()
