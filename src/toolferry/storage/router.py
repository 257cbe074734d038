"""Picks the storage for a URL by its scheme; an unknown scheme is refused with the known ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from toolferry.storage.base import (
    Credential,
    ObjectInfo,
    Operation,
    Storage,
    StorageError,
    Uploaded,
)
from toolferry.storage.file import FileStorage
from toolferry.storage.http import HttpStorage
from toolferry.storage.integrity import split_checksum
from toolferry.storage.redact import redact

__all__ = ["StorageRouter", "default_router", "scheme_of"]


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case; ``"file"`` for a bare absolute path, ``""`` for neither."""
    if url.startswith("/"):
        return "file"
    return urlsplit(url).scheme


class StorageRouter:
    """Every storage of a site, by scheme; also forwards the four operations to the right one."""

    def __init__(self, storages: Iterable[Storage]) -> None:
        self._by_scheme: dict[str, Storage] = {}
        for storage in storages:
            for scheme in storage.schemes:
                if scheme in self._by_scheme:
                    raise ValueError(f"two storages claim the scheme {scheme!r}")
                self._by_scheme[scheme] = storage

    @property
    def schemes(self) -> list[str]:
        return sorted(self._by_scheme)

    def for_url(self, url: str) -> Storage:
        """The storage for ``url``; :class:`StorageError` when no storage here handles it."""
        storage = self._route(url)
        if isinstance(storage, str):
            raise StorageError(redact(url), storage)
        return storage

    def operations(self) -> dict[str, list[str]]:
        """Each scheme and the operations its storage supports (for service-info)."""
        return {s: sorted(self._by_scheme[s].operations) for s in self.schemes}

    def check(self, url: str, write: bool, *, directory: bool = False) -> str | None:
        """``None`` if ``url`` can be read (or written) here, else why not, for the submitter.

        An input URL may end in ``#sha256=<hex>``; outputs may not (nothing would check it).
        """
        storage = self._route(url)
        if isinstance(storage, str):
            return storage
        try:
            bare, checksum = split_checksum(url)
        except ValueError as exc:
            return f"{redact(url)}: {exc}"
        if checksum is not None and (write or directory):
            what = "an output" if write else "a DIRECTORY input"
            return f"{redact(url)}: a #sha256= checksum cannot be given for {what}"
        needed = {
            (False, False): Operation.GET,
            (False, True): Operation.GET_DIRECTORY,
            (True, False): Operation.PUT,
            (True, True): Operation.PUT_DIRECTORY,
        }[write, directory]
        if needed not in storage.operations:
            kind = "directories" if directory else "files"
            verb = "upload" if write else "download"
            scheme = scheme_of(url)
            return f"{redact(url)}: {scheme}:// storage here cannot {verb} {kind}"
        return storage.supports(bare, write=write)

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        return self.for_url(url).stat(url, credential=credential)

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        return self.for_url(url).get(url, dest, directory=directory, credential=credential)

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        return self.for_url(url).put(src, url, directory=directory, credential=credential)

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        return self.for_url(url).list(url, credential=credential)

    def _route(self, url: str) -> Storage | str:
        """The storage for ``url``, or why there is none."""
        scheme = scheme_of(url)
        supported = ", ".join(self.schemes) or "none"
        if not scheme:
            return (
                f"{redact(url)!r} is neither a URL nor an absolute path; supported schemes: "
                f"{supported}"
            )
        storage = self._by_scheme.get(scheme)
        if storage is None:
            return f"scheme {scheme!r} is not supported here; supported: {supported}"
        return storage


def default_router(
    allowed_dirs: Sequence[Path], *, http_headers: Mapping[str, str] | None = None
) -> StorageRouter:
    """file:// confined to ``allowed_dirs``, and http(s)://."""
    return StorageRouter([FileStorage(allowed_dirs), HttpStorage(headers=http_headers)])
