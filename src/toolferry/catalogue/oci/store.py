"""The one interface of every image store (an OCI registry, an OCI image-layout directory) and
the descriptor type it speaks in.

A store holds repositories; each holds content-addressed blobs and manifests (named by digest)
and tags pointing at manifests. Every read is verified against the digest that names it (a
mismatch raises :class:`~toolferry.catalogue.oci.errors.DigestMismatch`), every write is
content-addressed, so a caller never has to check again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from toolferry.catalogue.oci.digests import check_digest, hasher
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.domain.errors import InvalidTask
from toolferry.storage.file import replacing

__all__ = [
    "OCTET_STREAM",
    "BlobSource",
    "Descriptor",
    "ImageStore",
    "Platform",
    "location",
    "write_verified",
]

# What a blob can be written from: bytes in memory, a file (read in chunks), or a stream
# (e.g. another store's open_blob), which is hashed as it passes.
BlobSource = bytes | Path | BinaryIO
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]`` as in an image index (``linux/arm64/v8``)."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidTask("platform", f"{text!r} is not os/architecture[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        return cls(
            str(data.get("os", "")),
            str(data.get("architecture", "")),
            str(data["variant"]) if data.get("variant") else None,
        )

    def to_json(self) -> dict[str, str]:
        data = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        return data

    def matches(self, wanted: Platform) -> bool:
        """True if this platform satisfies ``wanted`` (a wanted variant must match exactly)."""
        return (
            self.os == wanted.os
            and self.architecture == wanted.architecture
            and (wanted.variant is None or self.variant == wanted.variant)
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest or blob is, its digest and size."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    platform: Platform | None = None

    @classmethod
    def from_json(cls, data: Any, field_name: str = "descriptor") -> Descriptor:
        """Parses a descriptor object of a manifest or index (InvalidTask when malformed)."""
        if not isinstance(data, Mapping):
            raise InvalidTask(field_name, "a descriptor must be a JSON object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise InvalidTask(f"{field_name}.mediaType", "missing or not a string")
        if not isinstance(digest, str):
            raise InvalidTask(f"{field_name}.digest", "missing or not a string")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidTask(f"{field_name}.size", "missing or not a non-negative integer")
        annotations = data.get("annotations") or {}
        if not isinstance(annotations, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise InvalidTask(f"{field_name}.annotations", "must map strings to strings")
        platform = data.get("platform")
        artifact_type = data.get("artifactType")
        return cls(
            media_type=media_type,
            digest=check_digest(digest, f"{field_name}.digest"),
            size=size,
            annotations=dict(annotations),
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
            platform=Platform.from_json(platform) if isinstance(platform, Mapping) else None,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.platform is not None:
            data["platform"] = self.platform.to_json()
        return data


@runtime_checkable
class ImageStore(Protocol):
    """Repositories of blobs and manifests; ``reference`` arguments are a tag or a digest.

    Manifests are stored byte for byte (their digest is the digest of those bytes).
    """

    @property
    def where(self) -> str:
        """Where this store is, for messages and records (a registry URL or a directory)."""
        ...

    def close(self) -> None:
        """Release what the store holds open (a registry's connections)."""
        ...

    def resolve(self, repository: str, reference: str) -> Descriptor:
        """The descriptor (media type, digest, size) of the manifest a tag or digest names."""
        ...

    def manifest(self, repository: str, digest: str) -> bytes:
        """The manifest's bytes, verified against ``digest``."""
        ...

    def open_blob(self, repository: str, digest: str) -> AbstractContextManager[BinaryIO]:
        """A stream of the blob; reading it to the end raises DigestMismatch if it is wrong."""
        ...

    def fetch_blob(self, repository: str, digest: str, dest: Path) -> int:
        """Writes the blob to ``dest`` (only once verified) and returns its size."""
        ...

    def has_blob(self, repository: str, digest: str) -> bool: ...

    def put_blob(
        self,
        repository: str,
        source: BlobSource,
        *,
        media_type: str = OCTET_STREAM,
        expected: str | None = None,
    ) -> Descriptor:
        """Stores a blob; returns its descriptor (``media_type`` is only copied into it).

        When ``expected`` (a digest) is given, content that does not match it raises
        DigestMismatch and nothing is stored.
        """
        ...

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Makes a blob of ``from_repository`` (same store) part of ``repository`` without
        sending it again; False when the store could not (then send it with put_blob)."""
        ...

    def put_manifest(
        self, repository: str, data: bytes, media_type: str, tag: str | None = None
    ) -> Descriptor:
        """Stores a manifest (its blobs and child manifests must be there) and tags it."""
        ...

    def tags(self, repository: str) -> list[str]: ...

    def repositories(self) -> list[str]:
        """Every repository (a registry may refuse to list them: Forbidden)."""
        ...

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Removes the manifest and every tag pointing at it (blobs stay)."""
        ...


def location(store: ImageStore, repository: str, reference: str = "") -> str:
    """``<where>/<repository>[:tag|@digest]``, naming content in messages."""
    text = f"{store.where}/{repository}"
    if reference:
        text += ("@" if ":" in reference else ":") + reference
    return text


def write_verified(
    chunks: Iterable[bytes], dest: Path, digest: str, what: str, size: int | None = None
) -> int:
    """Writes ``chunks`` to ``dest`` through a temporary file, checking digest and size first.

    ``dest`` is replaced only by verified content; returns the number of bytes written.
    """
    h = hasher(digest)
    written = 0
    with replacing(dest) as tmp, tmp.open("wb") as out:
        for chunk in chunks:
            h.update(chunk)
            out.write(chunk)
            written += len(chunk)
        actual = f"{h.name}:{h.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(what, digest, actual)
        if size is not None and written != size:
            raise DigestMismatch(f"{what} ({written} bytes, not {size})", digest, actual)
    return written
