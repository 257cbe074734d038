"""Small images built by hand for the OCI tests: tar layers made in Python, no engine needed."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.store import Descriptor, ImageStore, Platform

CREATED = "2024-05-06T07:08:09.123456789Z"


def layer_tar(files: Mapping[str, bytes]) -> bytes:
    """A reproducible tar of ``files`` (path → content)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def image_config(
    diff_ids: list[str],
    *,
    platform: Platform = Platform("linux", "amd64"),
    labels: Mapping[str, str] | None = None,
    created: str = CREATED,
) -> bytes:
    config: dict[str, Any] = {
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Cmd": ["/bin/sh"], "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if platform.variant:
        config["variant"] = platform.variant
    return json.dumps(config).encode()


def put_image(
    store: ImageStore,
    repository: str,
    *,
    tag: str | None = None,
    layers: list[Mapping[str, bytes]] | None = None,
    labels: Mapping[str, str] | None = None,
    platform: Platform = Platform("linux", "amd64"),
    docker: bool = False,
    compress: bool = True,
) -> Descriptor:
    """Stores an image of ``layers`` (default: one layer with hello.txt) and its manifest."""
    layer_descriptors = []
    diff_ids = []
    for files in layers if layers is not None else [{"hello.txt": b"hello\n"}]:
        plain = layer_tar(files)
        diff_ids.append(digest_bytes(plain))
        if compress:
            kind = media.DOCKER_LAYER_GZIP if docker else media.OCI_LAYER_GZIP
            layer_descriptors.append(store.put_blob(repository, gzipped(plain), media_type=kind))
        else:
            layer_descriptors.append(store.put_blob(repository, plain, media_type=media.OCI_LAYER))
    config = store.put_blob(
        repository,
        image_config(diff_ids, platform=platform, labels=labels),
        media_type=media.DOCKER_CONFIG if docker else media.OCI_CONFIG,
    )
    kind = media.DOCKER_MANIFEST if docker else media.OCI_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": kind,
        "config": config.to_json(),
        "layers": [d.to_json() for d in layer_descriptors],
    }
    return store.put_manifest(repository, json.dumps(document).encode(), kind, tag=tag)


def put_index(
    store: ImageStore,
    repository: str,
    entries: list[tuple[Descriptor, Platform]],
    *,
    tag: str | None = None,
    docker: bool = False,
) -> Descriptor:
    kind = media.DOCKER_MANIFEST_LIST if docker else media.OCI_INDEX
    manifests = []
    for descriptor, platform in entries:
        entry = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size).to_json()
        entry["platform"] = platform.to_json()
        manifests.append(entry)
    document = {"schemaVersion": 2, "mediaType": kind, "manifests": manifests}
    return store.put_manifest(repository, json.dumps(document).encode(), kind, tag=tag)


def multi_platform(store: ImageStore, repository: str, tag: str = "multi") -> Descriptor:
    """An index of a linux/amd64 and a linux/arm64/v8 image (different content each)."""
    amd64 = put_image(store, repository, layers=[{"arch": b"amd64"}])
    arm64 = put_image(
        store,
        repository,
        layers=[{"arch": b"arm64"}],
        platform=Platform("linux", "arm64", "v8"),
    )
    return put_index(
        store,
        repository,
        [(amd64, Platform("linux", "amd64")), (arm64, Platform("linux", "arm64", "v8"))],
        tag=tag,
    )
