"""The site's shared input cache: content-addressed blobs, keyed by URL and validators, linked
(never copied) into each task's inputs.

An input is looked up by a key: a hash of its URL (without userinfo or ``#sha256=`` fragment),
whether it is a directory, and the validators its storage reports (``ObjectInfo.validators()``
of the file, or of every file below a directory). A URL that pins its content with
``#sha256=<hex>`` is keyed by that checksum and found without asking the network at all. A
changed object has other validators, hence another key: it is never served stale.

Layout under the cache root::

    lock                      shared while a stage looks up and links, exclusive while evicting
    locks/<key>.lock          one download per key at a time, across threads and processes
    keys/<key>.json           redacted url, kind, validators, sha256, size, created, hits;
                              the file's mtime is the entry's last use
    blobs/<sha256>            a file's content (0444)
    blobs/<digest>.tree/      a directory's content (directories 0755, files 0444)
    blobs/<digest>.tree.json  that tree's size and the sha256 of each file
    tmp/<id>.lock, tmp/<id>/  a download in progress, locked by its owner; swept at start-up

Blobs are never modified once published: a task gets hard links to them (a copy only when the
cache and the task are on different filesystems, or a blob has as many links as the filesystem
allows), and the worker mounts inputs read-only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from toolferry.storage.base import Credential, StorageError
from toolferry.storage.file import os_cause
from toolferry.storage.integrity import sha256_file, split_checksum, tree_digest
from toolferry.storage.redact import redact
from toolferry.storage.router import StorageRouter

__all__ = ["CacheEntry", "InputCache", "PruneResult", "Staged"]

log = logging.getLogger(__name__)

Kind = Literal["file", "directory"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TREE = ".tree"
_MANIFEST = ".tree.json"


@dataclass(frozen=True, kw_only=True)
class Staged:
    """What :meth:`InputCache.stage` put in place."""

    sha256: str  # the file's sha256, or the tree digest (integrity.tree_digest) of a directory
    size: int  # bytes (the total of a directory)
    hit: bool  # served from the cache without a download
    files: Mapping[str, str] = field(default_factory=dict)  # directory: relative path -> sha256


@dataclass(frozen=True, kw_only=True)
class CacheEntry:
    """One cached input (``key`` set), or a blob no key refers to (``key`` and ``url`` None:
    its storage gave no validators, so only a checksum or identical content can reuse it)."""

    key: str | None
    url: str | None  # redacted
    sha256: str
    size: int
    kind: Kind
    created: datetime
    last_used: datetime
    hits: int


@dataclass(frozen=True, kw_only=True)
class PruneResult:
    """What :meth:`InputCache.prune` removed."""

    removed: tuple[CacheEntry, ...]
    freed: int  # bytes of blobs deleted (space returns once no task holds a link to them)


@dataclass(frozen=True, kw_only=True)
class _Fetch:
    """One download: where from, and what to record once it is in the cache."""

    shown: str  # the URL as messages show it
    url: str  # without the #sha256= fragment
    checksum: str | None
    directory: bool
    router: StorageRouter
    credential: Credential | None
    key: str | None  # None: the storage gave no validators, so nothing is recorded
    validators: Mapping[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class _Blob:
    sha256: str
    size: int
    kind: Kind
    files: Mapping[str, str]


class InputCache:
    """Puts inputs in place from the cache under ``root``, downloading each one once.

    Thread-safe and safe to share between processes: all coordination goes through ``flock``
    on files under ``root``; an instance holds no mutable state.
    """

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.root = root
        self.max_bytes = max_bytes
        self._blobs = root / "blobs"
        self._keys = root / "keys"
        self._locks = root / "locks"
        self._tmp = root / "tmp"
        for directory in (self._blobs, self._keys, self._locks, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)
        self._sweep()

    # -- staging -------------------------------------------------------------------------------

    def stage(
        self,
        url: str,
        dest: Path,
        *,
        directory: bool,
        router: StorageRouter,
        credential: Credential | None = None,
    ) -> Staged:
        """Put the content of ``url`` at ``dest`` (which must not exist yet): hard links to the
        cached blob, downloading it first on a miss. Raises :class:`StorageError`."""
        shown = redact(url)
        try:
            bare, checksum = split_checksum(url)
        except ValueError as exc:
            raise StorageError(shown, str(exc)) from None
        if checksum is not None and directory:
            raise StorageError(shown, "a #sha256= checksum cannot be given for a DIRECTORY input")
        if os.path.lexists(dest):
            raise StorageError(shown, f"cannot stage to {dest}: it exists already")
        try:
            staged = self._stage(shown, bare, checksum, dest, directory, router, credential)
        except StorageError as exc:
            if isinstance(exc.__cause__, OSError) and _disk_full(exc.__cause__):
                raise StorageError(exc.url, _while_caching(exc.cause)) from exc
            raise
        except OSError as exc:
            raise StorageError(shown, _describe_os_error(exc)) from exc
        if self.usage() > self.max_bytes:
            try:
                self._evict(cap=self.max_bytes)
            except OSError as exc:
                # The input is in place; a cache that stays too big is the operator's to fix.
                log.warning("input cache %s: eviction failed: %s", self.root, exc)
        return staged

    def _stage(
        self,
        shown: str,
        bare: str,
        checksum: str | None,
        dest: Path,
        directory: bool,
        router: StorageRouter,
        credential: Credential | None,
    ) -> Staged:
        validators: dict[str, Any] | None
        if checksum is not None:
            key: str | None = checksum
            validators = {"sha256": checksum}
        else:
            validators = _validators(bare, directory, router, credential)
            key = None if validators is None else _key_of(bare, directory, validators)
        fetch = _Fetch(
            shown=shown,
            url=bare,
            checksum=checksum,
            directory=directory,
            router=router,
            credential=credential,
            key=key,
            validators=validators,
        )
        if key is None:
            return self._fetch(fetch, dest)
        with _flock(self._locks / f"{key}.lock", fcntl.LOCK_EX):
            with _flock(self.root / "lock", fcntl.LOCK_SH):
                blob = self._lookup(key, checksum)
                if blob is not None:
                    self._link(blob, dest)
                    with _removed_on_error(dest):
                        self._record(key, shown, validators, blob, hit=True)
                    return Staged(sha256=blob.sha256, size=blob.size, hit=True, files=blob.files)
            return self._fetch(fetch, dest)

    def _fetch(self, f: _Fetch, dest: Path) -> Staged:
        """Download into tmp/, verify, publish the blob, link it, record the key (if any)."""
        with self._workspace() as work:
            data = work / "data"
            returned = f.router.get(f.url, data, directory=f.directory, credential=f.credential)
            if data.is_dir() != f.directory or not (data.is_dir() or data.is_file()):
                raise StorageError(f.shown, "the storage did not deliver what was asked for")
            blob = _describe(data, f.directory, returned)
            if f.checksum is not None and blob.sha256 != f.checksum:
                raise StorageError(
                    f.shown, f"checksum mismatch: expected {f.checksum}, got {blob.sha256}"
                )
            _seal(f.shown, data)
            with _flock(self.root / "lock", fcntl.LOCK_SH):
                self._publish(data, blob, work)
                self._link(blob, dest)
                if f.key is not None:
                    with _removed_on_error(dest):
                        self._record(f.key, f.shown, f.validators, blob, hit=False)
        return Staged(sha256=blob.sha256, size=blob.size, hit=False, files=blob.files)

    def _lookup(self, key: str, checksum: str | None) -> _Blob | None:
        """The blob for ``key`` if it is still there (caller holds the key and shared lock)."""
        record = _read_json(self._keys / f"{key}.json")
        if record is not None:
            blob = self._blob_at(str(record.get("sha256")), record.get("kind") == "directory")
            if blob is not None:
                return blob
        if checksum is not None:
            return self._blob_at(checksum, False)
        return None

    def _blob_at(self, sha256: str, directory: bool) -> _Blob | None:
        if not _HEX64.fullmatch(sha256):
            return None
        if not directory:
            try:
                st = (self._blobs / sha256).stat()
            except FileNotFoundError:
                return None
            return _Blob(sha256=sha256, size=st.st_size, kind="file", files={})
        if not (self._blobs / f"{sha256}{_TREE}").is_dir():
            return None
        manifest = _read_json(self._blobs / f"{sha256}{_MANIFEST}")
        if manifest is None:
            return None  # a download republishes it
        files = manifest.get("files")
        size = manifest.get("size")
        if not isinstance(files, dict) or not isinstance(size, int):
            return None
        return _Blob(sha256=sha256, size=size, kind="directory", files=files)

    def _publish(self, data: Path, blob: _Blob, work: Path) -> None:
        """Move ``data`` into blobs/ unless identical content is already there."""
        if blob.kind == "file":
            target = self._blobs / blob.sha256
            if not target.exists():
                os.rename(data, target)
            return
        manifest = work / "manifest.json"
        _write_json(manifest, {"size": blob.size, "files": dict(blob.files)})
        os.replace(manifest, self._blobs / f"{blob.sha256}{_MANIFEST}")
        try:
            os.rename(data, self._blobs / f"{blob.sha256}{_TREE}")
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise

    def _link(self, blob: _Blob, dest: Path) -> None:
        if blob.kind == "file":
            _link_file(self._blobs / blob.sha256, dest)
            return
        source = self._blobs / f"{blob.sha256}{_TREE}"
        dest.mkdir()  # raises if dest exists: it is not ours to remove then
        with _removed_on_error(dest):
            for top, dirs, names in os.walk(source):
                rel = os.path.relpath(top, source)
                for name in dirs:
                    (dest / rel / name).mkdir()
                for name in names:
                    _link_file(Path(top) / name, dest / rel / name)

    def _record(
        self,
        key: str,
        shown: str,
        validators: Mapping[str, Any] | None,
        blob: _Blob,
        *,
        hit: bool,
    ) -> None:
        """Write keys/<key>.json; its new mtime marks the entry as just used."""
        path = self._keys / f"{key}.json"
        old = _read_json(path)
        if old is not None and old.get("sha256") == blob.sha256:
            created = str(old.get("created") or _now())
            hits = _int(old.get("hits")) + (1 if hit else 0)
            url = str(old.get("url") or shown)
        else:
            created, hits, url = _now(), 1 if hit else 0, shown
        record = {
            "url": url,
            "kind": blob.kind,
            "validators": validators,
            "sha256": blob.sha256,
            "size": blob.size,
            "created": created,
            "hits": hits,
        }
        # A fixed temporary name is safe: only the holder of the key's lock writes it.
        part = self._keys / f"{key}.json.part"
        _write_json(part, record)
        os.replace(part, path)
        # The clock, not the filesystem's coarser timestamp: LRU order must follow use order.
        now = time.time_ns()
        os.utime(path, ns=(now, now))

    # -- temporary space -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _workspace(self) -> Iterator[Path]:
        """A fresh directory under tmp/, removed afterwards; the sweep spares it while the
        lock file beside it is held."""
        while True:
            fd, name = tempfile.mkstemp(dir=self._tmp, suffix=".lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # A sweep may have locked and deleted the new file before we locked it.
                if _still_at(fd, Path(name)):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        lock = Path(name)
        work = lock.with_suffix("")
        try:
            work.mkdir()
            yield work
        finally:
            try:
                _remove(work)
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)

    def _sweep(self) -> None:
        """Remove what crashed downloads left in tmp/ (and half-written key files)."""
        for entry in os.scandir(self._tmp):
            path = Path(entry.path)
            lock = path if path.suffix == ".lock" else path.with_name(path.name + ".lock")
            with _try_flock(lock) as held:
                if held is None:  # someone is at work there
                    continue
                _remove(lock.with_suffix(""))
                if held:
                    lock.unlink(missing_ok=True)
        for part in self._keys.glob("*.json.part"):
            key = part.name.removesuffix(".json.part")
            with _try_flock(self._locks / f"{key}.lock") as held:
                if held is not None:
                    part.unlink(missing_ok=True)

    # -- size ----------------------------------------------------------------------------------

    def usage(self) -> int:
        """Bytes held by blobs."""
        return sum(blob.size for blob, _ in self._scan_blobs().values())

    def entries(self) -> list[CacheEntry]:
        """Every cached input, and every blob no key refers to; most recently used first."""
        blobs = self._scan_blobs()
        found: list[CacheEntry] = []
        referenced: set[tuple[Kind, str]] = set()
        for key, record, used in self._scan_keys():
            kind: Kind = "directory" if record.get("kind") == "directory" else "file"
            ident = (kind, str(record.get("sha256")))
            if ident not in blobs:
                continue
            referenced.add(ident)
            found.append(_entry(key, record, used, blobs[ident][0]))
        for ident, (blob, changed) in blobs.items():
            if ident not in referenced:
                found.append(_orphan(blob, changed))
        found.sort(key=lambda e: e.last_used, reverse=True)
        return found

    def prune(
        self,
        *,
        max_bytes: int | None = None,
        older_than: timedelta | None = None,
        everything: bool = False,
    ) -> PruneResult:
        """Remove entries: all of them (``everything``), those not used for ``older_than``,
        then the least recently used until at most ``max_bytes`` remain. Without any of these,
        shrink to the cache's own cap. Blobs no key refers to go in every case."""
        if everything:
            cap: int | None = 0
        elif max_bytes is None and older_than is None:
            cap = self.max_bytes
        else:
            cap = max_bytes
        if cap is not None and cap < 0:
            raise ValueError("max_bytes must not be negative")
        cutoff = None if older_than is None else datetime.now(UTC) - older_than
        return self._evict(cap=cap, cutoff=cutoff)

    def _evict(self, *, cap: int | None, cutoff: datetime | None = None) -> PruneResult:
        """Under the exclusive lock: orphans, then entries older than ``cutoff``, then least
        recently used entries until the blobs fit in ``cap``."""
        with _flock(self.root / "lock", fcntl.LOCK_EX):
            blobs = self._scan_blobs()
            keys_of: dict[tuple[Kind, str], set[str]] = {ident: set() for ident in blobs}
            keyed: list[tuple[datetime, str, tuple[Kind, str], CacheEntry]] = []
            for key, record, used in self._scan_keys():
                kind: Kind = "directory" if record.get("kind") == "directory" else "file"
                ident = (kind, str(record.get("sha256")))
                if ident not in blobs:  # its blob is gone: the key can never hit again
                    (self._keys / f"{key}.json").unlink(missing_ok=True)
                    continue
                keys_of[ident].add(key)
                keyed.append((used, key, ident, _entry(key, record, used, blobs[ident][0])))
            keyed.sort(key=lambda item: (item[0], item[1]))
            total = sum(blob.size for blob, _ in blobs.values())
            removed: list[CacheEntry] = []
            freed = 0

            def drop_blob(ident: tuple[Kind, str]) -> None:
                nonlocal total, freed
                self._delete_blob(*ident)
                total -= blobs[ident][0].size
                freed += blobs[ident][0].size

            for ident, (blob, changed) in blobs.items():
                if not keys_of[ident]:
                    drop_blob(ident)
                    removed.append(_orphan(blob, changed))
            for used, key, ident, entry in keyed:
                old = cutoff is not None and used < cutoff
                if not old and (cap is None or total <= cap):
                    continue
                (self._keys / f"{key}.json").unlink(missing_ok=True)
                removed.append(entry)
                keys_of[ident].discard(key)
                if not keys_of[ident]:
                    drop_blob(ident)
            self._drop_stray_files()
        return PruneResult(removed=tuple(removed), freed=freed)

    def _delete_blob(self, kind: Kind, sha256: str) -> None:
        if kind == "file":
            (self._blobs / sha256).unlink(missing_ok=True)
        else:
            _remove(self._blobs / f"{sha256}{_TREE}")
            (self._blobs / f"{sha256}{_MANIFEST}").unlink(missing_ok=True)

    def _drop_stray_files(self) -> None:
        """Lock files of keys that do not exist (unless held) and manifests without a tree."""
        for lock in self._locks.glob("*.lock"):
            if (self._keys / f"{lock.stem}.json").exists():
                continue
            with _try_flock(lock) as held:
                if held:
                    lock.unlink(missing_ok=True)
        for manifest in self._blobs.glob(f"*{_MANIFEST}"):
            digest = manifest.name.removesuffix(_MANIFEST)
            if not (self._blobs / f"{digest}{_TREE}").exists():
                manifest.unlink(missing_ok=True)

    def _scan_keys(self) -> Iterator[tuple[str, dict[str, Any], datetime]]:
        for path in self._keys.glob("*.json"):
            try:
                used = path.stat().st_mtime
            except FileNotFoundError:
                continue
            record = _read_json(path)
            if record is not None:
                yield path.stem, record, datetime.fromtimestamp(used, UTC)

    def _scan_blobs(self) -> dict[tuple[Kind, str], tuple[_Blob, datetime]]:
        """Every blob, with the time its inode last changed (linked, for a file blob)."""
        found: dict[tuple[Kind, str], tuple[_Blob, datetime]] = {}
        for entry in os.scandir(self._blobs):
            try:
                if entry.name.endswith(_TREE) and entry.is_dir(follow_symlinks=False):
                    digest = entry.name.removesuffix(_TREE)
                    blob = self._blob_at(digest, True)
                    if blob is None:  # no manifest: measure the tree itself
                        size = sum(
                            (Path(top) / n).stat().st_size
                            for top, _, names in os.walk(entry.path)
                            for n in names
                        )
                        blob = _Blob(sha256=digest, size=size, kind="directory", files={})
                elif _HEX64.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    blob = _Blob(sha256=entry.name, size=st.st_size, kind="file", files={})
                else:
                    continue
                changed = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_ctime, UTC)
            except FileNotFoundError:  # evicted while we looked
                continue
            found[blob.kind, blob.sha256] = (blob, changed)
        return found


# -- keys -------------------------------------------------------------------------------------


def _validators(
    url: str, directory: bool, router: StorageRouter, credential: Credential | None
) -> dict[str, Any] | None:
    """What tells this version of ``url`` from others, or None when the storage cannot say."""
    if not directory:
        return router.stat(url, credential=credential).validators()
    files: dict[str, dict[str, str]] = {}
    for info in router.list(url, credential=credential):
        found = info.validators()
        if found is None:
            return None
        child = _without_userinfo(info.url)
        base = _without_userinfo(url)
        rel = child[len(base) :].lstrip("/") if child.startswith(base) else child
        files[rel] = found
    return {"files": files}


def _key_of(url: str, directory: bool, validators: Mapping[str, Any]) -> str:
    doc = {"url": _without_userinfo(url), "directory": directory, "validators": validators}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _without_userinfo(url: str) -> str:
    if url.startswith("/"):
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


# -- files ------------------------------------------------------------------------------------


def _describe(data: Path, directory: bool, returned: str | None) -> _Blob:
    if directory:
        digest, size, files = tree_digest(data)
        return _Blob(sha256=digest, size=size, kind="directory", files=files)
    sha256 = returned.lower() if returned else sha256_file(data)
    return _Blob(sha256=sha256, size=data.stat().st_size, kind="file", files={})


def _seal(shown: str, data: Path) -> None:
    """Make a downloaded file or tree immutable-looking: files 0444, directories 0755."""
    if data.is_file():
        data.chmod(0o444)
        return
    for top, dirs, names in os.walk(data):
        Path(top).chmod(0o755)
        for name in [*dirs, *names]:
            path = Path(top) / name
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                rel = path.relative_to(data)
                raise StorageError(shown, f"{rel} is not a regular file or directory")
            path.chmod(0o444)


def _link_file(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EMLINK):
            raise
        # Another filesystem (or a blob at the filesystem's limit of links): the task gets its
        # own copy, read-only like the blob.
        try:
            shutil.copy2(source, dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise


def _remove(path: Path) -> None:
    """Delete a file or tree, even one with read-only directories; gone already is fine."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        path.unlink(missing_ok=True)
        return
    for top, dirs, _ in os.walk(path):
        for name in dirs:
            with contextlib.suppress(OSError):
                (Path(top) / name).chmod(0o755)
    path.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _removed_on_error(dest: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        _remove(dest)
        raise


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as fh:
            value = json.load(fh)
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: Any) -> None:
    with path.open("w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=1, sort_keys=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _entry(key: str, record: Mapping[str, Any], used: datetime, blob: _Blob) -> CacheEntry:
    try:
        created = datetime.fromisoformat(str(record.get("created")))
    except ValueError:
        created = used
    return CacheEntry(
        key=key,
        url=str(record.get("url")) if record.get("url") else None,
        sha256=blob.sha256,
        size=blob.size,
        kind=blob.kind,
        created=created,
        last_used=used,
        hits=_int(record.get("hits")),
    )


def _orphan(blob: _Blob, changed: datetime) -> CacheEntry:
    return CacheEntry(
        key=None,
        url=None,
        sha256=blob.sha256,
        size=blob.size,
        kind=blob.kind,
        created=changed,
        last_used=changed,
        hits=0,
    )


# -- errors -----------------------------------------------------------------------------------


def _disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _while_caching(cause: str) -> str:
    """ "disk full (…)" → "disk full while caching (…)": the user learns which disk filled."""
    if cause.startswith("disk full"):
        return "disk full while caching" + cause.removeprefix("disk full")
    return f"disk full while caching: {cause}"


def _describe_os_error(exc: OSError) -> str:
    if _disk_full(exc):
        return _while_caching(os_cause(exc))
    return f"cannot stage from the cache: {os_cause(exc)}"


# -- locks ------------------------------------------------------------------------------------


def _still_at(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (it may have been unlinked)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def _flock(path: Path, operation: int) -> Iterator[None]:
    """``flock`` on ``path`` (created if missing), held for the block.

    Each call opens the file itself, so the lock also excludes other threads of this process.
    A lock file deleted while we waited (prune removes unused ones) is opened again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, operation)
            if _still_at(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _try_flock(path: Path) -> Iterator[bool | None]:
    """An exclusive lock on ``path`` if nobody holds it: yields True (locked), False (there is
    no such file, so nobody can hold it) or None (someone holds it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield True if _still_at(fd, path) else None
    finally:
        os.close(fd)
