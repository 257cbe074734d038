"""hub:// URLs: the hub's own file store, where clients upload inputs and fetch outputs.

The store is a directory of *spaces*, each owned by one user and named by a random 128-bit id,
so that knowing a URL is not enough to read it: the owner (or an admin) must also be the one
whose task or request names it. A space keeps its metadata beside its files, never among them::

    ROOT/<space id>/owner    the user who created it
    ROOT/<space id>/files/   the file tree that hub://<space id>/<path> names

:class:`HubFileStorage` serves ``hub://<space>/<path>`` to the worker by delegating to a
:class:`~toolferry.storage.file.FileStorage` confined to the one space, so confinement,
atomic writes and error messages are those of file://.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.file import FileStorage, join_url, replacing, walk_tree
from toolferry.storage.integrity import HashingWriter
from toolferry.storage.redact import redact

__all__ = [
    "SCHEME",
    "BadPath",
    "ChecksumMismatch",
    "HubFileStorage",
    "HubFileStore",
    "NoSuchSpace",
    "StoredFile",
    "hub_url",
    "parse_hub_url",
]

SCHEME = "hub"
_SPACE_ID = re.compile(r"[0-9a-f]{32}")
# What Linux file systems take (NAME_MAX), and PATH_MAX less room for the store's own folders.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 3072


class BadPath(ValueError):
    """A path inside a space that is not a plain relative path; the message says why."""


class NoSuchSpace(LookupError):
    """The space does not exist, or the caller may not see it (the two are not told apart)."""


class ChecksumMismatch(ValueError):
    """What arrived does not have the sha256 the sender announced; nothing was kept."""


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    """One file in a space: its path there, size and (when just written) sha256."""

    path: str
    size: int
    sha256: str | None = None


def hub_url(space: str, rel: str = "") -> str:
    """``hub://<space>/<rel>``, the path percent-encoded."""
    return f"{SCHEME}://{space}/{quote(rel)}"


def parse_hub_url(url: str) -> tuple[str, str]:
    """(space, relative path) of a ``hub://`` URL; :class:`BadPath` says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise BadPath("is not a hub:// URL")
    if parts.query or parts.fragment:
        raise BadPath("has a query or fragment; percent-encode '?' and '#' in file names")
    if not _SPACE_ID.fullmatch(parts.netloc):
        raise BadPath("does not name a file space (hub://<32 hex digits>/<path>)")
    rel = clean_path(unquote(parts.path).removeprefix("/"), allow_root=True)
    return parts.netloc, "/".join(rel.parts)


def clean_path(rel: str, *, allow_root: bool = False) -> PurePosixPath:
    """``rel`` as a relative path with neither ``..`` nor ``.`` nor empty components.

    A trailing ``/`` is allowed (``a/b/`` is ``a/b``); ``""`` names the space itself when
    ``allow_root``.
    """
    if "\0" in rel:
        raise BadPath("contains a NUL character")
    if rel.startswith("/"):
        raise BadPath(f"must be relative, got {rel!r}")
    trimmed = rel.removesuffix("/")
    if not trimmed:
        if allow_root:
            return PurePosixPath()
        raise BadPath("is empty")
    parts = trimmed.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadPath(f"must not contain '..', '.' or empty components, got {rel!r}")
    if len(os.fsencode(trimmed)) > MAX_PATH_BYTES:
        raise BadPath(f"is longer than {MAX_PATH_BYTES} bytes")
    if any(len(os.fsencode(p)) > MAX_NAME_BYTES for p in parts):
        raise BadPath(f"has a name longer than {MAX_NAME_BYTES} bytes")
    return PurePosixPath(*parts)


class HubFileStore:
    """Spaces of files below ``root``, each owned by one user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    # -- spaces -----------------------------------------------------------------------------

    def create_space(self, owner: str) -> str:
        """A new, empty space owned by ``owner``; returns its id."""
        space = secrets.token_hex(16)
        folder = self.root / space
        (folder / "files").mkdir(parents=True)
        with replacing(folder / "owner") as tmp:
            tmp.write_text(owner, encoding="utf-8")
        return space

    def owner_of(self, space: str) -> str | None:
        """Who owns ``space``; ``None`` if there is no such space."""
        if not _SPACE_ID.fullmatch(space):
            return None
        try:
            return (self.root / space / "owner").read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def may_use(self, space: str, user: str, *, is_admin: bool) -> bool:
        owner = self.owner_of(space)
        return owner is not None and (is_admin or owner == user)

    def delete_space(self, space: str) -> None:
        """Remove ``space`` and every file in it; :class:`NoSuchSpace` if there is none."""
        if self.owner_of(space) is None:
            raise NoSuchSpace(space)
        # The owner file goes first, so that a half-deleted space already counts as gone.
        folder = self.root / space
        (folder / "owner").unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)

    def check_access(self, url: str, owner: str, *, is_admin: bool) -> str | None:
        """``None`` if a task of ``owner`` may read or write ``url``, else why not.

        Another user's space is reported exactly like a missing one.
        """
        try:
            space, _ = parse_hub_url(url)
        except BadPath as exc:
            return f"{redact(url)} {exc}"
        if not self.may_use(space, owner, is_admin=is_admin):
            return f"{redact(url)}: no such file space (create one with POST /toolferry/v1/files)"
        return None

    # -- files ------------------------------------------------------------------------------

    def files_dir(self, space: str) -> Path:
        """The folder holding ``space``'s files; :class:`NoSuchSpace` if there is none."""
        if self.owner_of(space) is None:
            raise NoSuchSpace(space)
        return self.root / space / "files"

    def path_in(self, space: str, rel: str, *, allow_root: bool = False) -> Path:
        """The host path of ``rel`` in ``space``, confined to the space.

        Raises :class:`BadPath` for ``..``, absolute paths, NUL bytes, empty paths (unless
        ``allow_root``) and for a path whose real location lies outside the space.
        """
        base = self.files_dir(space)
        path = base / clean_path(rel, allow_root=allow_root)
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(os.path.realpath(base)):
            raise BadPath(f"{rel!r} resolves outside its file space")
        return path

    def list(self, space: str, rel: str = "") -> list[StoredFile]:
        """Every file below ``rel`` in ``space`` (all of them by default), sorted by path."""
        base = self.files_dir(space)
        top = self.path_in(space, rel, allow_root=True)
        if top.is_file():
            return [StoredFile(path=str(top.relative_to(base)), size=top.stat().st_size)]
        if not top.is_dir():
            return []
        real_base = Path(os.path.realpath(base))
        found = []
        try:
            for sub, source, is_dir in walk_tree(
                hub_url(space, rel), top, may_follow=lambda p: p.is_relative_to(real_base)
            ):
                if not is_dir and not _is_partial(sub.name):
                    path = top.relative_to(base) / sub
                    found.append(StoredFile(path=str(path), size=source.stat().st_size))
        except FileNotFoundError:  # deleted while being listed
            pass
        return found

    @contextlib.contextmanager
    def writing(
        self, space: str, rel: str, *, sha256: str | None = None
    ) -> Iterator[HashingWriter]:
        """A writer for ``rel`` in ``space``: the file appears, complete, when the block ends
        without an error (and, with ``sha256``, only if its content has that digest; else
        :class:`ChecksumMismatch`). Read ``size`` and ``hexdigest()`` afterwards."""
        dest = self.path_in(space, rel)
        with replacing(dest) as tmp, tmp.open("wb") as fh, HashingWriter(fh) as writer:
            yield writer
            digest = writer.hexdigest()
            if sha256 is not None and digest != sha256.lower():
                raise ChecksumMismatch(
                    f"the content's sha256 is {digest}, not {sha256.lower()}; nothing was kept"
                )

    def write(
        self, space: str, rel: str, chunks: Iterator[bytes], *, sha256: str | None = None
    ) -> StoredFile:
        """Store ``chunks`` as ``rel`` in ``space``, atomically (see :meth:`writing`)."""
        with self.writing(space, rel, sha256=sha256) as writer:
            for chunk in chunks:
                writer.write(chunk)
        return StoredFile(path=rel.removesuffix("/"), size=writer.size, sha256=writer.hexdigest())

    def make_dir(self, space: str, rel: str) -> StoredFile:
        """Create the (possibly empty) directory ``rel`` and its parents in ``space``."""
        self.path_in(space, rel).mkdir(parents=True, exist_ok=True)
        return StoredFile(path=rel.removesuffix("/"), size=0)


def _is_partial(name: str) -> bool:
    """A file still being written (named by :func:`replacing`)."""
    return name.startswith(".") and name.endswith(".part")


class HubFileStorage:
    """``hub://<space>/<path>``: files in the hub's :class:`HubFileStore`.

    Who may use which space is checked when a task is admitted
    (:meth:`HubFileStore.check_access`); here a URL only has to name an existing space.
    """

    schemes: tuple[str, ...] = (SCHEME,)
    operations: frozenset[Operation] = frozenset(Operation)

    def __init__(self, store: HubFileStore) -> None:
        self.store = store

    def supports(self, url: str, *, write: bool) -> str | None:
        try:
            space, _ = parse_hub_url(url)
        except BadPath as exc:
            return f"{redact(url)} {exc}"
        if self.store.owner_of(space) is None:
            return f"{redact(url)}: no such file space"
        return None

    def local_path(self, url: str) -> Path:
        """The host path of ``url`` (see :meth:`FileStorage.local_path`)."""
        with self._local(url) as (files, path):
            return files.local_path(str(path))

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        with self._local(url) as (files, path):
            info = files.stat(str(path))
        return ObjectInfo(
            url=url, size=info.size, is_dir=info.is_dir, etag=info.etag, modified=info.modified
        )

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        with self._local(url) as (files, path):
            return files.get(str(path), dest, directory=directory)

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        with self._local(url) as (files, path):
            uploaded = files.put(src, str(path), directory=directory)
        if not directory:
            return [Uploaded(url=url, path=u.path, size=u.size) for u in uploaded]
        return [
            Uploaded(
                url=join_url(url, PurePosixPath(u.path.relative_to(src))), path=u.path, size=u.size
            )
            for u in uploaded
        ]

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        with self._local(url) as (files, path):
            found = files.list(str(path))
        result = []
        for info in found:
            rel = Path(info.url).relative_to(path)  # FileStorage names them by host path
            shown = url if rel == Path() else join_url(url, PurePosixPath(rel))
            result.append(
                ObjectInfo(
                    url=shown,
                    size=info.size,
                    is_dir=info.is_dir,
                    etag=info.etag,
                    modified=info.modified,
                )
            )
        return result

    @contextlib.contextmanager
    def _local(self, url: str) -> Iterator[tuple[FileStorage, Path]]:
        """A FileStorage confined to the URL's space and the host path the URL names; its
        errors come back naming the hub:// URL instead of host paths."""
        try:
            space, rel = parse_hub_url(url)
            base = self.store.files_dir(space)
            path = self.store.path_in(space, rel, allow_root=True)
        except BadPath as exc:
            raise StorageError(redact(url), str(exc)) from None
        except NoSuchSpace:
            raise StorageError(redact(url), "no such file space") from None
        try:
            yield FileStorage([base]), path
        except StorageError as exc:
            cause = exc.cause.replace(str(base) + "/", f"{SCHEME}://{space}/")
            raise StorageError(
                redact(url), cause.replace(str(base), f"{SCHEME}://{space}/")
            ) from exc
