"""Storages over fsspec filesystems (S3, WebDAV, FTP): the four operations, written once.

A scheme module (``s3.py``, ``webdav.py``, ``ftp.py``) subclasses :class:`FsspecStorage` and says
only what differs: which URLs are well formed and the filesystem path each names, how to
connect with a :class:`Credential`, which listing fields are validators, what its library's
errors mean, and how to stream one file each way. This class does the rest for all of them:

- directory recursion, with names from the server checked before they become local paths;
- atomic results: a download goes to a temporary file (or tree) beside the destination; an
  upload goes to a temporary name beside its target and is renamed over it, unless the scheme
  writes objects atomically by nature (S3). A failed upload's temporary object is deleted;
- the sha256 of every downloaded file, computed while it arrives;
- retries of transient failures (:mod:`toolferry.storage.retry`), reconnecting in between;
- one :class:`StorageError` per failure, its cause in words, no secret in it.

A connection lives for one operation (a whole directory included) and is closed after it;
filesystems are never taken from fsspec's instance cache, which would hand one user's
connection, and so credentials, to another user's call.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import posixpath
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

from fsspec.spec import AbstractFileSystem

from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.file import (
    inside,
    join_url,
    os_cause,
    replacing,
    replacing_dir,
    require_dir,
    require_file,
    walk_tree,
)
from toolferry.storage.integrity import CHUNK, HashingWriter
from toolferry.storage.redact import redact
from toolferry.storage.retry import RetriesExhausted, backoff_delays, retrying

__all__ = [
    "Entry",
    "Failure",
    "FsspecStorage",
    "LocalError",
    "SourceReader",
    "exception_chain",
    "scrub",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    """What an error means to a user (``cause``), and whether trying again may help."""

    cause: str
    transient: bool = False


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One file or directory as the server lists it (``path`` is the filesystem's path)."""

    path: str
    is_dir: bool
    size: int
    etag: str | None = None
    modified: str | None = None


class LocalError(Exception):
    """A failure of the local side (reading a source, writing a destination): never retried,
    and never mistaken for the server's "not found" or "access denied"."""

    def __init__(self, cause: str, error: OSError | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.error = error  # kept apart from __cause__, which libraries in between may drop

    @classmethod
    def of(cls, exc: OSError) -> LocalError:
        return cls(os_cause(exc), exc)


class _CutShort(Exception):
    """The server sent fewer (or more) bytes than it announced."""

    def __init__(self, received: int, expected: int) -> None:
        super().__init__(f"received {received} of {expected} bytes")
        self.received = received
        self.expected = expected


class SourceReader:
    """A local file being uploaded: ``read`` turns local errors into :class:`LocalError`, and
    fails if the file turns out longer or shorter than ``size`` (it changed during the upload),
    so that a file still being written never lands as a complete object."""

    def __init__(self, fh: BinaryIO, size: int, path: Path) -> None:
        self._fh = fh
        self.size = size
        self.path = path
        self.sent = 0

    def read(self, n: int = -1) -> bytes:
        try:
            chunk = self._fh.read(n)
        except OSError as exc:
            raise LocalError.of(exc) from exc
        self.sent += len(chunk)
        if self.sent > self.size or (not chunk and self.sent < self.size):
            raise LocalError(
                f"{self.path} changed while it was uploaded ({self.size} bytes when the upload "
                f"started, {'more' if self.sent > self.size else self.sent} read)"
            )
        return chunk

    def chunks(self) -> Iterator[bytes]:
        """The whole file in :data:`CHUNK`-sized pieces."""
        while chunk := self.read(CHUNK):
            yield chunk


def scrub(text: str, credential: Credential | None, url: str = "") -> str:
    """``text`` with every secret of ``credential`` (and the password in ``url``) replaced by
    ``***`` and URLs redacted: for messages built from a library's exception text."""
    values = credential.secrets() if credential is not None else []
    password = urlsplit(url).password if "://" in url else None
    if password:
        values = sorted({*values, password, unquote(password)}, key=len, reverse=True)
    for value in values:
        text = text.replace(value, "***")
    return redact(text)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it, and so on (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# Causes after which asking whether a URL is a directory would not be answered either.
_SAYS_NOTHING_OF_TYPE = (
    "could not connect",
    "connection lost",
    "timed out",
    "login refused",
    "no such bucket",
)

_Tree = list[tuple[PurePosixPath, Entry]]  # (relative path, entry), in walk order


class FsspecStorage(abc.ABC):
    """The shared half of every fsspec-backed storage; subclasses fill in the abstract parts."""

    schemes: tuple[str, ...]
    operations: frozenset[Operation] = frozenset(Operation)
    #: True when an upload becomes visible only once complete (S3): no temporary name needed.
    atomic_put: bool = False

    def __init__(
        self,
        *,
        timeout: float = 60,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``attempts`` tries per request when failures are transient, ``backoff`` seconds
        apart at first and twice as long each time after; ``sleep`` exists for tests."""
        self.timeout = timeout
        self.attempts = attempts
        self.delays = backoff_delays(attempts, first=backoff)
        self._sleep = sleep

    # -- what each scheme says --------------------------------------------------------------

    @abc.abstractmethod
    def refusal(self, url: str, *, write: bool) -> str | None:
        """Why ``url`` is malformed here (a phrase that follows the URL), else ``None``."""

    @abc.abstractmethod
    def path(self, url: str) -> str:
        """The filesystem path ``url`` names (``url`` is well formed)."""

    @abc.abstractmethod
    def connection(
        self, url: str, credential: Credential | None
    ) -> contextlib.AbstractContextManager[AbstractFileSystem]:
        """A new filesystem for ``url``'s server (never one from fsspec's instance cache),
        closed when the context ends."""

    @abc.abstractmethod
    def entry(self, info: Mapping[str, Any]) -> Entry:
        """An :class:`Entry` from the filesystem's ``info``/``find`` dictionary."""

    @abc.abstractmethod
    def classify(self, exc: BaseException) -> Failure | None:
        """What this library's ``exc`` means, or ``None`` to leave it to the generic rules
        (tried on each exception of the chain in turn)."""

    @abc.abstractmethod
    def download(
        self, fs: AbstractFileSystem, path: str, write: Callable[[bytes], None]
    ) -> int | None:
        """Stream the file at ``path`` to ``write``, in :data:`CHUNK`-sized pieces; return the
        size the server announced, if it did (a shorter transfer then fails)."""

    @abc.abstractmethod
    def upload(self, fs: AbstractFileSystem, path: str, source: SourceReader) -> None:
        """Write ``source`` (``source.size`` bytes) to ``path``, overwriting it."""

    def replace(self, fs: AbstractFileSystem, tmp: str, path: str) -> None:
        """Rename the complete upload ``tmp`` over ``path`` (unless :attr:`atomic_put`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot rename")

    def make_dirs(self, fs: AbstractFileSystem, path: str) -> None:
        """Create the directory ``path`` and its missing parents."""
        fs.makedirs(path, exist_ok=True)

    def remove(self, fs: AbstractFileSystem, path: str) -> None:
        fs.rm_file(path)

    def info(self, fs: AbstractFileSystem, path: str) -> Entry:
        return self.entry(fs.info(path))

    def find(self, fs: AbstractFileSystem, path: str) -> list[Entry]:
        """Every file and directory below the directory ``path``."""
        found: dict[str, Mapping[str, Any]] = fs.find(path, withdirs=True, detail=True)
        return [self.entry(info) for info in found.values()]

    # -- the Storage protocol ---------------------------------------------------------------

    def supports(self, url: str, *, write: bool) -> str | None:
        refusal = self.refusal(url, write=write)
        return None if refusal is None else f"{redact(url)} {refusal}"

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        self._require_valid(url, write=False)
        with self._session(url, credential) as session:
            found = session.run(url, lambda fs: self.info(fs, self.path(url)))
        return self._object_info(url, found)

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        self._require_valid(url, write=False)
        path = self.path(url)
        with self._session(url, credential) as session:
            if directory:
                self._get_tree(session, url, path, dest)
                return None
            try:
                with _local_errors(url), replacing(dest) as tmp:
                    digest = self._fetch(session, url, path, tmp)
            except StorageError as exc:
                self._refine_file_error(session, url, path, exc)
                raise
        return digest

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        self._require_valid(url, write=True)
        path = self.path(url)
        if not directory:
            require_file(url, src)
            with self._session(url, credential) as session:
                return [self._send(session, url, src, path, made=set())]
        require_dir(url, src)
        with _local_errors(url):
            tree = list(walk_tree(url, src, may_follow=inside(src)))
        uploaded: list[Uploaded] = []
        with self._session(url, credential) as session:
            made: set[str] = set()
            self._make_dirs(session, url, path, made)
            for rel, source, is_dir in tree:
                target = f"{path.rstrip('/')}/{rel}"
                if is_dir:
                    self._make_dirs(session, join_url(url, rel), target, made)
                else:
                    sent = self._send(session, join_url(url, rel), source, target, made=made)
                    uploaded.append(Uploaded(url=sent.url, path=src / rel, size=sent.size))
        return uploaded

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        """Every file below ``url``, recursively and sorted (a file lists as itself)."""
        self._require_valid(url, write=False)
        path = self.path(url)
        with self._session(url, credential) as session:
            top = session.run(url, lambda fs: self.info(fs, path))
            if not top.is_dir:
                return [self._object_info(url, top)]
            tree = self._tree(session, url, path)
        return [
            self._object_info(join_url(url, rel), found) for rel, found in tree if not found.is_dir
        ]

    # -- the shared machinery ---------------------------------------------------------------

    def _session(self, url: str, credential: Credential | None) -> _Session:
        return _Session(self, url, credential)

    def _require_valid(self, url: str, *, write: bool) -> None:
        refusal = self.refusal(url, write=write)
        if refusal is not None:
            raise StorageError(redact(url), f"the URL {refusal}")

    def _object_info(self, url: str, found: Entry) -> ObjectInfo:
        return ObjectInfo(
            url=url,
            size=0 if found.is_dir else found.size,
            is_dir=found.is_dir,
            etag=found.etag,
            modified=found.modified,
        )

    def _tree(self, session: _Session, url: str, path: str) -> _Tree:
        """Everything below the directory ``path`` as (safe relative path, entry), sorted."""
        entries = session.run(url, lambda fs: self.find(fs, path))
        base = path.strip("/")
        tree: dict[PurePosixPath, Entry] = {}
        for found in entries:
            name = found.path.strip("/")
            if name == base:
                continue
            if not name.startswith(f"{base}/") and base:
                raise StorageError(redact(url), f"the server listed {name!r}, outside {base!r}")
            rel = PurePosixPath(name[len(base) :].lstrip("/"))
            if rel.is_absolute() or any(part in ("", ".", "..") for part in rel.parts):
                raise StorageError(redact(url), f"the server listed an unsafe name: {name!r}")
            tree[rel] = found
        return sorted(tree.items())

    def _get_tree(self, session: _Session, url: str, path: str, dest: Path) -> None:
        top = session.run(url, lambda fs: self.info(fs, path))
        if not top.is_dir:
            raise StorageError(
                redact(url), "is a file, not a directory; declare the input as a FILE"
            )
        tree = self._tree(session, url, path)
        with _local_errors(url), replacing_dir(dest) as tmp:
            for rel, found in tree:
                target = tmp / rel
                if found.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                self._fetch(session, join_url(url, rel), found.path, target)
            # mkdtemp made the top 0700; a container running as another user must read it.
            for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
                os.chmod(directory, 0o755)

    def _fetch(self, session: _Session, url: str, path: str, target: Path) -> str:
        """Download ``path`` into ``target`` (written afresh by each attempt); its sha256."""

        def attempt(fs: AbstractFileSystem) -> str:
            try:
                fh = target.open("wb")
            except OSError as exc:
                raise LocalError.of(exc) from exc
            with fh, HashingWriter(fh) as out:

                def write(chunk: bytes) -> None:
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise LocalError.of(exc) from exc

                expected = self.download(fs, path, write)
                digest = out.hexdigest()
            if expected is not None and expected != out.size:
                raise _CutShort(out.size, expected)
            return digest

        digest = session.run(url, attempt)
        with _local_errors(url):
            # Reading by every user, as from a file server; mkstemp would leave it 0600.
            os.chmod(target, 0o644)
        return digest

    def _refine_file_error(
        self, session: _Session, url: str, path: str, error: StorageError
    ) -> None:
        """A file download failed: if ``url`` is in fact a directory, say so instead."""
        if error.cause.startswith(_SAYS_NOTHING_OF_TYPE):
            return
        try:
            found = session.run(url, lambda fs: self.info(fs, path), attempts=1)
        except StorageError:
            return
        if found.is_dir:
            raise StorageError(
                redact(url), "is a directory; declare the input as a DIRECTORY"
            ) from error

    def _make_dirs(self, session: _Session, url: str, path: str, made: set[str]) -> None:
        if self.atomic_put or path.rstrip("/") in made or not path.strip("/"):
            return
        session.run(url, lambda fs: self.make_dirs(fs, path))
        while path.strip("/"):  # its parents exist now too
            made.add(path.rstrip("/"))
            path = posixpath.dirname(path.rstrip("/"))

    def _send(
        self, session: _Session, url: str, source: Path, path: str, *, made: set[str]
    ) -> Uploaded:
        """Upload one file to ``path``: in place if :attr:`atomic_put`, else to a temporary
        name beside it that is renamed over it (and removed if anything fails)."""
        with _local_errors(url):
            size = source.stat().st_size
        parent, name = posixpath.split(path.rstrip("/"))
        self._make_dirs(session, url, parent, made)

        def attempt(fs: AbstractFileSystem) -> None:
            try:
                fh = source.open("rb")
            except OSError as exc:
                raise LocalError.of(exc) from exc
            with fh:
                reader = SourceReader(fh, size, source)
                if self.atomic_put:
                    self.upload(fs, path, reader)
                    return
                tmp = posixpath.join(parent, f".{name}.{secrets.token_hex(4)}.part")
                try:
                    self.upload(fs, tmp, reader)
                    self.replace(fs, tmp, path)
                except BaseException:
                    session.discard(fs, lambda live: self.remove(live, tmp))
                    raise

        session.run(url, attempt)
        return Uploaded(url=url, path=source, size=size)

    # -- errors -----------------------------------------------------------------------------

    def failure(self, exc: BaseException) -> Failure:
        """What ``exc`` means: the scheme's reading of any exception in its chain first, then
        the generic rules."""
        chain = list(exception_chain(exc))
        for link in chain:
            # Even when a library wrapped it, a local failure is the one to report.
            if isinstance(link, LocalError):
                return Failure(link.cause)
        for link in chain:
            found = self.classify(link)
            if found is not None:
                return found
        for link in chain:
            found = self._generic(link)
            if found is not None:
                return found
        return Failure(f"transfer failed: {type(exc).__name__}: {exc}".rstrip(": "))

    def _generic(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, _CutShort):
            return Failure(f"transfer cut short: {exc}", transient=True)
        if isinstance(exc, ConnectionRefusedError):
            return Failure("could not connect: connection refused", transient=True)
        if isinstance(exc, ConnectionError):
            return Failure("connection lost: " + _strerror(exc), transient=True)
        if isinstance(exc, socket.gaierror):
            return Failure(
                f"could not connect: unknown host ({_strerror(exc)})",
                transient=exc.errno == socket.EAI_AGAIN,
            )
        if isinstance(exc, TimeoutError):
            return Failure(f"timed out after {self.timeout:g}s", transient=True)
        if isinstance(exc, FileNotFoundError):
            return Failure("not found")
        if isinstance(exc, PermissionError):
            return Failure("access denied")
        if isinstance(exc, IsADirectoryError):
            return Failure("is a directory; declare the input as a DIRECTORY")
        if isinstance(exc, NotADirectoryError):
            return Failure("a parent is a file, not a directory")
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return Failure("disk full on the server")
        if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return Failure("could not connect: " + _strerror(exc), transient=True)
        return None

    def error(
        self, url: str, exc: BaseException, credential: Credential | None, *, attempts: int = 1
    ) -> StorageError:
        """The :class:`StorageError` for ``exc``: the cause in words, scrubbed of secrets."""
        cause = self.failure(exc).cause
        if attempts > 1:
            cause += f" (after {attempts} attempts)"
        return StorageError(redact(url), scrub(cause, credential, url))


class _Session:
    """One operation's connection: made on first use, made again after a transient failure,
    closed at the end."""

    def __init__(self, storage: FsspecStorage, url: str, credential: Credential | None) -> None:
        self._storage = storage
        self._url = url
        self._credential = credential
        self._fs: AbstractFileSystem | None = None
        self._open = contextlib.ExitStack()

    def __enter__(self) -> _Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.drop()

    def fs(self) -> AbstractFileSystem:
        if self._fs is None:
            connection = self._storage.connection(self._url, self._credential)
            self._fs = self._open.enter_context(connection)
        return self._fs

    def drop(self, _exc: BaseException | None = None) -> None:
        """Close the connection (a later :meth:`fs` makes a new one)."""
        self._fs = None
        with contextlib.suppress(Exception):
            self._open.close()

    def run(
        self, url: str, what: Callable[[AbstractFileSystem], T], *, attempts: int | None = None
    ) -> T:
        """``what(fs)``, retried while it fails transiently; failures as :class:`StorageError`
        naming ``url``."""
        storage = self._storage
        delays = storage.delays if attempts is None else storage.delays[: attempts - 1]
        try:
            return retrying(
                lambda: what(self.fs()),
                delays=delays,
                transient=lambda exc: storage.failure(exc).transient,
                sleep=storage._sleep,
                before_retry=self.drop,
            )
        except RetriesExhausted as exc:
            raise storage.error(
                url, exc.last, self._credential, attempts=exc.attempts
            ) from _root_cause(exc.last)
        except StorageError:
            raise
        except Exception as exc:
            raise storage.error(url, exc, self._credential) from _root_cause(exc)

    def discard(self, fs: AbstractFileSystem, remove: Callable[[AbstractFileSystem], None]) -> None:
        """Best effort: ``remove(fs)``, else once more over a new connection (the failure that
        brought us here may have broken this one); never raises."""
        try:
            remove(fs)
            return
        except Exception:
            self.drop()
        with contextlib.suppress(Exception):
            remove(self.fs())


def _root_cause(exc: BaseException) -> BaseException:
    """The local ``OSError`` behind a :class:`LocalError` (callers look for a full disk), else
    ``exc`` itself."""
    for link in exception_chain(exc):
        if isinstance(link, LocalError) and link.error is not None:
            return link.error
    return exc


def _strerror(exc: OSError) -> str:
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


@contextlib.contextmanager
def _local_errors(url: str) -> Iterator[None]:
    """Local ``OSError`` (making a temporary file, reading a source) as :class:`StorageError`."""
    try:
        yield
    except OSError as exc:
        raise StorageError(redact(url), LocalError.of(exc).cause) from exc
