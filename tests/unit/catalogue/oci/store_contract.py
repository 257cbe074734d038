"""The behaviour every ImageStore shares: one suite, run against each implementation.

A test module subclasses :class:`StoreContract` and provides a ``store`` fixture; each test
gets a fresh repository name from ``repo``. Run here against the layout store and an in-memory
registry, and in tests/integration/catalogue against Debian's real docker-registry.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path

import pytest
from tests.unit.catalogue.oci.images import put_image

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.store import ImageStore
from toolferry.domain.errors import InvalidTask, NotFound


class StoreContract:
    """Subclasses define a ``store`` fixture returning the ImageStore under test."""

    big_size = 3 * (1 << 20) + 17  # bigger than the chunk size the fixtures set (1 MiB)

    @pytest.fixture
    def repo(self) -> str:
        return f"contract/r{secrets.token_hex(4)}"

    def test_a_blob_put_as_bytes_reads_back_verified(
        self, store: ImageStore, repo: str, tmp_path: Path
    ) -> None:
        put = store.put_blob(repo, b"hello blob", media_type="text/plain")
        assert put.digest == digest_bytes(b"hello blob")
        assert (put.size, put.media_type) == (10, "text/plain")
        assert store.has_blob(repo, put.digest)
        with store.open_blob(repo, put.digest) as stream:
            assert stream.read() == b"hello blob"
        assert store.fetch_blob(repo, put.digest, tmp_path / "out") == 10
        assert (tmp_path / "out").read_bytes() == b"hello blob"

    def test_file_and_stream_sources_give_the_same_blob(
        self, store: ImageStore, repo: str, tmp_path: Path
    ) -> None:
        data = os.urandom(self.big_size)
        source = tmp_path / "disk.img"
        source.write_bytes(data)
        from_file = store.put_blob(repo, source)
        from_stream = store.put_blob(f"{repo}-s", io.BytesIO(data))
        assert from_file.digest == from_stream.digest == digest_bytes(data)
        assert from_file.size == from_stream.size == len(data)
        store.fetch_blob(f"{repo}-s", from_stream.digest, tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == data

    def test_a_blob_that_does_not_match_the_expected_digest_is_not_stored(
        self, store: ImageStore, repo: str, tmp_path: Path
    ) -> None:
        wrong = digest_bytes(b"something else")
        source = tmp_path / "f"
        source.write_bytes(b"actual content")
        for content in (b"actual content", source, io.BytesIO(b"actual content")):
            with pytest.raises(DigestMismatch, match=wrong):
                store.put_blob(repo, content, expected=wrong)
        assert not store.has_blob(repo, wrong)
        assert not store.has_blob(repo, digest_bytes(b"actual content"))

    def test_a_tagged_manifest_resolves_by_tag_and_digest(
        self, store: ImageStore, repo: str
    ) -> None:
        put = put_image(store, repo, tag="v1")
        by_tag = store.resolve(repo, "v1")
        assert (by_tag.digest, by_tag.media_type, by_tag.size) == (
            put.digest,
            media.OCI_MANIFEST,
            put.size,
        )
        assert store.resolve(repo, put.digest).digest == put.digest
        data = store.manifest(repo, put.digest)
        assert digest_bytes(data) == put.digest
        assert json.loads(data)["mediaType"] == media.OCI_MANIFEST
        assert store.tags(repo) == ["v1"]
        assert repo in store.repositories()

    def test_a_second_tag_and_a_moved_tag(self, store: ImageStore, repo: str) -> None:
        first = put_image(store, repo, tag="latest", layers=[{"a": b"1"}])
        data = store.manifest(repo, first.digest)
        store.put_manifest(repo, data, media.OCI_MANIFEST, tag="stable")
        assert store.tags(repo) == ["latest", "stable"]
        second = put_image(store, repo, tag="latest", layers=[{"a": b"2"}])
        assert store.resolve(repo, "latest").digest == second.digest
        assert store.resolve(repo, "stable").digest == first.digest

    def test_a_manifest_naming_missing_blobs_is_refused(self, store: ImageStore, repo: str) -> None:
        config = store.put_blob(repo, b"{}", media_type=media.OCI_CONFIG)
        ghost = digest_bytes(b"never uploaded")
        document = {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [{"mediaType": media.OCI_LAYER, "digest": ghost, "size": 14}],
        }
        with pytest.raises(InvalidTask) as caught:
            store.put_manifest(repo, json.dumps(document).encode(), media.OCI_MANIFEST, tag="x")
        assert caught.value.field == "manifest"
        with pytest.raises(NotFound):
            store.resolve(repo, "x")

    def test_missing_things_are_not_found_naming_them(
        self, store: ImageStore, repo: str, tmp_path: Path
    ) -> None:
        put_image(store, repo, tag="v1")
        ghost = digest_bytes(b"ghost")
        with pytest.raises(NotFound, match="nope"):
            store.resolve(repo, "nope")
        with pytest.raises(NotFound, match=ghost):
            store.manifest(repo, ghost)
        with pytest.raises(NotFound, match=ghost), store.open_blob(repo, ghost) as stream:
            stream.read()
        with pytest.raises(NotFound, match=ghost):
            store.fetch_blob(repo, ghost, tmp_path / "x")
        assert not (tmp_path / "x").exists()
        assert not store.has_blob(repo, ghost)

    def test_bad_names_are_refused_before_anything_is_sent(
        self, store: ImageStore, repo: str
    ) -> None:
        with pytest.raises(InvalidTask, match="lowercase"):
            store.resolve("Upper/Case", "v1")
        with pytest.raises(InvalidTask) as caught:
            store.resolve(repo, "-bad-tag")
        assert caught.value.field == "reference"
        with pytest.raises(InvalidTask, match="sha256"):
            store.manifest(repo, "sha256:abc")
        with pytest.raises(InvalidTask, match="not an image manifest"):
            store.put_manifest(repo, b'{"schemaVersion": 2}', "application/json")

    def test_deleting_a_manifest_removes_it_and_its_tags(
        self, store: ImageStore, repo: str
    ) -> None:
        keep = put_image(store, repo, tag="keep", layers=[{"k": b"1"}])
        gone = put_image(store, repo, tag="gone", layers=[{"g": b"1"}])
        store.delete_manifest(repo, gone.digest)
        with pytest.raises(NotFound):
            store.resolve(repo, gone.digest)
        with pytest.raises(NotFound):
            store.resolve(repo, "gone")
        assert store.tags(repo) == ["keep"]
        assert store.resolve(repo, "keep").digest == keep.digest

    def test_a_blob_mounted_from_another_repository(self, store: ImageStore, repo: str) -> None:
        blob = store.put_blob(repo, b"shared layer")
        assert store.mount_blob(f"{repo}-other", blob.digest, repo)
        assert store.has_blob(f"{repo}-other", blob.digest)
        ghost = digest_bytes(b"not there")
        assert not store.mount_blob(f"{repo}-other", ghost, repo)
        assert not store.has_blob(f"{repo}-other", ghost)
