"""Single files as OCI artifacts: the manifest's shape, reading back verified, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.unit.catalogue.oci.images import put_image

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.artifact import pull_artifact, push_artifact, read_artifact
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.domain.errors import InvalidTask, NotFound


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "ubuntu-22.04.qcow2"
    path.write_bytes(b"QFI\xfb" + os.urandom(300_000))
    return path


def test_an_artifact_manifest_follows_the_image_spec(tmp_path: Path, disk: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    put = push_artifact(
        store,
        "vm/ubuntu",
        disk,
        artifact_type=media.ARTIFACT_VM_DISK,
        media_type=media.DISK_QCOW2,
        annotations={"org.opencontainers.image.version": "22.04"},
        tag="22.04",
    )
    assert put.artifact_type == media.ARTIFACT_VM_DISK
    document = json.loads(store.manifest("vm/ubuntu", put.digest))
    assert document["mediaType"] == media.OCI_MANIFEST
    assert document["artifactType"] == media.ARTIFACT_VM_DISK
    assert document["config"] == {
        "mediaType": media.EMPTY_MEDIA_TYPE,
        "digest": media.EMPTY_DIGEST,
        "size": 2,
    }
    assert document["layers"] == [
        {
            "mediaType": media.DISK_QCOW2,
            "digest": digest_bytes(disk.read_bytes()),
            "size": disk.stat().st_size,
            "annotations": {media.ANNOTATION_TITLE: "ubuntu-22.04.qcow2"},
        }
    ]
    assert document["annotations"] == {"org.opencontainers.image.version": "22.04"}


def test_an_artifact_reads_back_verified(tmp_path: Path, disk: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    push_artifact(
        store,
        "vm/u",
        disk,
        artifact_type=media.ARTIFACT_VM_DISK,
        media_type=media.DISK_QCOW2,
        title="disk.qcow2",
        tag="1",
    )
    info = read_artifact(store, "vm/u", "1")
    assert (info.artifact_type, info.title) == (media.ARTIFACT_VM_DISK, "disk.qcow2")
    assert info.file.size == disk.stat().st_size
    dest = tmp_path / "restored.qcow2"
    assert pull_artifact(store, "vm/u", info.digest, dest).file == info.file
    assert dest.read_bytes() == disk.read_bytes()


def test_a_sif_keeps_the_config_type_apptainer_expects(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    sif = tmp_path / "tool.sif"
    sif.write_bytes(b"#!/usr/bin/env run-singularity\n" + bytes(1000))
    put = push_artifact(
        store,
        "sif/tool",
        sif,
        artifact_type=media.ARTIFACT_SIF,
        media_type=media.SIF_LAYER,
        config_media_type=media.SIF_CONFIG,
        tag="1",
    )
    document = json.loads(store.manifest("sif/tool", put.digest))
    assert document["config"]["mediaType"] == media.SIF_CONFIG
    assert read_artifact(store, "sif/tool", "1").artifact_type == media.SIF_CONFIG


def test_an_expected_digest_that_does_not_match_stores_nothing(tmp_path: Path, disk: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    with pytest.raises(DigestMismatch):
        push_artifact(
            store,
            "vm/u",
            disk,
            artifact_type=media.ARTIFACT_VM_DISK,
            media_type=media.DISK_QCOW2,
            tag="1",
            expected=digest_bytes(b"other"),
        )
    with pytest.raises(NotFound):
        store.resolve("vm/u", "1")


def test_a_tampered_artifact_is_not_restored(tmp_path: Path, disk: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    push_artifact(
        store,
        "vm/u",
        disk,
        artifact_type=media.ARTIFACT_VM_DISK,
        media_type=media.DISK_QCOW2,
        tag="1",
    )
    blob = read_artifact(store, "vm/u", "1").file.digest
    stored = tmp_path / "store" / "vm" / "u" / "blobs" / "sha256" / blob.removeprefix("sha256:")
    stored.write_bytes(stored.read_bytes()[:-1] + b"!")
    with pytest.raises(DigestMismatch):
        pull_artifact(store, "vm/u", "1", tmp_path / "out.qcow2")
    assert not (tmp_path / "out.qcow2").exists()


def test_images_and_bad_input_are_refused(tmp_path: Path, disk: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    put_image(store, "img", tag="1")
    with pytest.raises(InvalidTask, match="is a container image, not an artifact"):
        read_artifact(store, "img", "1")
    with pytest.raises(InvalidTask, match="needs an artifactType"):
        push_artifact(store, "a", disk, artifact_type="", media_type=media.DISK_RAW)
    with pytest.raises(InvalidTask, match="is not a file"):
        push_artifact(
            store, "a", tmp_path, artifact_type=media.ARTIFACT_VM_DISK, media_type=media.DISK_RAW
        )
