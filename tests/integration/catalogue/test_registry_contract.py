"""The ImageStore contract against Debian's real docker-registry, plus what only a real
registry shows: tampering on its disk, the artifact manifest it accepts, token auth."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.catalogue.registry_server import RegistryServer
from tests.unit.catalogue.oci.images import put_image
from tests.unit.catalogue.oci.store_contract import StoreContract

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.artifact import pull_artifact, push_artifact, read_artifact
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.registry import RegistryStore
from toolferry.catalogue.oci.store import ImageStore
from toolferry.domain.errors import Forbidden


class TestRealRegistry(StoreContract):
    @pytest.fixture
    def store(self, registry: RegistryServer) -> Iterator[ImageStore]:
        with RegistryStore(registry.url, chunk_size=1 << 20) as store:
            yield store


@pytest.fixture
def store(registry: RegistryServer) -> Iterator[RegistryStore]:
    with RegistryStore(registry.url, chunk_size=1 << 20) as store:
        yield store


def _repo() -> str:
    return f"it/r{secrets.token_hex(4)}"


def test_a_vm_disk_sized_artifact_round_trips_verified(
    store: RegistryStore, registry: RegistryServer, tmp_path: Path
) -> None:
    disk = tmp_path / "debian-12.qcow2"
    disk.write_bytes(b"QFI\xfb" + os.urandom(6 * (1 << 20)))  # 6 MiB: six chunks
    repo = _repo()
    put = push_artifact(
        store,
        repo,
        disk,
        artifact_type=media.ARTIFACT_VM_DISK,
        media_type=media.DISK_QCOW2,
        annotations={"org.opencontainers.image.version": "12"},
        tag="12",
    )
    # distribution 2.8 keeps the artifact manifest byte for byte, artifactType included
    stored = json.loads(registry.blob_file(put.digest).read_bytes())
    assert stored["artifactType"] == media.ARTIFACT_VM_DISK
    assert stored["config"]["mediaType"] == media.EMPTY_MEDIA_TYPE
    with RegistryStore(registry.url) as fresh:
        info = read_artifact(fresh, repo, "12")
        assert (info.artifact_type, info.title) == (media.ARTIFACT_VM_DISK, "debian-12.qcow2")
        assert info.descriptor.artifact_type == media.ARTIFACT_VM_DISK
        pull_artifact(fresh, repo, put.digest, tmp_path / "back.qcow2")
    assert (tmp_path / "back.qcow2").read_bytes() == disk.read_bytes()


def test_tampering_on_the_registry_disk_is_detected(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = _repo()
    with RegistryStore(registry.url) as store:
        put = put_image(store, repo, tag="v1", layers=[{"evidence": b"original"}])
        layer = json.loads(store.manifest(repo, put.digest))["layers"][0]["digest"]
    manifest_file = registry.blob_file(put.digest)
    manifest_file.write_bytes(manifest_file.read_bytes().replace(b'"size":', b'"size": '))
    registry.blob_file(layer).write_bytes(b"x" * len(registry.blob_file(layer).read_bytes()))
    with RegistryStore(registry.url) as fresh:  # nothing cached
        with pytest.raises(DigestMismatch, match=f"manifest {registry.host}/{repo}:v1"):
            fresh.resolve(repo, "v1")
        with pytest.raises(DigestMismatch, match=put.digest):
            fresh.manifest(repo, put.digest)
        with pytest.raises(DigestMismatch, match=layer):
            fresh.fetch_blob(repo, layer, tmp_path / "layer")
    assert not (tmp_path / "layer").exists()


def test_a_wrong_digest_is_refused_by_the_registry_too(store: RegistryStore) -> None:
    # Our own check comes first (nothing is sent); the registry's DIGEST_INVALID is the net.
    with pytest.raises(DigestMismatch):
        store.put_blob(_repo(), b"content", expected=digest_bytes(b"other"))


def test_the_token_flow_against_a_real_registry(token_registry: RegistryServer) -> None:
    repo = _repo()
    with RegistryStore(token_registry.url, username="alice", password="wonderland") as alice:
        alice.check()
        put = put_image(alice, repo, tag="v1")
        assert alice.resolve(repo, "v1").digest == put.digest
    with RegistryStore(token_registry.url) as anonymous:
        assert anonymous.resolve(repo, "v1").digest == put.digest  # pull is granted to all
        assert anonymous.tags(repo) == ["v1"]
        with pytest.raises(Forbidden, match=f"registry {token_registry.url} refused"):
            anonymous.put_blob(repo, b"not allowed")
    with (
        RegistryStore(token_registry.url, username="alice", password="wrong") as wrong,
        pytest.raises(Forbidden, match=r"token service .* refused user 'alice'"),
    ):
        wrong.resolve(repo, "v1")
