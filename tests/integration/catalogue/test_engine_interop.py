"""The OCI layer with the tools nobody here wrote: a real Docker Engine, skopeo and Debian's
docker-registry. Images are built locally from the static-busybox test image."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import services
from tests.integration.catalogue.registry_server import RegistryServer

from toolferry.catalogue.oci import media
from toolferry.catalogue.oci.archive import export_docker_archive, export_oci_archive
from toolferry.catalogue.oci.archive_import import import_docker_archive
from toolferry.catalogue.oci.copy import copy_image
from toolferry.catalogue.oci.image import read_image
from toolferry.catalogue.oci.layout import LayoutStore
from toolferry.catalogue.oci.registry import RegistryStore

LABELS = {
    "org.opencontainers.image.title": "word counter",
    "org.opencontainers.image.version": "1.0",
    "toolferry.interface": '{"inputs":[{"name":"text"}]}',
}


def _docker(*args: str) -> str:
    proc = services.docker(*args)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout.decode()


def _skopeo(skopeo: str, *args: str) -> str:
    proc = subprocess.run([skopeo, *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def labelled_image(busybox_image: str) -> Iterator[str]:
    """A local image with OCI and toolferry labels, built from the busybox test image."""
    tag = f"toolferry-test/oci-labelled:{secrets.token_hex(3)}"
    labels = "".join(f"LABEL {k}={json.dumps(v)}\n" for k, v in LABELS.items())
    dockerfile = f"FROM {busybox_image}\n{labels}RUN echo built > /built.txt\n"
    built = services.docker("build", "-t", tag, "-", stdin=dockerfile.encode())
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    yield tag
    services.docker("image", "rm", "-f", tag)


@pytest.fixture(scope="module")
def pushed(labelled_image: str, registry: RegistryServer) -> Iterator[tuple[str, str, str]]:
    """(repository, tag, digest) of ``labelled_image`` pushed with ``docker push``."""
    repository, tag = "it/labelled", "1"
    remote = f"{registry.host}/{repository}:{tag}"
    _docker("tag", labelled_image, remote)
    output = _docker("push", remote)
    match = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
    assert match, output
    yield repository, tag, match[1]
    services.docker("image", "rm", "-f", remote)


def test_an_image_docker_pushed_reads_with_its_labels(
    registry: RegistryServer, pushed: tuple[str, str, str]
) -> None:
    repository, tag, digest = pushed
    with RegistryStore(registry.url) as store:
        info = read_image(store, repository, tag)
    assert info.digest == digest  # the digest docker push reported: the same pin
    assert info.labels == LABELS
    engine_arch = _docker("version", "--format", "{{.Server.Arch}}").strip()
    assert (info.os, info.architecture) == ("linux", engine_arch)
    assert info.created is not None
    assert len(info.layers) == 2  # busybox + the RUN layer
    assert info.size == info.config_descriptor.size + sum(d.size for d in info.layers)


def test_registry_to_layout_to_registry_then_docker_runs_it(
    registry: RegistryServer, pushed: tuple[str, str, str], skopeo: str, tmp_path: Path
) -> None:
    repository, tag, digest = pushed
    layout = LayoutStore(tmp_path / "layout")
    with RegistryStore(registry.url) as store:
        kept = copy_image(store, repository, tag, layout, "env/wc", tag="1.0")
        assert kept.descriptor.digest == digest
        as_oci = copy_image(store, repository, tag, layout, "env/wc-oci", tag="1.0", to_oci=True)
        # skopeo reads the layout directory as it is (OCI-typed manifests by tag)
        inspected = json.loads(_skopeo(skopeo, "inspect", f"oci:{tmp_path}/layout/env/wc-oci:1.0"))
        assert inspected["Digest"] == as_oci.descriptor.digest
        assert inspected["Labels"] == LABELS
        back = copy_image(layout, "env/wc", "1.0", store, "it/back", tag="2")
        assert back.descriptor.digest == digest
    remote = f"{registry.host}/it/back:2"
    try:
        _docker("pull", remote)
        assert _docker("run", "--rm", "--network", "none", remote, "cat", "/built.txt") == "built\n"
    finally:
        services.docker("image", "rm", "-f", remote)


def test_a_docker_archive_export_loads_and_runs(
    registry: RegistryServer, pushed: tuple[str, str, str], tmp_path: Path
) -> None:
    repository, tag, _ = pushed
    name = f"toolferry-test/exported:{secrets.token_hex(3)}"
    archive = tmp_path / "wc.docker.tar"
    with RegistryStore(registry.url) as store:
        export_docker_archive(store, repository, tag, archive, repo_tags=[name])
    try:
        assert f"Loaded image: {name}" in _docker("load", "-i", str(archive))
        assert _docker("run", "--rm", "--network", "none", name, "true") == ""
        labels = json.loads(
            _docker("image", "inspect", "--format", "{{json .Config.Labels}}", name)
        )
        assert labels == LABELS
    finally:
        services.docker("image", "rm", "-f", name)


def test_an_oci_archive_export_is_what_skopeo_reads(
    registry: RegistryServer, pushed: tuple[str, str, str], skopeo: str, tmp_path: Path
) -> None:
    repository, tag, digest = pushed
    archive = tmp_path / "wc.oci.tar"
    converted = tmp_path / "wc-converted.oci.tar"
    with RegistryStore(registry.url) as store:
        as_is = export_oci_archive(store, repository, tag, archive)
        oci = export_oci_archive(store, repository, tag, converted, tag="1.0", to_oci=True)
    assert as_is.digest == digest
    inspected = json.loads(_skopeo(skopeo, "inspect", f"oci-archive:{archive}"))
    assert (inspected["Digest"], inspected["Labels"]) == (digest, LABELS)
    inspected = json.loads(_skopeo(skopeo, "inspect", f"oci-archive:{converted}:1.0"))
    assert inspected["Digest"] == oci.digest
    raw = json.loads(_skopeo(skopeo, "inspect", "--raw", f"oci-archive:{converted}:1.0"))
    assert raw["mediaType"] == media.OCI_MANIFEST


def test_an_engine_image_enters_the_layout_store_without_a_registry(
    labelled_image: str, tmp_path: Path
) -> None:
    saved = tmp_path / "saved.tar"
    _docker("save", "-o", str(saved), labelled_image)
    layout = LayoutStore(tmp_path / "layout")
    put = import_docker_archive(saved, layout, "env/local", tag="1")
    info = read_image(layout, "env/local", "1")
    assert info.digest == put.digest
    assert info.labels == LABELS
    engine_id = _docker("image", "inspect", "--format", "{{.Id}}", labelled_image).strip()
    assert info.config_descriptor.digest == engine_id  # the engine's image id is the config's
    name = f"toolferry-test/roundtrip:{secrets.token_hex(3)}"
    export_docker_archive(layout, "env/local", "1", tmp_path / "out.tar", repo_tags=[name])
    try:
        _docker("load", "-i", str(tmp_path / "out.tar"))
        assert _docker("run", "--rm", "--network", "none", name, "cat", "/built.txt") == "built\n"
    finally:
        services.docker("image", "rm", "-f", name)


def test_skopeo_copies_into_the_registry_then_reads_complete(
    registry: RegistryServer, labelled_image: str, skopeo: str, tmp_path: Path
) -> None:
    saved = tmp_path / "saved.tar"
    _docker("save", "-o", str(saved), labelled_image)
    _skopeo(
        skopeo,
        "copy",
        "--dest-tls-verify=false",
        f"docker-archive:{saved}",
        f"docker://{registry.host}/it/skopeo:1",
    )
    with RegistryStore(registry.url) as store:
        info = read_image(store, "it/skopeo", "1")
        assert info.labels == LABELS
        assert len(info.layers) == 2
        for layer in info.layers:
            assert store.has_blob("it/skopeo", layer.digest)
        assert info.media_type == media.DOCKER_MANIFEST  # skopeo kept Docker's format
        layout = LayoutStore(tmp_path / "layout")
        copy_image(store, "it/skopeo", "1", layout, "it/skopeo", tag="1", to_oci=True)
    # and skopeo reads our layout (OCI-typed, as it needs to find a tag) back out
    _skopeo(
        skopeo,
        "copy",
        "--dest-tls-verify=false",
        f"oci:{tmp_path}/layout/it/skopeo:1",
        f"docker://{registry.host}/it/skopeo-again:1",
    )
    with RegistryStore(registry.url) as store:
        assert read_image(store, "it/skopeo-again", "1").labels == LABELS
