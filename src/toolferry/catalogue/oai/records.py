"""Environment versions as OAI records: identifiers, datestamps, sets and harvest order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from toolferry.catalogue.oai.sets import set_specs
from toolferry.domain.environment import Environment, Status

__all__ = [
    "Key",
    "Record",
    "Records",
    "harvest_order",
    "identifier_of",
    "record_of",
]

# A position in the harvest order: (updated in UTC at full precision, name, version).
Key = tuple[datetime, str, int]

# The records a response may show, loaded only when a verb needs them.
Records = Callable[[], Sequence["Record"]]


def identifier_of(repository_id: str, name: str, version: int) -> str:
    return f"oai:{repository_id}:{name}:{version}"


@dataclass(frozen=True)
class Record:
    """One environment version as the repository shows it."""

    identifier: str
    environment: Environment
    sets: tuple[str, ...]

    @property
    def updated(self) -> datetime:
        return self.environment.updated.astimezone(UTC)

    @property
    def deleted(self) -> bool:
        return self.environment.status is Status.DELETED

    @property
    def key(self) -> Key:
        return (self.updated, self.environment.name, self.environment.version)


def record_of(repository_id: str, env: Environment) -> Record:
    return Record(
        identifier=identifier_of(repository_id, env.name, env.version),
        environment=env,
        sets=set_specs(env),
    )


def harvest_order(records: Iterable[Record]) -> list[Record]:
    """Oldest change first, then by name and version. A version changed during a harvest
    moves past every position handed out before, so a harvest that resumes still gets it."""
    return sorted(records, key=lambda r: r.key)
