"""Copying between stores: images, indexes with every platform, artifacts; what is skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.unit.catalogue.oci.fake_registry import BASE, FakeRegistry
from tests.unit.catalogue.oci.images import multi_platform, put_image, put_index

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.copy import copy_image
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.image import read_image
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.registry import RegistryStore
from toolferry.catalogue.oci.store import Platform
from toolferry.domain.errors import NotFound


def test_an_image_copies_between_layouts_with_its_digest(tmp_path: Path) -> None:
    source, target = LayoutStore(tmp_path / "a"), LayoutStore(tmp_path / "b")
    put = put_image(source, "src", tag="1", layers=[{"a": b"1"}, {"b": b"2"}])
    copied = copy_image(source, "src", "1", target, "dst", tag="one")
    assert copied.descriptor.digest == put.digest
    assert (copied.blobs_sent, copied.blobs_present) == (3, 0)
    assert target.resolve("dst", "one").digest == put.digest
    assert read_image(target, "dst", "one").layers == read_image(source, "src", "1").layers
    again = copy_image(source, "src", "1", target, "dst", tag="two")
    assert (again.blobs_sent, again.blobs_present, again.bytes_sent) == (0, 3, 0)
    assert target.tags("dst") == ["one", "two"]


def test_an_index_copies_with_every_platform(tmp_path: Path) -> None:
    source, target = LayoutStore(tmp_path / "a"), LayoutStore(tmp_path / "b")
    index = multi_platform(source, "src")
    copied = copy_image(source, "src", "multi", target, "dst", tag="multi")
    assert copied.descriptor.digest == index.digest
    for platform in ("linux/amd64", "linux/arm64"):
        assert read_image(target, "dst", "multi", platform).digest == (
            read_image(source, "src", "multi", platform).digest
        )


def test_blobs_are_mounted_within_one_store(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    put_image(store, "src", tag="1")
    copied = copy_image(store, "src", "1", store, "dst")
    assert (copied.blobs_mounted, copied.blobs_sent) == (2, 0)
    layer = read_image(store, "dst", copied.descriptor.digest).layers[0].digest
    hexpart = layer.removeprefix("sha256:")
    a = tmp_path / "src" / "blobs" / "sha256" / hexpart
    b = tmp_path / "dst" / "blobs" / "sha256" / hexpart
    assert a.stat().st_ino == b.stat().st_ino  # hard-linked, not copied


def test_a_layout_image_copies_to_a_registry_and_back(tmp_path: Path) -> None:
    layout = LayoutStore(tmp_path)
    put = multi_platform(layout, "src")
    fake = FakeRegistry(auth="bearer")
    with RegistryStore(
        BASE, username="alice", password="secret", transport=fake.transport()
    ) as registry:
        copy_image(layout, "src", "multi", registry, "team/tool", tag="2")
        assert registry.resolve("team/tool", "2").digest == put.digest
        back = copy_image(registry, "team/tool", "2", layout, "back", tag="2")
    assert back.descriptor.digest == put.digest


def test_to_oci_rewrites_docker_manifests_only(tmp_path: Path) -> None:
    source, target = LayoutStore(tmp_path / "a"), LayoutStore(tmp_path / "b")
    put = put_image(source, "src", tag="d", docker=True)
    copied = copy_image(source, "src", "d", target, "dst", tag="d", to_oci=True)
    assert copied.descriptor.digest != put.digest
    assert copied.descriptor.media_type == media.OCI_MANIFEST
    document = json.loads(target.manifest("dst", copied.descriptor.digest))
    assert document["mediaType"] == media.OCI_MANIFEST
    assert document["config"]["mediaType"] == media.OCI_CONFIG
    assert [layer["mediaType"] for layer in document["layers"]] == [media.OCI_LAYER_GZIP]
    # The blobs are the same bytes: only the manifest changed.
    assert copied.bytes_sent == read_image(source, "src", "d").size
    assert read_image(target, "dst", "d").layers[0].digest == (
        read_image(source, "src", "d").layers[0].digest
    )
    oci = put_image(source, "src", tag="o")
    assert (
        copy_image(source, "src", "o", target, "dst", to_oci=True).descriptor.digest == oci.digest
    )


def test_to_oci_rewrites_the_children_of_a_docker_manifest_list(tmp_path: Path) -> None:

    source, target = LayoutStore(tmp_path / "a"), LayoutStore(tmp_path / "b")
    child = put_image(source, "src", docker=True)
    put_index(source, "src", [(child, Platform("linux", "amd64"))], tag="list", docker=True)
    copied = copy_image(source, "src", "list", target, "dst", tag="list", to_oci=True)
    index = json.loads(target.manifest("dst", copied.descriptor.digest))
    assert index["mediaType"] == media.OCI_INDEX
    entry = index["manifests"][0]
    assert entry["mediaType"] == media.OCI_MANIFEST
    assert entry["digest"] != child.digest
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert read_image(target, "dst", "list").media_type == media.OCI_MANIFEST


def test_a_tampered_source_blob_stops_the_copy_before_the_manifest(tmp_path: Path) -> None:
    source, target = LayoutStore(tmp_path / "a"), LayoutStore(tmp_path / "b")
    put_image(source, "src", tag="1")
    layer = read_image(source, "src", "1").layers[0].digest
    path = tmp_path / "a" / "src" / "blobs" / "sha256" / layer.removeprefix("sha256:")
    path.write_bytes(b"not the layer")
    with pytest.raises(DigestMismatch, match=layer):
        copy_image(source, "src", "1", target, "dst", tag="1")
    assert not target.has_blob("dst", layer)
    with pytest.raises(NotFound):
        target.resolve("dst", "1")
