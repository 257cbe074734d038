"""Digests (``algorithm:hex``): parsing, computing, and readers that verify what they stream.

Only the algorithms the OCI image spec registers are accepted: sha256 (what everything writes)
and sha512 (which a registry may serve). Verification happens where the bytes pass anyway, so a
multi-GB blob is read once: a :class:`VerifyingReader` raises :class:`DigestMismatch` when its
stream ends with the wrong digest or size, never after handing out a clean EOF.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.domain.errors import InvalidTask
from toolferry.storage.integrity import CHUNK

__all__ = [
    "CHUNK",
    "VerifyingReader",
    "check_digest",
    "digest_bytes",
    "digest_file",
    "file_chunks",
    "hasher",
    "hex_part",
    "verify_bytes",
]

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[a-f0-9]+")


def check_digest(text: str, field: str = "digest") -> str:
    """``text`` if it is a well-formed ``sha256:``/``sha512:`` digest, else InvalidTask(field)."""
    algorithm, sep, hexpart = text.partition(":")
    if not sep:
        raise InvalidTask(field, f"{text!r} is not a digest (algorithm:hex, e.g. sha256:<64 hex>)")
    length = _HEX_LENGTH.get(algorithm)
    if length is None:
        raise InvalidTask(
            field, f"unsupported digest algorithm {algorithm!r} in {text!r} (sha256 or sha512)"
        )
    if len(hexpart) != length or not _LOWER_HEX.fullmatch(hexpart):
        raise InvalidTask(
            field, f"{text!r} is malformed: {algorithm} wants {length} lower-case hex digits"
        )
    return text


def hex_part(digest: str) -> str:
    """The hex part of a checked digest (what blob files are named by)."""
    return check_digest(digest).partition(":")[2]


def hasher(digest: str) -> hashlib._Hash:
    """A fresh hash object of ``digest``'s algorithm."""
    return hashlib.new(check_digest(digest).partition(":")[0])


def digest_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_file(path: Path, algorithm: str = "sha256") -> tuple[str, int]:
    """(digest, size) of the file at ``path``, read in chunks."""
    h = hashlib.new(algorithm)
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return f"{algorithm}:{h.hexdigest()}", size


def verify_bytes(data: bytes, digest: str, what: str) -> bytes:
    """``data`` if it hashes to ``digest``, else :class:`DigestMismatch` naming ``what``."""
    h = hasher(digest)
    h.update(data)
    actual = f"{h.name}:{h.hexdigest()}"
    if actual != digest:
        raise DigestMismatch(what, digest, actual)
    return data


class VerifyingReader(io.RawIOBase):
    """A readable stream over ``chunks`` that checks digest (and size, when known) at its end.

    Wrap it in :class:`io.BufferedReader` (see :meth:`open`) for ``read(n)`` and iteration.
    """

    def __init__(
        self, chunks: Iterable[bytes], digest: str, what: str, size: int | None = None
    ) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._digest = digest
        self._hash = hasher(digest)
        self._what = what
        self._size = size
        self._seen = 0
        self._pending = memoryview(b"")
        self._checked = False

    @classmethod
    def open(
        cls, chunks: Iterable[bytes], digest: str, what: str, size: int | None = None
    ) -> BinaryIO:
        return io.BufferedReader(cls(chunks, digest, what, size), buffer_size=CHUNK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._check()
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._hash.update(self._pending[:count])
        self._pending = self._pending[count:]
        self._seen += count
        if self._size is not None and self._seen > self._size:
            raise DigestMismatch(
                f"{self._what} (longer than its {self._size} bytes)", self._digest, "unknown"
            )
        return count

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = f"{self._hash.name}:{self._hash.hexdigest()}"
        if actual != self._digest:
            raise DigestMismatch(self._what, self._digest, actual)
        if self._size is not None and self._seen != self._size:
            raise DigestMismatch(
                f"{self._what} ({self._seen} bytes, not {self._size})", self._digest, actual
            )


def file_chunks(fh: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """Chunks of ``fh`` from its position, at most ``limit`` bytes in all when given."""
    left = limit
    while left is None or left > 0:
        chunk = fh.read(CHUNK if left is None else min(CHUNK, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk
