"""Images as single files: OCI archives and Docker archives, out of and into any store.

- OCI archive: a tar of an OCI image layout (``oci-layout``, ``index.json``, ``blobs/``), what
  ``skopeo copy ... oci-archive:FILE[:TAG]`` reads and writes.
- Docker archive: what ``docker save`` writes and ``docker load -i`` reads: ``manifest.json``
  (config path, repo tags, layer paths), ``repositories``, the config and the layers. Layers are
  written as stored (``docker load`` decompresses gzip and zstd layers itself) under
  ``blobs/sha256/<hex>``, the names Docker >= 25 uses.

Exports stream each blob from the store into the tar, verified, and the archive replaces
``dest`` only when complete. Importing archives: :mod:`toolferry.catalogue.oci.archive_import`.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.convert import OciConverter
from toolferry.catalogue.oci.digests import check_digest, hex_part
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.image import ImageInfo, read_image
from toolferry.catalogue.oci.reference import parse_reference
from toolferry.catalogue.oci.store import Descriptor, ImageStore, location
from toolferry.catalogue.oci.walk import walk
from toolferry.domain.errors import InvalidTask
from toolferry.storage.file import replacing

__all__ = [
    "export_docker_archive",
    "export_oci_archive",
]

_MAX_JSON = 8 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


# -- export -------------------------------------------------------------------------------


def export_oci_archive(
    store: ImageStore,
    repository: str,
    reference: str,
    dest: Path,
    *,
    tag: str | None = None,
    to_oci: bool = False,
) -> Descriptor:
    """Writes what ``reference`` names (image, index with every platform, or artifact) to
    ``dest`` as an OCI archive; ``tag`` becomes its ``ref.name``. ``to_oci`` rewrites Docker
    manifests with OCI media types (skopeo finds only those by tag). Returns the descriptor of
    the archive's top manifest."""
    top = store.resolve(repository, reference)
    entry = Descriptor(top.media_type, top.digest, top.size, artifact_type=top.artifact_type)
    converter = OciConverter() if to_oci else None
    with replacing(dest) as tmp, _archive(tmp) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        for node in walk(store, repository, top):
            if node.data is None:
                _add_blob(tar, store, repository, node.descriptor)
                continue
            descriptor, data = node.descriptor, node.data
            if converter is not None:
                descriptor, data = converter.convert(descriptor, data)
            _add_bytes(tar, _blob_name(descriptor.digest), data)
            if node.descriptor.digest == top.digest:
                entry = Descriptor(
                    descriptor.media_type,
                    descriptor.digest,
                    descriptor.size,
                    artifact_type=top.artifact_type,
                )
        index_entry = entry.to_json()
        if tag is not None:
            index_entry["annotations"] = {media.ANNOTATION_REF_NAME: tag}
        index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [index_entry]}
        _add_bytes(tar, "index.json", json.dumps(index).encode())
    return entry


def export_docker_archive(
    store: ImageStore,
    repository: str,
    reference: str,
    dest: Path,
    *,
    repo_tags: Sequence[str] = (),
    platform: str = "linux/amd64",
) -> ImageInfo:
    """Writes the image (of ``platform``, if ``reference`` is an index) to ``dest`` as a Docker
    archive that ``docker load`` names ``repo_tags`` (``name:tag`` each)."""
    tags = [_check_repo_tag(t) for t in repo_tags]
    info = read_image(store, repository, reference, platform)
    layers = [_blob_name(layer.digest) for layer in info.layers]
    manifest = [
        {"Config": _blob_name(info.config_descriptor.digest), "RepoTags": tags, "Layers": layers}
    ]
    repositories: dict[str, dict[str, str]] = {}
    top_layer = hex_part(info.layers[-1].digest) if info.layers else ""
    for name_tag in tags:
        slash, colon = name_tag.rfind("/"), name_tag.rfind(":")
        name, tag = (
            (name_tag[:colon], name_tag[colon + 1 :]) if colon > slash else (name_tag, "latest")
        )
        repositories.setdefault(name, {})[tag] = top_layer
    with replacing(dest) as tmp, _archive(tmp) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        _add_blob(tar, store, repository, info.config_descriptor)
        for layer in info.layers:
            _add_blob(tar, store, repository, layer)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(repositories).encode())
    return info


@contextlib.contextmanager
def _archive(tmp: Path) -> Iterator[tarfile.TarFile]:
    """A tar written into the (empty) temporary file: opened without truncating it, since
    ext4 flushes a truncated file at close (0.2 s per 256 MiB here), and copied in 1 MiB
    pieces rather than tarfile's 16 KiB (benchmarks/catalogue.py)."""
    with (
        tmp.open("r+b") as raw,
        tarfile.TarFile(
            fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, copybufsize=1 << 20
        ) as tar,
    ):
        yield tar


def _check_repo_tag(text: str) -> str:
    reference = parse_reference(text)
    if reference.digest is not None or reference.tag is None:
        raise InvalidTask("repo_tags", f"{text!r} must be name:tag (no digest)")
    return text


def _blob_name(digest: str) -> str:
    algorithm, _, hexpart = check_digest(digest).partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_blob(tar: tarfile.TarFile, store: ImageStore, repository: str, blob: Descriptor) -> None:
    info = tarfile.TarInfo(_blob_name(blob.digest))
    info.size, info.mode = blob.size, 0o644
    with store.open_blob(repository, blob.digest) as stream:
        tar.addfile(info, stream)
        # tarfile stops after ``size`` bytes; reading on to the end checks the digest (and
        # that the blob is not longer than its descriptor says).
        if stream.read(1):
            what = f"blob {location(store, repository, blob.digest)}"
            raise DigestMismatch(f"{what} (longer than {blob.size} bytes)", blob.digest, "unknown")
