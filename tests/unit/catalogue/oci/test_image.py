"""read_image: metadata from config and manifest, platforms chosen from an index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.unit.catalogue.oci.images import multi_platform, put_image

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.artifact import push_artifact
from toolferry.catalogue.oci.errors import PlatformNotFound
from toolferry.catalogue.oci.image import read_image
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.store import Platform
from toolferry.domain.errors import InvalidTask


def test_an_image_reads_with_its_labels_platform_size_and_creation(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    labels = {
        "org.opencontainers.image.title": "samtools",
        "org.opencontainers.image.version": "1.19",
        "toolferry.interface": '{"inputs": []}',
    }
    put = put_image(
        store, "bio/samtools", tag="1.19", labels=labels, layers=[{"a": b"1"}, {"b": b"22"}]
    )
    info = read_image(store, "bio/samtools", "1.19")
    assert info.digest == put.digest
    assert info.media_type == media.OCI_MANIFEST
    assert info.index is None
    assert info.labels == labels
    assert (info.os, info.architecture, info.variant) == ("linux", "amd64", None)
    assert str(info.platform) == "linux/amd64"
    assert info.created == datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert len(info.layers) == 2
    assert info.size == info.config_descriptor.size + sum(layer.size for layer in info.layers)
    assert info.config["rootfs"]["type"] == "layers"


def test_docker_manifests_read_the_same(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    put_image(store, "r", tag="d", docker=True, labels={"a": "b"})
    info = read_image(store, "r", "d")
    assert info.media_type == media.DOCKER_MANIFEST
    assert info.labels == {"a": "b"}


def test_an_index_is_followed_to_the_wanted_platform(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    index = multi_platform(store, "multi")
    amd64 = read_image(store, "multi", "multi")
    assert amd64.index is not None and amd64.index.digest == index.digest
    assert amd64.architecture == "amd64"
    assert amd64.descriptor.platform == Platform("linux", "amd64")
    arm64 = read_image(store, "multi", index.digest, platform="linux/arm64")
    assert (arm64.architecture, arm64.variant) == ("arm64", "v8")
    assert arm64.digest != amd64.digest
    assert read_image(store, "multi", "multi", "linux/arm64/v8").digest == arm64.digest


def test_a_missing_platform_lists_the_platforms_there_are(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    multi_platform(store, "multi")
    with pytest.raises(PlatformNotFound, match="linux/amd64, linux/arm64/v8") as caught:
        read_image(store, "multi", "multi", platform="linux/s390x")
    assert caught.value.available == ["linux/amd64", "linux/arm64/v8"]
    with pytest.raises(PlatformNotFound):
        read_image(store, "multi", "multi", platform="linux/arm64/v7")
    with pytest.raises(InvalidTask, match="os/architecture"):
        read_image(store, "multi", "multi", platform="amd64")


def test_an_artifact_is_not_an_image(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + bytes(100))
    push_artifact(
        store,
        "vm",
        disk,
        artifact_type=media.ARTIFACT_VM_DISK,
        media_type=media.DISK_QCOW2,
        tag="1",
    )
    with pytest.raises(InvalidTask, match=f"is an OCI artifact \\({media.ARTIFACT_VM_DISK}\\)"):
        read_image(store, "vm", "1")
