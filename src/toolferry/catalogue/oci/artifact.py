"""Single files (VM disks, SIF images, recipe tarballs) as OCI artifacts, and back.

An artifact is an image manifest (image-spec v1.1 "artifact" guidance) whose ``artifactType``
says what it is, whose config is the empty descriptor (``application/vnd.oci.empty.v1+json``,
content ``{}``) unless a tool expects its own (SIF: Sylabs' config type, so that
``apptainer pull oras://`` reads it), and whose one layer is the file, with its media type and
an ``org.opencontainers.image.title`` annotation naming it.

Debian's docker-registry (distribution 2.8.2) accepts such manifests as they are: it checks
that the config and layer blobs exist, not their media types, and stores the manifest bytes
unchanged, ``artifactType`` included (tested in tests/integration/catalogue).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.image import read_manifest
from toolferry.catalogue.oci.store import Descriptor, ImageStore, location
from toolferry.domain.errors import InvalidTask

__all__ = ["ArtifactInfo", "pull_artifact", "push_artifact", "read_artifact"]


@dataclass(frozen=True)
class ArtifactInfo:
    """A single-file artifact: its manifest, type, the file's descriptor and its name."""

    repository: str
    descriptor: Descriptor  # the manifest (what to pin)
    artifact_type: str
    file: Descriptor  # the one layer: media type, digest, size, annotations
    annotations: Mapping[str, str] = field(default_factory=dict)  # the manifest's

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def title(self) -> str | None:
        return self.file.annotations.get(media.ANNOTATION_TITLE)


def push_artifact(
    store: ImageStore,
    repository: str,
    path: Path,
    *,
    artifact_type: str,
    media_type: str,
    title: str | None = None,
    annotations: Mapping[str, str] | None = None,
    config_media_type: str = media.EMPTY_MEDIA_TYPE,
    tag: str | None = None,
    expected: str | None = None,
) -> Descriptor:
    """Stores the file at ``path`` as an artifact and returns the manifest's descriptor.

    ``title`` defaults to the file's name; ``annotations`` go on the manifest; ``expected``
    (a digest the file must have) is checked before anything is referenced.
    """
    if not artifact_type:
        raise InvalidTask("artifact_type", "an artifact needs an artifactType")
    if not path.is_file():
        raise InvalidTask("path", f"{path} is not a file")
    layer = store.put_blob(repository, path, media_type=media_type, expected=expected)
    layer = Descriptor(
        media_type, layer.digest, layer.size, {media.ANNOTATION_TITLE: title or path.name}
    )
    config = store.put_blob(repository, media.EMPTY_JSON, media_type=config_media_type)
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config.to_json(),
        "layers": [layer.to_json()],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    data = json.dumps(document, separators=(",", ":")).encode()
    return store.put_manifest(repository, data, media.OCI_MANIFEST, tag=tag)


def read_artifact(store: ImageStore, repository: str, reference: str) -> ArtifactInfo:
    """Reads the artifact a tag or digest names; InvalidTask if it is not a one-file artifact."""
    what = location(store, repository, reference)
    descriptor, parsed = read_manifest(store, repository, reference)
    if parsed.is_index or parsed.config is None:
        raise InvalidTask("reference", f"{what} is an image index, not a single-file artifact")
    if parsed.config.media_type in media.IMAGE_CONFIGS:
        raise InvalidTask("reference", f"{what} is a container image, not an artifact")
    if len(parsed.layers) != 1:
        raise InvalidTask(
            "reference",
            f"{what} holds {len(parsed.layers)} files; a catalogue artifact holds exactly one",
        )
    return ArtifactInfo(
        repository=repository,
        descriptor=descriptor,
        artifact_type=parsed.artifact_type or parsed.config.media_type,
        file=parsed.layers[0],
        annotations=parsed.annotations,
    )


def pull_artifact(store: ImageStore, repository: str, reference: str, dest: Path) -> ArtifactInfo:
    """Writes the artifact's file to ``dest`` (replaced only once verified)."""
    info = read_artifact(store, repository, reference)
    size = store.fetch_blob(repository, info.file.digest, dest)
    if size != info.file.size:
        dest.unlink(missing_ok=True)
        what = f"file of {location(store, repository, reference)}"
        raise DigestMismatch(
            f"{what} ({size} bytes, not {info.file.size})", info.file.digest, info.file.digest
        )
    return info
