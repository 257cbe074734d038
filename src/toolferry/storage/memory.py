"""An in-memory storage for tests and experiments: objects in a dict, every call recorded.

Ships with the package (like httpx's MockTransport) so that unit tests of anything built on
storage need no server; integration tests still use real ones.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.file import join_url, replacing, replacing_dir, walk_tree

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """URLs ``<scheme>://<anything>``; a directory is every object whose URL starts with
    ``<url>/``. ``gate``, when given, must be set before a ``get`` may proceed."""

    def __init__(
        self,
        *schemes: str,
        objects: dict[str, bytes] | None = None,
        operations: Iterable[Operation] = tuple(Operation),
        read_only: bool = False,
        gate: threading.Event | None = None,
    ) -> None:
        self.schemes = schemes or ("mem",)
        self.operations = frozenset(operations)
        self.objects: dict[str, bytes] = dict(objects or {})
        self.versions: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []
        self.credentials: list[Credential | None] = []
        self.read_only = read_only
        self.gate = gate
        self._lock = threading.Lock()

    def _record(self, op: str, url: str, credential: Credential | None) -> None:
        with self._lock:
            self.calls.append((op, url))
            self.credentials.append(credential)

    def count(self, op: str) -> int:
        with self._lock:
            return sum(1 for name, _ in self.calls if name == op)

    def supports(self, url: str, *, write: bool) -> str | None:
        return f"{url} is read-only" if write and self.read_only else None

    def _below(self, url: str) -> list[str]:
        prefix = url.rstrip("/") + "/"
        return sorted(u for u in self.objects if u.startswith(prefix))

    def _info(self, url: str) -> ObjectInfo:
        data = self.objects[url]
        return ObjectInfo(url=url, size=len(data), etag=f'"{self.versions.get(url, 0)}"')

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        self._record("stat", url, credential)
        if url in self.objects:
            return self._info(url)
        if self._below(url):
            return ObjectInfo(url=url, size=0, is_dir=True)
        raise StorageError(url, "not found")

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        self._record("get", url, credential)
        if self.gate is not None and not self.gate.wait(30):
            raise StorageError(url, "gate never opened")
        if directory:
            below = self._below(url)
            if not below:
                raise StorageError(url, "not found")
            with replacing_dir(dest) as tmp:
                for item in below:
                    target = tmp / item[len(url.rstrip("/")) + 1 :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self.objects[item])
            return None
        if url not in self.objects:
            raise StorageError(url, "not found")
        with replacing(dest) as tmp:
            tmp.write_bytes(self.objects[url])
            os.chmod(tmp, 0o644)
        return hashlib.sha256(self.objects[url]).hexdigest()

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        self._record("put", url, credential)
        if not directory:
            return [self._put_file(src, url, src)]
        return [
            self._put_file(source, join_url(url, rel), src / rel)
            for rel, source, is_dir in walk_tree(url, src, may_follow=lambda _: True)
            if not is_dir
        ]

    def _put_file(self, source: Path, url: str, path: Path) -> Uploaded:
        data = source.read_bytes()
        with self._lock:
            self.objects[url] = data
            self.versions[url] = self.versions.get(url, 0) + 1
        return Uploaded(url=url, path=path, size=len(data))

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        self._record("list", url, credential)
        if url in self.objects:
            return [self._info(url)]
        return [self._info(u) for u in self._below(url)]
