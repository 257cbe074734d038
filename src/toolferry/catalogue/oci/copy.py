"""Copying an image, an index with all its platforms, or an artifact between two stores.

Content keeps its digests (manifests are copied byte for byte); blobs the target already has
are not sent again, and between two repositories of one store they are mounted (a registry's
cross-repository mount, a hard link in a layout). Every blob is verified as it streams through.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolferry.catalogue.oci.convert import OciConverter
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.store import Descriptor, ImageStore, location
from toolferry.catalogue.oci.walk import walk
from toolferry.domain.errors import NotFound

__all__ = ["Copied", "copy_image"]


@dataclass(frozen=True)
class Copied:
    """What a copy did: the top manifest in the target, and how its blobs got there."""

    descriptor: Descriptor
    blobs_sent: int = 0
    bytes_sent: int = 0
    blobs_present: int = 0  # already in the target: skipped
    blobs_mounted: int = 0


def copy_image(
    source: ImageStore,
    source_repository: str,
    reference: str,
    target: ImageStore,
    target_repository: str,
    *,
    tag: str | None = None,
    to_oci: bool = False,
) -> Copied:
    """Copies what ``reference`` (tag or digest) names in the source to the target, tagging
    the top manifest with ``tag`` if given. Returns the target's descriptor: the same digest,
    unless ``to_oci`` rewrote Docker manifests with OCI media types (see :mod:`.convert`)."""
    top = source.resolve(source_repository, reference)
    converter = OciConverter() if to_oci else None
    sent = sent_bytes = present = mounted = 0
    same_store = source is target
    result = top
    for node in walk(source, source_repository, top):
        d = node.descriptor
        if node.data is None:
            if target.has_blob(target_repository, d.digest):
                present += 1
            elif (
                same_store
                and source_repository != target_repository
                and target.mount_blob(target_repository, d.digest, source_repository)
            ):
                mounted += 1
            else:
                with source.open_blob(source_repository, d.digest) as stream:
                    put = target.put_blob(
                        target_repository, stream, media_type=d.media_type, expected=d.digest
                    )
                if put.size != d.size:
                    what = f"blob {location(source, source_repository, d.digest)}"
                    raise DigestMismatch(
                        f"{what} ({put.size} bytes, not {d.size})", d.digest, d.digest
                    )
                sent += 1
                sent_bytes += put.size
            continue
        is_top = d.digest == top.digest
        data = node.data
        if converter is not None:
            d, data = converter.convert(d, data)
        elif node.manifest is not None:
            d = Descriptor(node.manifest.media_type, d.digest, d.size)
        if not is_top and _has_manifest(target, target_repository, d.digest):
            continue
        put = target.put_manifest(target_repository, data, d.media_type, tag if is_top else None)
        if is_top:
            result = put
    return Copied(result, sent, sent_bytes, present, mounted)


def _has_manifest(store: ImageStore, repository: str, digest: str) -> bool:
    try:
        store.resolve(repository, digest)
    except NotFound:
        return False
    return True
