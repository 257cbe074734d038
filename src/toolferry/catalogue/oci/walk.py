"""The content under a manifest: every child manifest and blob, each before what refers to it.

Copying and archiving walk it in this order, so a registry that checks references on upload
(all do) has everything a manifest names before the manifest arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from toolferry.catalogue.oci.manifest import Manifest, parse_manifest
from toolferry.catalogue.oci.store import Descriptor, ImageStore

__all__ = ["Node", "walk"]


@dataclass(frozen=True)
class Node:
    """A blob (``manifest`` is None) or a manifest with its bytes and parsed form."""

    descriptor: Descriptor
    data: bytes | None = None
    manifest: Manifest | None = None


def walk(store: ImageStore, repository: str, top: Descriptor) -> Iterator[Node]:
    """Every node under ``top`` (``top`` last), each digest once, children first."""
    seen: set[str] = set()

    def visit(descriptor: Descriptor) -> Iterator[Node]:
        if descriptor.digest in seen:
            return
        seen.add(descriptor.digest)
        data = store.manifest(repository, descriptor.digest)
        parsed = parse_manifest(data, descriptor.media_type)
        for child in parsed.manifests:
            yield from visit(child)
        for blob in parsed.blobs:
            if blob.digest not in seen:
                seen.add(blob.digest)
                yield Node(blob)
        yield Node(descriptor, data, parsed)

    yield from visit(top)
