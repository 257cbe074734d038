"""Checksums: sha256 of files and trees, hashing while writing, and checksums given in URLs.

A URL may pin its content with a ``#sha256=<64 hex digits>`` fragment (as pip does): the
fragment never reaches the server, keys the input cache directly, and a download whose bytes
do not match fails with "checksum mismatch".
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

__all__ = [
    "CHUNK",
    "HashingWriter",
    "sha256_file",
    "split_checksum",
    "tree_digest",
]

CHUNK = 1 << 20
_FRAGMENT = re.compile(r"#sha256=(?P<hex>[^&#]*)$", re.IGNORECASE)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def split_checksum(url: str) -> tuple[str, str | None]:
    """``url`` without a ``#sha256=…`` fragment, and the checksum (lower-case hex) if any.

    Raises ``ValueError`` for a fragment that is not 64 hex digits.
    """
    match = _FRAGMENT.search(url)
    if match is None:
        return url, None
    digest = match["hex"].lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"the #sha256= fragment must be 64 hex digits, not {match['hex']!r}")
    return url[: match.start()], digest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: Path) -> tuple[str, int, dict[str, str]]:
    """(digest, total bytes, sha256 per relative file path) of the tree below ``root``.

    The digest covers every file's relative path and content and every directory's relative
    path (so an empty folder counts), not times or modes.
    """
    files: dict[str, str] = {}
    dirs: list[str] = []
    total = 0
    for top, subdirs, names in os.walk(root):
        subdirs.sort()
        rel_top = os.path.relpath(top, root)
        for name in subdirs:
            dirs.append(os.path.normpath(os.path.join(rel_top, name)))
        for name in names:
            path = Path(top) / name
            rel = os.path.normpath(os.path.join(rel_top, name))
            files[rel] = sha256_file(path)
            total += path.stat().st_size
    manifest = hashlib.sha256()
    for rel in sorted(dirs):
        manifest.update(f"D {rel}\n".encode())
    for rel in sorted(files):
        manifest.update(f"F {files[rel]} {rel}\n".encode())
    return manifest.hexdigest(), total, files


class HashingWriter:
    """Writes chunks to a binary file while a helper thread hashes what has been written.

    The helper reads the file back (from the page cache) behind the writer rather than being
    handed each chunk: per-chunk hand-offs between threads cost more than the hashing itself
    (measured: 1 GiB over loopback in 2.4 s with a queue of chunks, 1.3 s following the file,
    1.2 s for curl without any hash). ``fh`` must be a real file opened for writing.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._reader = os.open(fh.name, os.O_RDONLY)
        self._digest = hashlib.sha256()
        self._written = 0
        self._done = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._hash, name="sha256", daemon=True)
        self._thread.start()
        self.size = 0

    def _hash(self) -> None:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        position = 0
        try:
            while True:
                with self._changed:
                    while self._written == position and not self._done:
                        self._changed.wait()
                    available, done = self._written, self._done
                if available == position and done:
                    return
                while position < available:
                    count = os.preadv(
                        self._reader, [view[: min(CHUNK, available - position)]], position
                    )
                    if count <= 0:
                        raise OSError(f"{self._fh.name} is shorter than what was written")
                    self._digest.update(view[:count])
                    position += count
        except BaseException as exc:
            self._error = exc

    def write(self, chunk: bytes | memoryview) -> None:
        self._fh.write(chunk)
        self.size += len(chunk)
        # Wake the helper once per CHUNK, not per network read: each wake-up contends for the
        # GIL with the reading thread.
        if self.size - self._written >= CHUNK:
            self._announce()

    def _announce(self) -> None:
        # The reader must see the bytes: flush Python's buffer before announcing them.
        self._fh.flush()
        with self._changed:
            self._written = self.size
            self._changed.notify()

    def hexdigest(self) -> str:
        """The sha256 of everything written; ends the helper thread."""
        self._close()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def _close(self) -> None:
        if self._thread.is_alive():
            self._announce()
            with self._changed:
                self._done = True
                self._changed.notify()
            self._thread.join()
        if self._reader >= 0:
            os.close(self._reader)
            self._reader = -1

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()
