"""Docker schema 2 manifests and manifest lists rewritten with OCI media types.

Docker's and OCI's formats are the same JSON with different media types, and the blobs are
the same bytes (a Docker gzip layer is an OCI ``tar+gzip`` layer, a Docker config an OCI
config), so converting changes only manifests — and so their digests, which is why it is a
choice (``to_oci=True`` when copying or archiving), not a default. Tools that read image
layouts, skopeo among them, find only OCI-typed manifests by tag in ``index.json``.
"""

from __future__ import annotations

import json
from typing import Any

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.store import Descriptor

__all__ = ["OciConverter"]

_OCI_EQUIVALENT = {
    media.DOCKER_MANIFEST: media.OCI_MANIFEST,
    media.DOCKER_MANIFEST_LIST: media.OCI_INDEX,
    media.DOCKER_CONFIG: media.OCI_CONFIG,
    media.DOCKER_LAYER_GZIP: media.OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": media.OCI_LAYER,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
}


class OciConverter:
    """Converts the manifests of one image graph, children first (as :func:`walk` yields
    them), remembering each child's new descriptor for the index that lists it."""

    def __init__(self) -> None:
        self._new: dict[str, Descriptor] = {}

    def convert(self, descriptor: Descriptor, data: bytes) -> tuple[Descriptor, bytes]:
        """The OCI form of a manifest and its new descriptor (unchanged if already OCI)."""
        document = json.loads(data)
        changed = _retype(document)
        for entry in document.get("manifests") or []:
            new = self._new.get(entry.get("digest"))
            if new is not None and new.digest != entry["digest"]:
                entry.update(mediaType=new.media_type, digest=new.digest, size=new.size)
                changed = True
            changed = _retype(entry) or changed
        if changed:
            data = json.dumps(document, separators=(",", ":")).encode()
        kind = document.get("mediaType") or descriptor.media_type
        result = Descriptor(
            _OCI_EQUIVALENT.get(kind, kind),
            digest_bytes(data) if changed else descriptor.digest,
            len(data),
            descriptor.annotations,
            descriptor.artifact_type,
            descriptor.platform,
        )
        self._new[descriptor.digest] = result
        return result, data


def _retype(document: dict[str, Any]) -> bool:
    """Replaces Docker media types in ``document`` and its config and layers; True if any."""
    changed = False
    targets: list[dict[str, Any]] = [document]
    if isinstance(document.get("config"), dict):
        targets.append(document["config"])
    targets.extend(layer for layer in document.get("layers") or [] if isinstance(layer, dict))
    for target in targets:
        kind = target.get("mediaType")
        if kind in _OCI_EQUIVALENT:
            target["mediaType"] = _OCI_EQUIVALENT[kind]
            changed = True
    return changed
