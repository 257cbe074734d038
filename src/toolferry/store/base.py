"""Repository interfaces the rest of toolferry uses; implementations live beside this file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from toolferry.domain.events import Event
from toolferry.domain.states import State
from toolferry.domain.task import Task


@dataclass(frozen=True, kw_only=True)
class TaskQuery:
    owner: str | None = None  # None: every owner (admins)
    name_prefix: str | None = None
    state: State | None = None
    # TES tag filter: a key with "" as value matches any value of that key.
    tags: dict[str, str] = field(default_factory=dict)
    page_size: int = 256
    page_token: str | None = None


@dataclass(frozen=True, kw_only=True)
class TaskPage:
    tasks: list[Task]
    next_page_token: str | None


@dataclass(frozen=True, kw_only=True)
class StatePage:
    """A page of (id, state) pairs: what the MINIMAL view needs, without decoding tasks."""

    states: list[tuple[str, State]]
    next_page_token: str | None


class TaskStore(Protocol):
    """Tasks and their append-only event logs. ``append`` is the only way state changes."""

    def create(self, task: Task) -> Task:
        """Store a new task (state UNKNOWN) and its first event, QUEUED; return it queued."""
        ...

    def append(self, *events: Event) -> Task:
        """Fold ``events`` (of one task, in order) into it through the state machine, in one
        transaction; return the task. Raises NotFound, or InvalidTransition (nothing stored)."""
        ...

    def get(self, task_id: str) -> Task: ...

    def owner_and_state(self, task_id: str) -> tuple[str, State]: ...

    def query(self, query: TaskQuery) -> TaskPage: ...

    def query_states(self, query: TaskQuery) -> StatePage: ...

    def events(self, task_id: str) -> list[Event]: ...

    def in_states(
        self,
        states: frozenset[State],
        limit: int = 1000,
        exclude: frozenset[str] = frozenset(),
        site: str | None = None,
    ) -> list[Task]:
        """Tasks in ``states`` at ``site`` (None: the hub's own), oldest first, leaving out
        the ids in ``exclude``."""
        ...

    def subscribe(self, listener: Callable[[Task], None]) -> None:
        """Call ``listener`` with each task after a change to it is committed."""
        ...


@dataclass(frozen=True, kw_only=True)
class TokenRecord:
    id: str
    user: str
    admin: bool
    description: str
    revoked: bool


class TokenStore(Protocol):
    def add(self, record: TokenRecord, token_hash: str) -> None: ...

    def by_hash(self, token_hash: str) -> TokenRecord | None: ...

    def list_tokens(self, user: str | None = None) -> list[TokenRecord]: ...

    def revoke(self, token_id: str) -> bool: ...

    def any_active(self) -> bool: ...
