"""OCI and Docker archives: what they hold, and importing them back, verified."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from tests.unit.catalogue.oci.images import (
    gzipped,
    image_config,
    layer_tar,
    multi_platform,
    put_image,
)

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.archive import export_docker_archive, export_oci_archive
from toolferry.catalogue.oci.archive_import import import_docker_archive, import_oci_archive
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.image import read_image
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.domain.errors import InvalidTask, NotFound


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_an_oci_archive_is_an_image_layout(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    index = multi_platform(store, "src")
    dest = tmp_path / "multi.oci.tar"
    top = export_oci_archive(store, "src", "multi", dest, tag="2.0")
    assert top.digest == index.digest
    files = _members(dest)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    entry = json.loads(files["index.json"])["manifests"][0]
    assert entry["digest"] == index.digest
    assert entry["annotations"] == {media.ANNOTATION_REF_NAME: "2.0"}
    for name, data in files.items():
        if name.startswith("blobs/"):
            assert digest_bytes(data) == "sha256:" + name.rsplit("/", 1)[1]
    # index + 2 manifests + 2 configs + 2 layers
    assert len([n for n in files if n.startswith("blobs/")]) == 7


def test_an_oci_archive_imports_back_into_any_store(tmp_path: Path) -> None:
    source = LayoutStore(tmp_path / "a")
    index = multi_platform(source, "src")
    archive = tmp_path / "x.tar"
    export_oci_archive(source, "src", "multi", archive, tag="2.0")
    target = LayoutStore(tmp_path / "b")
    assert import_oci_archive(archive, target, "dst", tag="t").digest == index.digest
    assert read_image(target, "dst", "t", "linux/arm64").architecture == "arm64"
    assert import_oci_archive(archive, target, "dst", name="2.0").digest == index.digest
    with pytest.raises(InvalidTask, match="0 matching entries"):
        import_oci_archive(archive, target, "dst", name="other")


def test_a_docker_archive_has_what_docker_load_reads(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path / "store")
    put_image(store, "src", tag="1", layers=[{"a": b"1"}, {"b": b"2"}])
    dest = tmp_path / "img.docker.tar"
    info = export_docker_archive(store, "src", "1", dest, repo_tags=["toolferry/x:1", "x:2"])
    files = _members(dest)
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {
            "Config": "blobs/sha256/" + info.config_descriptor.digest.removeprefix("sha256:"),
            "RepoTags": ["toolferry/x:1", "x:2"],
            "Layers": ["blobs/sha256/" + d.digest.removeprefix("sha256:") for d in info.layers],
        }
    ]
    top_layer = info.layers[-1].digest.removeprefix("sha256:")
    assert json.loads(files["repositories"]) == {
        "toolferry/x": {"1": top_layer},
        "x": {"2": top_layer},
    }
    assert json.loads(files[manifest[0]["Config"]])["os"] == "linux"
    with pytest.raises(InvalidTask, match="must be name:tag"):
        export_docker_archive(store, "src", "1", dest, repo_tags=["x"])


def test_a_docker_archive_imports_as_an_oci_image(tmp_path: Path) -> None:
    source = LayoutStore(tmp_path / "a")
    put_image(source, "src", tag="1", labels={"k": "v"}, layers=[{"a": b"1"}, {"b": b"2"}])
    archive = tmp_path / "img.tar"
    export_docker_archive(source, "src", "1", archive, repo_tags=["x:1"])
    target = LayoutStore(tmp_path / "b")
    put = import_docker_archive(archive, target, "imported", tag="1")
    info = read_image(target, "imported", "1")
    assert info.digest == put.digest
    assert info.media_type == media.OCI_MANIFEST
    assert info.labels == {"k": "v"}
    assert [d.media_type for d in info.layers] == [media.OCI_LAYER_GZIP] * 2
    assert info.config_descriptor.digest == read_image(source, "src", "1").config_descriptor.digest


def _docker_save(path: Path, layers: list[bytes], diff_ids: list[str], tags: list[str]) -> None:
    """What ``docker save`` writes (the pre-25 layout: <id>/layer.tar, uncompressed)."""
    config = image_config(diff_ids)
    config_name = digest_bytes(config).removeprefix("sha256:") + ".json"
    names = [f"l{i}/layer.tar" for i in range(len(layers))]
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": names}]
    with tarfile.open(path, "w") as tar:
        for name, data in [(config_name, config), *zip(names, layers, strict=True)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("manifest.json")
        data = json.dumps(manifest).encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_uncompressed_docker_save_layers_are_checked_against_diff_ids(tmp_path: Path) -> None:
    layer = layer_tar({"bin/tool": b"#!/bin/sh\n"})
    good = tmp_path / "good.tar"
    _docker_save(good, [layer], [digest_bytes(layer)], ["tool:1"])
    store = LayoutStore(tmp_path / "store")
    import_docker_archive(good, store, "tool", tag="1")
    assert read_image(store, "tool", "1").layers[0].media_type == media.OCI_LAYER
    bad = tmp_path / "bad.tar"
    _docker_save(bad, [layer], [digest_bytes(b"other")], ["tool:2"])
    with pytest.raises(DigestMismatch):
        import_docker_archive(bad, store, "tool", tag="2")
    with pytest.raises(NotFound):
        store.resolve("tool", "2")


def test_a_corrupt_gzip_layer_is_refused_before_anything_is_tagged(tmp_path: Path) -> None:
    layer = layer_tar({"x": b"1"})
    archive = tmp_path / "bad.tar"
    _docker_save(archive, [gzipped(layer_tar({"x": b"2"}))], [digest_bytes(layer)], ["t:1"])
    store = LayoutStore(tmp_path / "store")
    with pytest.raises(DigestMismatch, match="uncompressed"):
        import_docker_archive(archive, store, "t", tag="1")
    with pytest.raises(NotFound):
        store.resolve("t", "1")


def test_several_images_need_choosing(tmp_path: Path) -> None:
    layer = layer_tar({"x": b"1"})
    archive = tmp_path / "two.tar"
    _docker_save(archive, [layer], [digest_bytes(layer)], ["a:1"])
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest.append({**manifest[0], "RepoTags": ["b:1"]})
    rewritten = tmp_path / "rewritten.tar"
    with tarfile.open(archive) as src, tarfile.open(rewritten, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.json":
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    store = LayoutStore(tmp_path / "store")
    with pytest.raises(InvalidTask, match=r"holds 2 images \(a:1, b:1\): say which"):
        import_docker_archive(rewritten, store, "r")
    assert import_docker_archive(rewritten, store, "r", image="b:1", tag="b").size > 0
    with pytest.raises(InvalidTask, match="no image tagged 'c:1'"):
        import_docker_archive(rewritten, store, "r", image="c:1")


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tar at all" * 100)
    store = LayoutStore(tmp_path / "store")
    with pytest.raises(InvalidTask, match="is not a tar archive"):
        import_docker_archive(junk, store, "r")
    with pytest.raises(InvalidTask, match="not a readable tar archive"):
        import_oci_archive(junk, store, "r")
