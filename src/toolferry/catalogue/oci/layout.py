"""An OCI image-layout directory per repository: the embedded default store.

``root/<repository>/`` is an image layout (https://github.com/opencontainers/image-spec/blob/
v1.1.0/image-layout.md): an ``oci-layout`` file, ``index.json`` and ``blobs/<alg>/<hex>``, so
``skopeo copy oci:ROOT/REPO:TAG ...`` reads it as it is. Tags are the
``org.opencontainers.image.ref.name`` annotations of ``index.json``; a manifest put without a
tag is only a blob (reachable by digest, not listed in ``index.json``). Docker-typed manifests
are kept byte for byte like any other, but skopeo (containers/image) finds only OCI-typed ones
by tag: copy with ``to_oci=True`` (:mod:`.convert`) into a layout that skopeo must read.

Every file is written to a temporary name and renamed into place, so a reader never sees half a
blob or half an index; ``index.json`` changes hold an exclusive ``flock`` on the repository
directory, so two processes adding tags at once both keep theirs. Blobs are verified against
their digest whenever they are read. Deleting a manifest leaves its layers (no garbage
collection yet).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.digests import (
    CHUNK,
    VerifyingReader,
    check_digest,
    file_chunks,
    verify_bytes,
)
from toolferry.catalogue.oci.errors import DigestMismatch, StoreError
from toolferry.catalogue.oci.manifest import parse_manifest
from toolferry.catalogue.oci.reference import check_repository, check_tag
from toolferry.catalogue.oci.store import (
    OCTET_STREAM,
    BlobSource,
    Descriptor,
    ImageStore,
    write_verified,
)
from toolferry.domain.errors import InvalidTask, NotFound
from toolferry.storage.file import replacing

__all__ = ["LayoutStore"]

_LAYOUT_FILE = "oci-layout"
_LAYOUT = {"imageLayoutVersion": "1.0.0"}
_INDEX_FILE = "index.json"
_BLOBS = "blobs"
_UPLOADS = ".uploads"  # a dot: never a repository name


class LayoutStore:
    """Repositories as OCI image-layout directories below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def where(self) -> str:
        return f"oci:{self.root}"

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""

    # -- paths ------------------------------------------------------------------------------

    def path(self, repository: str) -> Path:
        """The layout directory of ``repository`` (which need not exist yet)."""
        check_repository(repository)
        if _BLOBS in repository.split("/"):
            raise InvalidTask(
                "repository", f"{repository!r}: 'blobs' cannot be a repository name component here"
            )
        return self.root / repository

    def _blob_path(self, repository: str, digest: str) -> Path:
        algorithm, _, hexpart = check_digest(digest).partition(":")
        return self.path(repository) / _BLOBS / algorithm / hexpart

    def _existing(self, repository: str) -> Path:
        layout = self.path(repository)
        if not (layout / _LAYOUT_FILE).is_file():
            raise NotFound(f"repository {repository!r} not found in {self.where}")
        return layout

    def _what(self, repository: str, digest: str) -> str:
        return f"{self.where}/{repository}@{digest}"

    # -- reading ----------------------------------------------------------------------------

    def resolve(self, repository: str, reference: str) -> Descriptor:
        by_digest = ":" in reference
        if by_digest:
            check_digest(reference, "reference")
        else:
            check_tag(reference, "reference")
        entries = self._index_entries(self._existing(repository))
        if not by_digest:
            for entry in reversed(entries):
                if entry.annotations.get(media.ANNOTATION_REF_NAME) == reference:
                    return entry
            raise NotFound(f"tag {reference!r} not found in {self.where}/{repository}")
        for entry in entries:
            if entry.digest == reference:
                return entry
        data = self.manifest(repository, reference)
        parsed = parse_manifest(data)
        return Descriptor(
            parsed.media_type, reference, len(data), artifact_type=parsed.artifact_type
        )

    def manifest(self, repository: str, digest: str) -> bytes:
        try:
            data = self._blob_path(repository, digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"manifest {self._what(repository, digest)} not found") from None
        return verify_bytes(data, digest, f"manifest {self._what(repository, digest)}")

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[BinaryIO]:
        with self._open(repository, digest) as fh:
            yield VerifyingReader.open(
                file_chunks(fh), digest, f"blob {self._what(repository, digest)}"
            )

    def fetch_blob(self, repository: str, digest: str, dest: Path) -> int:
        with self._open(repository, digest) as fh:
            what = f"blob {self._what(repository, digest)}"
            return write_verified(file_chunks(fh), dest, digest, what)

    def has_blob(self, repository: str, digest: str) -> bool:
        return self._blob_path(repository, digest).is_file()

    def tags(self, repository: str) -> list[str]:
        entries = self._index_entries(self._existing(repository))
        names = {e.annotations.get(media.ANNOTATION_REF_NAME) for e in entries}
        return sorted(name for name in names if name)

    def repositories(self) -> list[str]:
        found: list[str] = []
        for top, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d != _BLOBS and not d.startswith("."))
            if _LAYOUT_FILE in files and top != str(self.root):
                found.append(Path(top).relative_to(self.root).as_posix())
        return found

    @contextlib.contextmanager
    def _open(self, repository: str, digest: str) -> Iterator[BinaryIO]:
        try:
            fh = self._blob_path(repository, digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {self._what(repository, digest)} not found") from None
        with fh:
            yield fh

    def _index_entries(self, layout: Path) -> list[Descriptor]:
        index = self._read_index(layout)
        return [
            Descriptor.from_json(item, f"{layout / _INDEX_FILE}: manifests[{i}]")
            for i, item in enumerate(index["manifests"])
        ]

    def _read_index(self, layout: Path) -> dict[str, Any]:
        path = layout / _INDEX_FILE
        try:
            index = json.loads(path.read_bytes())
        except FileNotFoundError:
            return _empty_index()
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path} is not JSON: {exc}") from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise StoreError(f"{path} is not an OCI image index")
        index.setdefault("manifests", [])
        return index

    # -- writing ----------------------------------------------------------------------------

    def put_blob(
        self,
        repository: str,
        source: BlobSource,
        *,
        media_type: str = OCTET_STREAM,
        expected: str | None = None,
    ) -> Descriptor:
        self.path(repository)  # checks the name before anything is read
        algorithm = check_digest(expected).partition(":")[0] if expected else "sha256"
        if isinstance(source, bytes):
            h = hashlib.new(algorithm, source)
            digest = f"{algorithm}:{h.hexdigest()}"
            if expected and digest != expected:
                raise DigestMismatch(f"blob for {self.where}/{repository}", expected, digest)
            self._create(repository)
            final = self._blob_path(repository, digest)
            if not final.is_file():
                with replacing(final) as tmp:
                    tmp.write_bytes(source)
            return Descriptor(media_type, digest, len(source))
        if isinstance(source, Path):
            with source.open("rb") as fh:
                digest, size = self._store_stream(repository, fh, algorithm, expected)
        else:
            digest, size = self._store_stream(repository, source, algorithm, expected)
        return Descriptor(media_type, digest, size)

    def _store_stream(
        self, repository: str, stream: BinaryIO, algorithm: str, expected: str | None
    ) -> tuple[str, int]:
        """Writes ``stream`` below ``root/.uploads`` while hashing it, then moves it into the
        repository (made only now: a refused blob leaves no repository behind)."""
        uploads = self.root / _UPLOADS
        uploads.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=uploads, suffix=".part")
        tmp = Path(name)
        try:
            h = hashlib.new(algorithm)
            size = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = f"{algorithm}:{h.hexdigest()}"
            if expected and digest != expected:
                raise DigestMismatch(f"blob for {self.where}/{repository}", expected, digest)
            self._create(repository)
            final = self._blob_path(repository, digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest, size

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        source = self._blob_path(from_repository, digest)
        if not source.is_file():
            return False
        self._create(repository)
        target = self._blob_path(repository, digest)
        if target.is_file():
            return True
        with replacing(target) as tmp:
            tmp.unlink()
            try:
                os.link(source, tmp)  # blobs are never changed in place: sharing is safe
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                shutil.copyfile(source, tmp)
        return True

    def put_manifest(
        self, repository: str, data: bytes, media_type: str, tag: str | None = None
    ) -> Descriptor:
        if tag is not None:
            check_tag(tag)
        parsed = parse_manifest(data, media_type)
        missing = [
            d.digest
            for d in parsed.blobs + parsed.manifests
            if not self.has_blob(repository, d.digest)
        ]
        if missing:
            raise InvalidTask(
                "manifest",
                f"it refers to content missing from {self.where}/{repository}: "
                f"{', '.join(missing)} (put blobs and child manifests first)",
            )
        descriptor = self.put_blob(repository, data, media_type=parsed.media_type)
        descriptor = Descriptor(
            parsed.media_type,
            descriptor.digest,
            descriptor.size,
            artifact_type=parsed.artifact_type,
        )
        if tag is not None:
            entry = descriptor.to_json()
            entry["annotations"] = {media.ANNOTATION_REF_NAME: tag}
            layout = self.path(repository)
            with _locked(layout):
                index = self._read_index(layout)
                index["manifests"] = [
                    item
                    for item in index["manifests"]
                    if (item.get("annotations") or {}).get(media.ANNOTATION_REF_NAME) != tag
                ] + [entry]
                self._write_index(layout, index)
        return descriptor

    def delete_manifest(self, repository: str, digest: str) -> None:
        check_digest(digest)
        layout = self._existing(repository)
        with _locked(layout):
            index = self._read_index(layout)
            kept = [item for item in index["manifests"] if item.get("digest") != digest]
            path = self._blob_path(repository, digest)
            if len(kept) == len(index["manifests"]) and not path.is_file():
                raise NotFound(f"manifest {self._what(repository, digest)} not found")
            index["manifests"] = kept
            self._write_index(layout, index)
            path.unlink(missing_ok=True)

    def _create(self, repository: str) -> Path:
        """The layout of ``repository``, made (with its ``oci-layout`` file) if missing."""
        layout = self.path(repository)
        marker = layout / _LAYOUT_FILE
        if not marker.is_file():
            (layout / _BLOBS).mkdir(parents=True, exist_ok=True)
            with replacing(marker) as tmp:
                tmp.write_text(json.dumps(_LAYOUT))
            if not (layout / _INDEX_FILE).exists():
                with _locked(layout):
                    if not (layout / _INDEX_FILE).exists():
                        self._write_index(layout, _empty_index())
        return layout

    @staticmethod
    def _write_index(layout: Path, index: dict[str, Any]) -> None:
        with replacing(layout / _INDEX_FILE) as tmp:
            tmp.write_text(json.dumps(index, indent=None, separators=(",", ":")))


@contextlib.contextmanager
def _locked(layout: Path) -> Iterator[None]:
    """An exclusive flock on the layout directory while ``index.json`` is read and replaced."""
    fd = os.open(layout, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": []}


if TYPE_CHECKING:
    _conforms: ImageStore = LayoutStore(Path())
