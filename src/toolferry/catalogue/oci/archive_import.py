"""Images from single files into any store: Docker archives (``docker save``) and OCI archives.

A Docker archive's layers are checked against its config's ``diff_ids`` (gzip layers
decompressed to check them) before the manifest is written, so a corrupt archive leaves no
image behind; an OCI archive is unpacked to a temporary layout and copied, every blob verified.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, cast

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.copy import copy_image
from toolferry.catalogue.oci.digests import CHUNK, check_digest
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.store import Descriptor, ImageStore
from toolferry.domain.errors import InvalidTask

__all__ = ["import_docker_archive", "import_oci_archive"]

_MAX_JSON = 8 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def import_docker_archive(
    archive: Path,
    store: ImageStore,
    repository: str,
    *,
    tag: str | None = None,
    image: str | None = None,
) -> Descriptor:
    """Stores the image of a Docker archive (``docker save``) in ``repository`` as an OCI image
    (layers kept as they are in the archive) and returns its manifest's descriptor.

    ``image`` (one of its repo tags) picks the image of an archive that holds several.
    """
    try:
        tar = tarfile.open(archive, "r:")  # noqa: SIM115 -- closed below
    except (OSError, tarfile.TarError) as exc:
        raise InvalidTask("archive", f"{archive} is not a tar archive: {exc}") from None
    with tar:
        entry = _pick_image(_read_json(tar, "manifest.json"), image, archive)
        config_data = _read_member(tar, str(entry.get("Config", "")), _MAX_JSON)
        try:
            config = json.loads(config_data)
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidTask(
                "archive", f"{archive}: the image config has no rootfs.diff_ids"
            ) from None
        layer_paths = entry.get("Layers") or []
        if not isinstance(layer_paths, list) or len(layer_paths) != len(diff_ids):
            raise InvalidTask(
                "archive",
                f"{archive}: {len(layer_paths)} layers but the config lists {len(diff_ids)} diff_ids",
            )
        layers: list[Descriptor] = []
        for path, diff_id in zip(layer_paths, diff_ids, strict=True):
            check_digest(str(diff_id), "archive")
            layers.append(_import_layer(tar, str(path), str(diff_id), store, repository, archive))
        config_blob = store.put_blob(repository, config_data, media_type=media.OCI_CONFIG)
    document = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": config_blob.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    data = json.dumps(document, separators=(",", ":")).encode()
    return store.put_manifest(repository, data, media.OCI_MANIFEST, tag=tag)


def _pick_image(manifest: Any, image: str | None, archive: Path) -> dict[str, Any]:
    if (
        not isinstance(manifest, list)
        or not manifest
        or not all(isinstance(e, dict) for e in manifest)
    ):
        raise InvalidTask("archive", f"{archive}: manifest.json lists no image")
    if image is None:
        if len(manifest) == 1:
            return dict(manifest[0])
        names = [t for e in manifest for t in e.get("RepoTags") or []]
        raise InvalidTask(
            "image", f"{archive} holds {len(manifest)} images ({', '.join(names)}): say which"
        )
    for entry in manifest:
        if image in (entry.get("RepoTags") or []):
            return dict(entry)
    raise InvalidTask("image", f"{archive} holds no image tagged {image!r}")


def _import_layer(
    tar: tarfile.TarFile,
    path: str,
    diff_id: str,
    store: ImageStore,
    repository: str,
    archive: Path,
) -> Descriptor:
    with _open_member(tar, path) as fh:
        magic = fh.read(4)
    if magic.startswith(_GZIP_MAGIC):
        media_type = media.OCI_LAYER_GZIP
        with _open_member(tar, path) as fh, gzip.GzipFile(fileobj=fh) as plain:
            _check_diff_id(plain, diff_id, f"{archive}: layer {path}")
    elif magic.startswith(_ZSTD_MAGIC):
        media_type = media.OCI_LAYER_ZSTD  # no zstd in the standard library: docker checks it
    else:
        media_type = media.OCI_LAYER
    expected = diff_id if media_type == media.OCI_LAYER else None
    with _open_member(tar, path) as fh:
        return store.put_blob(repository, fh, media_type=media_type, expected=expected)


def _check_diff_id(stream: BinaryIO | gzip.GzipFile, diff_id: str, what: str) -> None:
    h = hashlib.new(diff_id.partition(":")[0])
    while chunk := stream.read(CHUNK):
        h.update(chunk)
    actual = f"{h.name}:{h.hexdigest()}"
    if actual != diff_id:
        raise DigestMismatch(f"{what} (uncompressed)", diff_id, actual)


def _name(tar: tarfile.TarFile) -> str:
    return os.fsdecode(tar.name) if tar.name else "the archive"


def _open_member(tar: tarfile.TarFile, path: str) -> BinaryIO:
    try:
        member = tar.getmember(path)
    except KeyError:
        raise InvalidTask("archive", f"{_name(tar)} has no {path!r}") from None
    fh = tar.extractfile(member)
    if fh is None:
        raise InvalidTask("archive", f"{_name(tar)}: {path!r} is not a file")
    return cast(BinaryIO, fh)


def _read_member(tar: tarfile.TarFile, path: str, limit: int) -> bytes:
    with _open_member(tar, path) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InvalidTask("archive", f"{_name(tar)}: {path!r} is larger than {limit} bytes")
    return data


def _read_json(tar: tarfile.TarFile, path: str) -> Any:
    try:
        return json.loads(_read_member(tar, path, _MAX_JSON))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidTask("archive", f"{_name(tar)}: {path} is not JSON ({exc})") from None


MAX_ARCHIVE_MEMBERS = 100_000


def import_oci_archive(
    archive: Path,
    store: ImageStore,
    repository: str,
    *,
    tag: str | None = None,
    name: str | None = None,
    work_dir: Path | None = None,
) -> Descriptor:
    """Stores what an OCI archive holds (everything under its entry named ``name``, or its
    only entry) in ``repository``, every blob verified; returns the top descriptor.

    The archive must be a plain tar (as ``skopeo`` and ``docker`` write them): a compressed
    one could unpack to any size. It is unpacked under ``work_dir`` (default: the system's
    temporary directory), at most :data:`MAX_ARCHIVE_MEMBERS` members."""
    with tempfile.TemporaryDirectory(prefix="toolferry-oci-", dir=work_dir) as work:
        layout = Path(work) / "archive"
        try:
            with tarfile.open(archive, "r:") as tar:
                members = []
                for member in tar:
                    members.append(member)
                    if len(members) > MAX_ARCHIVE_MEMBERS:
                        raise InvalidTask(
                            "archive", f"holds more than {MAX_ARCHIVE_MEMBERS} members"
                        )
                tar.extractall(layout, members=members, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise InvalidTask(
                "archive", f"{archive} is not a readable tar archive: {exc}"
            ) from None
        if not (layout / "oci-layout").is_file():
            raise InvalidTask("archive", f"{archive} is not an OCI archive (no oci-layout file)")
        entries = _index_entries(layout / "index.json", archive)
        if name is not None:
            entries = [e for e in entries if e.annotations.get(media.ANNOTATION_REF_NAME) == name]
        if len(entries) != 1:
            names = sorted(
                filter(None, (e.annotations.get(media.ANNOTATION_REF_NAME) for e in entries))
            )
            raise InvalidTask(
                "name",
                f"{archive} holds {len(entries)} matching entries ({', '.join(names) or 'unnamed'})"
                ": name exactly one",
            )
        source = LayoutStore(Path(work))
        return copy_image(
            source, "archive", entries[0].digest, store, repository, tag=tag
        ).descriptor


def _index_entries(path: Path, archive: Path) -> list[Descriptor]:
    try:
        index = json.loads(path.read_bytes())
        items = index["manifests"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InvalidTask("archive", f"{archive} has no valid index.json") from None
    if not isinstance(items, list):
        raise InvalidTask("archive", f"{archive}: index.json lists no manifests")
    return [Descriptor.from_json(item, "archive.index.json") for item in items]
