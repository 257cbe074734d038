"""The storage interface: four operations, a declared set of schemes, one error type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """A transfer failed; the message names the URL (credentials redacted) and the cause."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


@dataclass(frozen=True, kw_only=True)
class ObjectInfo:
    url: str
    size: int
    is_dir: bool = False


@dataclass(frozen=True, kw_only=True)
class Uploaded:
    """One file written to storage (directory uploads yield one per file)."""

    url: str
    path: Path
    size: int


class Storage(Protocol):
    """One family of URLs (a set of schemes)."""

    schemes: tuple[str, ...]

    def supports(self, url: str, *, write: bool) -> str | None:
        """``None`` if ``url`` can be read (or written) here, else the reason it cannot."""
        ...

    def stat(self, url: str) -> ObjectInfo: ...

    def get(self, url: str, dest: Path, *, directory: bool) -> None:
        """Download ``url`` to ``dest`` (a file, or a directory tree when ``directory``)."""
        ...

    def put(self, src: Path, url: str, *, directory: bool) -> list[Uploaded]:
        """Upload ``src`` (a file, or every file below a directory) to ``url``."""
        ...

    def list(self, url: str) -> list[ObjectInfo]: ...
