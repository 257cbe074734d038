"""file:// URLs and plain absolute paths, confined to the directories the site allows.

Confinement is checked on the real path (symlinks resolved, ``..`` normalised) at every
operation, not only by :meth:`FileStorage.supports`, and again for each symlink met inside a
directory tree. Every write goes to a temporary name beside its destination and is moved into
place with ``os.replace``, so a failed transfer never leaves a partial file or tree behind.

The tree walker and the replace-into-place helpers are public: other storages reuse them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.redact import redact

__all__ = [
    "FileStorage",
    "inside",
    "join_url",
    "os_cause",
    "replacing",
    "replacing_dir",
    "require_dir",
    "require_file",
    "walk_tree",
]


class FileStorage:
    """Local or shared-filesystem paths; each must resolve inside one of ``allowed_dirs``."""

    schemes: tuple[str, ...] = ("file",)
    operations: frozenset[Operation] = frozenset(Operation)

    def __init__(self, allowed_dirs: Sequence[Path]) -> None:
        # Resolved once, so that an allowed dir named through a symlink still matches real paths.
        self.allowed_dirs: tuple[Path, ...] = tuple(Path(os.path.realpath(d)) for d in allowed_dirs)

    def supports(self, url: str, *, write: bool) -> str | None:
        _, refusal = self._locate(url)
        return None if refusal is None else f"{redact(url)} {refusal}"

    def local_path(self, url: str) -> Path:
        """The real path ``url`` names on this host (confined like every operation), for
        reading it in place: a ``streamable`` input is mounted from here, not copied."""
        path = self._resolve(url)
        if not path.exists():
            raise StorageError(redact(url), "no such file or directory")
        return path

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        path = self._resolve(url)
        with _os_errors(url):
            try:
                st = path.stat()
            except FileNotFoundError:
                raise StorageError(redact(url), "no such file or directory") from None
        return _info(url, st)

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        src = self._resolve(url)
        with _os_errors(url):
            if directory:
                if not src.exists():
                    raise StorageError(redact(url), "no such file or directory")
                if not src.is_dir():
                    raise StorageError(
                        redact(url), "is a file, not a directory; declare the input as a FILE"
                    )
                with replacing_dir(dest) as tmp:
                    _copy_tree(url, src, tmp, may_follow=self._allowed)
            else:
                if src.is_dir():
                    raise StorageError(
                        redact(url), "is a directory; declare the input as a DIRECTORY"
                    )
                if not src.exists():
                    raise StorageError(redact(url), "no such file or directory")
                if not src.is_file():
                    raise StorageError(redact(url), "is not a regular file")
                with replacing(dest) as tmp:
                    shutil.copy2(src, tmp)
        return None  # a kernel-side copy is faster than hashing on the way

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        dest = self._resolve(url)
        with _os_errors(url):
            if not directory:
                require_file(url, src)
                return [Uploaded(url=url, path=src, size=_put_file(src, dest))]
            require_dir(url, src)
            dest.mkdir(parents=True, exist_ok=True)
            uploaded: list[Uploaded] = []
            for rel, source, is_dir in walk_tree(url, src, may_follow=inside(src)):
                # Re-resolved: a symlink already sitting in the destination tree could point out.
                target = self._confine(url, dest / rel)
                if is_dir:
                    target.mkdir(exist_ok=True)
                else:
                    size = _put_file(source, target)
                    uploaded.append(Uploaded(url=join_url(url, rel), path=src / rel, size=size))
            return uploaded

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        """Every file below ``url``, recursively and sorted (a file lists as itself)."""
        path = self._resolve(url)
        if not path.is_dir():
            return [self.stat(url)]
        with _os_errors(url):
            return [
                _info(join_url(url, rel), source.stat())
                for rel, source, is_dir in walk_tree(url, path, may_follow=self._allowed)
                if not is_dir
            ]

    def _allowed(self, path: Path) -> bool:
        return any(path.is_relative_to(d) for d in self.allowed_dirs)

    def _locate(self, url: str) -> tuple[Path | None, str | None]:
        """The real path ``url`` names, or why it is refused (a phrase following the URL)."""
        if url.startswith("/"):
            raw = url
        else:
            parts = urlsplit(url)
            if parts.scheme != "file":
                return None, "is neither a file:// URL nor an absolute path"
            if parts.netloc not in ("", "localhost"):
                return None, (
                    f"names the host {parts.netloc!r}; only local paths are supported "
                    "(file:///path)"
                )
            if parts.query or parts.fragment:
                return None, "has a query or fragment; percent-encode '?' and '#' in file names"
            raw = unquote(parts.path)
        if not raw.startswith("/"):
            return None, "is not an absolute path"
        if "\0" in raw:
            return None, "contains a NUL character"
        real = Path(os.path.realpath(raw))
        if self._allowed(real):
            return real, None
        allowed = ", ".join(str(d) for d in self.allowed_dirs) or "none are configured"
        outside = (
            f"outside the directories this site allows ({allowed}); add it to file_allowed_dirs"
        )
        if real != Path(os.path.normpath(raw)):
            return None, f"resolves to {real}, which is {outside}"
        return None, f"is {outside}"

    def _resolve(self, url: str) -> Path:
        path, refusal = self._locate(url)
        if path is None:
            raise StorageError(redact(url), f"the path {refusal}")
        return path

    def _confine(self, url: str, path: Path) -> Path:
        real = Path(os.path.realpath(path))
        if not self._allowed(real):
            raise StorageError(
                redact(url), f"{path} resolves to {real}, outside the allowed directories"
            )
        return real


def _info(url: str, st: os.stat_result) -> ObjectInfo:
    is_dir = stat.S_ISDIR(st.st_mode)
    # A directory's total would need a full walk; callers that want it use list(). The inode
    # and change time tell a replaced or rewritten file from the one seen before.
    return ObjectInfo(
        url=url,
        size=0 if is_dir else st.st_size,
        is_dir=is_dir,
        etag=f"{st.st_dev}:{st.st_ino}:{st.st_ctime_ns}",
        modified=str(st.st_mtime_ns),
    )


def inside(root: Path) -> Callable[[Path], bool]:
    """A ``may_follow`` for :func:`walk_tree` that keeps symlinks within ``root``."""
    real_root = Path(os.path.realpath(root))
    return lambda target: target.is_relative_to(real_root)


def walk_tree(
    url: str, root: Path, *, may_follow: Callable[[Path], bool]
) -> Iterator[tuple[PurePosixPath, Path, bool]]:
    """Everything below ``root`` as ``(relative path, real source path, is_dir)``, parents first.

    A symlink is followed only when ``may_follow(its real target)``; otherwise, like a broken
    link, a loop or a special file (FIFO, socket, device), it raises :class:`StorageError`
    naming ``url``, since silently dropping it would hand back an incomplete tree.
    """
    yield from _walk(url, root, PurePosixPath(), may_follow, {Path(os.path.realpath(root))})


def _walk(
    url: str,
    directory: Path,
    prefix: PurePosixPath,
    may_follow: Callable[[Path], bool],
    ancestors: set[Path],
) -> Iterator[tuple[PurePosixPath, Path, bool]]:
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix / entry.name
        source = Path(entry.path)
        if entry.is_symlink():
            source = Path(os.path.realpath(source))
            if not may_follow(source):
                raise StorageError(
                    redact(url), f"{rel} is a symlink to {source}, outside what may be copied"
                )
            if not source.exists():
                raise StorageError(redact(url), f"{rel} is a broken symlink")
        if source.is_dir():
            real = Path(os.path.realpath(source))
            if real in ancestors:
                raise StorageError(redact(url), f"{rel} is a symlink loop")
            yield rel, source, True
            yield from _walk(url, source, rel, may_follow, ancestors | {real})
        elif source.is_file():
            yield rel, source, False
        else:
            raise StorageError(redact(url), f"{rel} is not a regular file or directory")


def _put_file(source: Path, target: Path) -> int:
    with replacing(target) as tmp:
        shutil.copy2(source, tmp)
        size = tmp.stat().st_size
    return size


def _copy_tree(url: str, src: Path, dest: Path, *, may_follow: Callable[[Path], bool]) -> None:
    directories = [(src, dest)]
    for rel, source, is_dir in walk_tree(url, src, may_follow=may_follow):
        if is_dir:
            (dest / rel).mkdir()
            directories.append((source, dest / rel))
        else:
            shutil.copy2(source, dest / rel)
    # Modes last, deepest first: a read-only source directory must not block copying into it.
    for source, target in reversed(directories):
        shutil.copystat(source, target)


@contextlib.contextmanager
def replacing(dest: Path) -> Iterator[Path]:
    """A temporary file beside ``dest`` that replaces it when the block succeeds, else vanishes."""
    if dest.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing_dir(dest: Path) -> Iterator[Path]:
    """Like :func:`replacing`, for a directory tree; an existing ``dest`` must be empty."""
    if dest.exists() and (not dest.is_dir() or os.listdir(dest)):
        raise FileExistsError(errno.EEXIST, "exists and is not an empty directory", str(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"))
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def join_url(url: str, rel: PurePosixPath) -> str:
    """``url`` extended by a relative path (percent-encoded unless ``url`` is a plain path).

    A query or fragment stays at the end, where it belongs.
    """
    if url.startswith("/"):
        return url + str(rel) if url.endswith("/") else f"{url}/{rel}"
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    base, tail = url[:cut], url[cut:]
    sep = "" if base.endswith("/") else "/"
    return f"{base}{sep}{quote(str(rel))}{tail}"


def require_file(url: str, src: Path) -> None:
    if src.is_dir():
        raise StorageError(redact(url), f"{src} is a directory; declare the output as a DIRECTORY")
    if not src.is_file():
        raise StorageError(redact(url), f"{src}: no such file")


def require_dir(url: str, src: Path) -> None:
    if not src.exists():
        raise StorageError(redact(url), f"{src}: no such directory")
    if not src.is_dir():
        raise StorageError(redact(url), f"{src} is a file; declare the output as a FILE")


@contextlib.contextmanager
def _os_errors(url: str) -> Iterator[None]:
    """Turn an ``OSError`` into a :class:`StorageError` whose cause a user can read."""
    try:
        yield
    except OSError as exc:
        raise StorageError(redact(url), os_cause(exc)) from exc


def os_cause(exc: OSError) -> str:
    """An OS error in words: "disk full (no space left on device): /path", say."""
    cause = (exc.strerror or type(exc).__name__).lower()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = f"disk full ({cause})"
    if exc.filename is not None:
        cause = f"{cause}: {exc.filename}"
    return cause
