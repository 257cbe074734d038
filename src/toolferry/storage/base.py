"""The storage interface: four operations, a declared set of schemes and operations, one error.

Every storage implements :class:`Storage` for one family of URL schemes and declares which
:class:`Operation` it supports, so that a task asking for something its target cannot do (a
DIRECTORY input over plain HTTP, say) is refused at submission instead of failing mid-run.

Secrets never travel inside a storage object shared between users: each call gets the
:class:`Credential` that applies to its URL (or ``None``), resolved per task by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "Credential",
    "LocalStorage",
    "ObjectInfo",
    "Operation",
    "Storage",
    "StorageError",
    "Uploaded",
]


class StorageError(Exception):
    """A transfer failed; the message names the URL (credentials redacted) and the cause."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


class Operation(StrEnum):
    """What a storage can do; declared as data (:attr:`Storage.operations`)."""

    STAT = "stat"
    GET = "get"
    PUT = "put"
    LIST = "list"
    GET_DIRECTORY = "get_directory"
    PUT_DIRECTORY = "put_directory"


@dataclass(frozen=True, kw_only=True)
class Credential:
    """Secrets for every URL that starts with ``prefix``: given to one transfer, never logged.

    Which fields matter depends on the scheme: ``username``/``password`` (HTTP basic, WebDAV,
    FTP), ``token`` (a bearer token for HTTP and WebDAV), ``access_key``/``secret_key``/
    ``session_token`` (S3), ``headers`` (extra HTTP headers such as an API key).
    """

    prefix: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)

    def secrets(self) -> list[str]:
        """Every secret value, longest first, to scrub from messages that might echo one."""
        values = [self.password, self.token, self.secret_key, self.session_token]
        values += list(self.headers.values())
        return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)

    def applies_to(self, url: str) -> bool:
        return url.startswith(self.prefix)


@dataclass(frozen=True, kw_only=True)
class ObjectInfo:
    """What :meth:`Storage.stat` learns about a URL without fetching it.

    ``etag`` and ``modified`` are the server's validators, verbatim; with ``size`` they key the
    input cache, so a changed object is never served from it.
    """

    url: str
    size: int  # -1 when the server does not say
    is_dir: bool = False
    etag: str | None = None
    modified: str | None = None

    def validators(self) -> dict[str, str] | None:
        """The fields that tell one version of the object from another, or ``None`` if the
        server gives none (then the object cannot be cached by URL)."""
        found = {k: v for k, v in (("etag", self.etag), ("modified", self.modified)) if v}
        if not found:
            return None
        if self.size >= 0:
            found["size"] = str(self.size)
        return found


@dataclass(frozen=True, kw_only=True)
class Uploaded:
    """One file written to storage (directory uploads yield one per file)."""

    url: str
    path: Path
    size: int


@runtime_checkable
class LocalStorage(Protocol):
    """A storage whose objects are files on this host (file://, hub://): they can be read in
    place, e.g. a ``streamable`` input mounted read-only instead of staged."""

    def local_path(self, url: str) -> Path:
        """The real, confined host path ``url`` names; :class:`StorageError` if none."""
        ...


class Storage(Protocol):
    """One family of URLs (a set of schemes)."""

    schemes: tuple[str, ...]
    operations: frozenset[Operation]

    def supports(self, url: str, *, write: bool) -> str | None:
        """``None`` if ``url`` is well formed for reading (or writing) here, else why not."""
        ...

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo: ...

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        """Download ``url`` to ``dest`` (a file, or a directory tree when ``directory``).

        ``dest`` appears complete or not at all. Returns the file's sha256 (hex) when it was
        computed during the transfer, else ``None`` (the caller hashes what arrived).
        """
        ...

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        """Upload ``src`` (a file, or every file below a directory) to ``url``."""
        ...

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        """Every file below ``url``, recursively and sorted (a file lists as itself)."""
        ...
