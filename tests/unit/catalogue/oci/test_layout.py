"""The layout store: what it writes on disk, tampering found on read, concurrent writers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.catalogue.oci.images import put_image

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.errors import DigestMismatch, StoreError
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.domain.errors import InvalidTask, NotFound


def test_each_repository_is_an_oci_image_layout(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    put = put_image(store, "env/tool", tag="1.0")
    layout = tmp_path / "env" / "tool"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == media.OCI_INDEX
    assert index["manifests"] == [
        {
            "mediaType": media.OCI_MANIFEST,
            "digest": put.digest,
            "size": put.size,
            "annotations": {media.ANNOTATION_REF_NAME: "1.0"},
        }
    ]
    blob = layout / "blobs" / "sha256" / put.digest.removeprefix("sha256:")
    assert digest_bytes(blob.read_bytes()) == put.digest
    leftovers = [p for p in layout.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    assert store.where == f"oci:{tmp_path}"
    assert store.repositories() == ["env/tool"]


def test_an_untagged_manifest_is_a_blob_reachable_by_digest(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    put = put_image(store, "r")
    assert json.loads((tmp_path / "r" / "index.json").read_text())["manifests"] == []
    resolved = store.resolve("r", put.digest)
    assert (resolved.media_type, resolved.size) == (media.OCI_MANIFEST, put.size)
    assert store.tags("r") == []


def test_a_tampered_manifest_is_detected(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    put = put_image(store, "r", tag="v1")
    path = tmp_path / "r" / "blobs" / "sha256" / put.digest.removeprefix("sha256:")
    path.write_bytes(path.read_bytes().replace(b'"size"', b'"size" '))
    with pytest.raises(DigestMismatch, match=f"manifest oci:{tmp_path}/r@{put.digest}"):
        store.manifest("r", put.digest)


def test_a_tampered_blob_is_detected_when_read_and_never_copied_out(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    blob = store.put_blob("r", b"the original layer")
    path = tmp_path / "r" / "blobs" / "sha256" / blob.digest.removeprefix("sha256:")
    path.write_bytes(b"the modified layer")
    with pytest.raises(DigestMismatch), store.open_blob("r", blob.digest) as stream:
        stream.read()
    with pytest.raises(DigestMismatch):
        store.fetch_blob("r", blob.digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_repository_names_and_a_broken_index(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    with pytest.raises(InvalidTask, match="'blobs' cannot be"):
        store.put_blob("a/blobs/b", b"x")
    with pytest.raises(NotFound, match="repository 'nothing'"):
        store.tags("nothing")
    put_image(store, "r", tag="v1")
    (tmp_path / "r" / "index.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"index\.json is not JSON"):
        store.resolve("r", "v1")


def test_nested_repositories_are_listed(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    for name in ("a", "a/b", "c/d/e"):
        store.put_blob(name, b"x")
    assert store.repositories() == ["a", "a/b", "c/d/e"]


# Each writer is a separate interpreter: flock only orders processes (and open file
# descriptions), which is what two hub processes sharing a data directory are.
_TAG_MANY = """
import sys
from pathlib import Path
from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.layout import LayoutStore
store = LayoutStore(Path(sys.argv[1]))
data = store.manifest("r", store.resolve("r", "base").digest)
for i in range(15):
    store.put_manifest("r", data, media.OCI_MANIFEST, tag=f"w{sys.argv[2]}-{i}")
"""


def test_processes_tagging_at_once_keep_every_tag(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    put_image(store, "r", tag="base")
    workers = [
        subprocess.Popen([sys.executable, "-c", _TAG_MANY, str(tmp_path), str(w)]) for w in range(3)
    ]
    assert [process.wait(60) for process in workers] == [0, 0, 0]
    expected = {"base"} | {f"w{w}-{i}" for w in range(3) for i in range(15)}
    assert set(store.tags("r")) == expected


def test_a_refused_blob_leaves_no_repository_behind(tmp_path: Path) -> None:
    store = LayoutStore(tmp_path)
    for source in (b"content", io.BytesIO(b"content")):
        with pytest.raises(DigestMismatch):
            store.put_blob("never/made", source, expected=digest_bytes(b"other"))
    assert store.repositories() == []
    assert list((tmp_path / ".uploads").iterdir()) == []
