"""Manifests and indexes parsed just enough to walk them: which descriptors they point at.

Accepts OCI image manifests and indexes and Docker schema 2 manifests and manifest lists; the
bytes are never re-serialised (a manifest's digest is that of its bytes as stored).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.store import Descriptor
from toolferry.domain.errors import InvalidTask

__all__ = ["Manifest", "parse_manifest"]


@dataclass(frozen=True)
class Manifest:
    """An image manifest (``config`` and ``layers``) or an index (``manifests``)."""

    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return media.is_index(self.media_type)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """The blobs an image manifest needs in its repository (config first)."""
        return ((self.config,) if self.config else ()) + self.layers


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest:
    """Parses a manifest; ``media_type`` (a Content-Type or descriptor's) must agree with the
    document's own ``mediaType`` when both are given. InvalidTask("manifest", why) otherwise."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidTask("manifest", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidTask("manifest", "must be a JSON object")
    if doc.get("schemaVersion") == 1:
        raise InvalidTask(
            "manifest",
            "Docker schema 1 manifests are not supported (push the image again with a current "
            "client to get schema 2)",
        )
    if doc.get("schemaVersion") != 2:
        raise InvalidTask("manifest", f"schemaVersion must be 2, not {doc.get('schemaVersion')!r}")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise InvalidTask("manifest.mediaType", "must be a string")
    if declared and media_type and declared != media_type:
        raise InvalidTask(
            "manifest.mediaType",
            f"the document says {declared!r} but it was sent as {media_type!r}",
        )
    kind = declared or media_type or (media.OCI_INDEX if "manifests" in doc else media.OCI_MANIFEST)
    if kind not in media.MANIFESTS | media.INDEXES:
        raise InvalidTask(
            "manifest.mediaType",
            f"{kind!r} is not an image manifest or index media type (one of "
            f"{', '.join(sorted(media.MANIFESTS | media.INDEXES))})",
        )
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise InvalidTask("manifest.annotations", "must be an object")
    artifact_type = doc.get("artifactType")
    subject = doc.get("subject")
    common: dict[str, Any] = {
        "media_type": kind,
        "annotations": dict(annotations),
        "artifact_type": artifact_type if isinstance(artifact_type, str) else None,
        "subject": Descriptor.from_json(subject, "manifest.subject") if subject else None,
    }
    if media.is_index(kind):
        return Manifest(manifests=_descriptors(doc, "manifests"), **common)
    if "config" not in doc:
        raise InvalidTask("manifest.config", "an image manifest needs a config descriptor")
    return Manifest(
        config=Descriptor.from_json(doc["config"], "manifest.config"),
        layers=_descriptors(doc, "layers"),
        **common,
    )


def _descriptors(doc: Mapping[str, Any], key: str) -> tuple[Descriptor, ...]:
    items = doc.get(key)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise InvalidTask(f"manifest.{key}", "must be a list")
    return tuple(Descriptor.from_json(item, f"manifest.{key}[{i}]") for i, item in enumerate(items))
