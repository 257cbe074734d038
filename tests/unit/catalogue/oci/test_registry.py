"""RegistryStore against an in-memory registry: authentication, uploads, errors, tampering."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from tests.unit.catalogue.oci.fake_registry import BASE, FakeRegistry
from tests.unit.catalogue.oci.images import put_image

from toolferry.catalogue.oci.auth import parse_challenge
from toolferry.catalogue.oci.digests import digest_bytes
from toolferry.catalogue.oci.errors import DigestMismatch, RegistryUnavailable, StoreError
from toolferry.catalogue.oci.registry import RegistryStore, registry_url
from toolferry.domain.errors import Conflict, Forbidden, InvalidTask, NotFound


def _store(fake: FakeRegistry, **options: object) -> RegistryStore:
    return RegistryStore(BASE, transport=fake.transport(), **options)  # type: ignore[arg-type]


def _authorizations(fake: FakeRegistry) -> list[str]:
    return [headers.get("authorization", "-").split(" ")[0] for _, _, headers in fake.log]


def test_bearer_flow_fetches_a_token_per_repository_and_access() -> None:
    fake = FakeRegistry(auth="bearer")
    with _store(fake, username="alice", password="secret") as store:
        put_image(store, "team/tool", tag="v1")
        assert store.resolve("team/tool", "v1").size > 0
    scopes = [parse_qs(url.query.decode())["scope"] for url in fake.urls if url.path == "/token"]
    # Pull for the first HEAD, pull and push once the first upload is challenged; that token
    # serves every later request (pulls included).
    assert scopes == [["repository:team/tool:pull"], ["repository:team/tool:pull,push"]]
    assert _authorizations(fake)[0] == "-"  # anonymous first: the challenge says how
    token_calls = [h for _, p, h in fake.log if p == "/token"]
    assert all(h["authorization"].startswith("Basic ") for h in token_calls)


def test_anonymous_bearer_may_pull_but_not_push() -> None:
    fake = FakeRegistry(auth="bearer")
    with _store(fake, username="alice", password="secret") as owner:
        put_image(owner, "public/tool", tag="v1")
    with _store(fake) as anonymous:
        assert anonymous.tags("public/tool") == ["v1"]
        with pytest.raises(Forbidden, match=r"refused an upload to fake.registry/public/tool"):
            anonymous.put_blob("public/tool", b"nope")


def test_a_wrong_password_is_forbidden_by_the_token_service() -> None:
    fake = FakeRegistry(auth="bearer")
    with (
        _store(fake, username="alice", password="wrong") as store,
        pytest.raises(Forbidden, match=r"token service .* refused user 'alice'.*bad credentials"),
    ):
        store.check()


def test_basic_auth_is_sent_after_the_challenge() -> None:
    fake = FakeRegistry(auth="basic")
    with _store(fake, username="alice", password="secret") as store:
        store.check()
        store.put_blob("r", b"x")
    assert _authorizations(fake)[:3] == ["-", "Basic", "Basic"]
    with (
        _store(fake) as anonymous,
        pytest.raises(
            Forbidden, match=r"anonymously: UNAUTHORIZED.*wants a user name and password"
        ),
    ):
        anonymous.tags("r")
    with (
        _store(fake, username="alice", password="bad") as wrong,
        pytest.raises(Forbidden, match=r"refused the API base /v2/ as user 'alice': UNAUTHORIZED"),
    ):
        wrong.check()


def test_a_given_token_is_sent_from_the_first_request() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") == "Bearer good":
            return httpx.Response(200, json={})
        return httpx.Response(401, json={"errors": [{"code": "DENIED", "message": "expired"}]})

    with RegistryStore(BASE, token="good", transport=httpx.MockTransport(handler)) as store:
        store.check()
    with (
        RegistryStore(BASE, token="stale", transport=httpx.MockTransport(handler)) as store,
        pytest.raises(Forbidden, match=r"refused the API base /v2/ with the given token: DENIED"),
    ):
        store.check()
    assert seen == ["Bearer good", "Bearer stale"]


def test_half_credentials_are_refused() -> None:
    with pytest.raises(InvalidTask, match="both a user name and a password"):
        RegistryStore(BASE, username="alice")


def test_big_files_go_in_chunks_with_content_range(tmp_path: Path) -> None:
    fake = FakeRegistry()
    data = os.urandom(2_500_000)
    (tmp_path / "disk.qcow2").write_bytes(data)
    with _store(fake, chunk_size=1_000_000) as store:
        put = store.put_blob("vm/disk", tmp_path / "disk.qcow2")
    assert put.digest == digest_bytes(data)
    ranges = [h.get("content-range") for m, _, h in fake.log if m == "PATCH"]
    assert ranges == ["0-999999", "1000000-1999999", "2000000-2499999"]
    assert fake.blobs["vm/disk"][put.digest] == data


def test_small_files_go_in_one_put_and_streams_in_one_patch(tmp_path: Path) -> None:
    fake = FakeRegistry()
    (tmp_path / "small").write_bytes(b"small file")
    with _store(fake, chunk_size=1_000_000) as store:
        store.put_blob("r", tmp_path / "small")
        sends = [m for m, _, _ in fake.log if m in ("PUT", "PATCH")]
        assert sends == ["PUT"]
        fake.log.clear()
        store.put_blob("r", io.BytesIO(os.urandom(2_500_000)))
    methods = [m for m, _, _ in fake.log if m in ("PUT", "PATCH")]
    assert methods == ["PATCH", "PUT"]
    patch = next(h for m, _, h in fake.log if m == "PATCH")
    assert "content-range" not in patch


def test_a_present_blob_is_not_sent_again(tmp_path: Path) -> None:
    fake = FakeRegistry()
    (tmp_path / "f").write_bytes(b"content")
    with _store(fake) as store:
        first = store.put_blob("r", tmp_path / "f")
        fake.log.clear()
        assert store.put_blob("r", tmp_path / "f", expected=first.digest).size == 7
        assert store.put_blob("r", b"content").digest == first.digest
    assert [m for m, _, _ in fake.log] == ["HEAD", "HEAD"]


def test_a_stream_not_matching_its_digest_abandons_the_upload() -> None:
    fake = FakeRegistry()
    with _store(fake) as store, pytest.raises(DigestMismatch):
        store.put_blob("r", io.BytesIO(b"evil"), expected=digest_bytes(b"good"))
    assert fake.uploads == {}
    assert [m for m, _, _ in fake.log][-1] == "DELETE"


def test_tampered_manifests_and_blobs_are_detected(tmp_path: Path) -> None:
    fake = FakeRegistry()
    with _store(fake) as store:
        put = put_image(store, "r", tag="v1")
    data, kind = fake.manifests["r"][put.digest]
    fake.manifests["r"][put.digest] = (data.replace(b"gzip", b"gzip "), kind)
    blob = next(iter(fake.blobs["r"]))
    fake.blobs["r"][blob] = b"swapped"
    with _store(fake) as fresh:  # a fresh client: nothing cached
        with pytest.raises(DigestMismatch, match=r"manifest fake.registry/r:v1 has digest"):
            fresh.resolve("r", "v1")
        with pytest.raises(DigestMismatch, match=put.digest):
            fresh.manifest("r", put.digest)
        with pytest.raises(DigestMismatch, match=f"blob fake.registry/r@{blob}"):
            fresh.fetch_blob("r", blob, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_errors_name_the_reference_and_keep_the_registry_words() -> None:
    fake = FakeRegistry()
    with _store(fake) as store:
        put_image(store, "r", tag="v1")
        with pytest.raises(
            NotFound,
            match=r"manifest fake.registry/r:v2 not found in registry http://fake.registry \(MANIFEST_UNKNOWN",
        ):
            store.resolve("r", "v2")
        with pytest.raises(NotFound, match="NAME_UNKNOWN"):
            store.tags("nothing")


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "DENIED", Forbidden),
        (405, "UNSUPPORTED", Forbidden),
        (409, "TAG_IMMUTABLE", Conflict),
        (400, "TAG_INVALID", InvalidTask),
        (503, "UNAVAILABLE", StoreError),
        (429, "TOOMANYREQUESTS", StoreError),
    ],
)
def test_statuses_map_to_domain_errors(status: int, code: str, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"errors": [{"code": code, "message": "said so"}]})

    with (
        RegistryStore(BASE, transport=httpx.MockTransport(handler)) as store,
        pytest.raises(error, match=f"{code}: said so"),
    ):
        store.delete_manifest("r", digest_bytes(b"m"))


def test_a_registry_that_does_not_answer_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free a moment ago: connecting is refused
    url = f"http://127.0.0.1:{port}"
    with (
        RegistryStore(url) as store,
        pytest.raises(RegistryUnavailable, match=rf"registry {url} does not answer .*refused"),
    ):
        store.resolve("r", "v1")


def test_lists_follow_the_link_header() -> None:
    fake = FakeRegistry(page_size=2)
    with _store(fake) as store:
        for tag in ("a", "b", "c", "d", "e"):
            put_image(store, "r", tag=tag)
        for name in ("s", "t"):
            store.put_blob(name, b"x")
        assert store.tags("r") == ["a", "b", "c", "d", "e"]
        assert store.repositories() == ["r", "s", "t"]
    pages = [p for m, p, _ in fake.log if p == "/v2/r/tags/list"]
    assert len(pages) == 3


def test_registry_urls_and_challenges() -> None:
    assert registry_url("docker.io") == "https://registry-1.docker.io"
    assert registry_url("ghcr.io") == "https://ghcr.io"
    assert registry_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert registry_url("localhost:5000") == "http://localhost:5000"
    assert registry_url("[::1]:5000") == "http://[::1]:5000"
    assert registry_url("10.0.0.1:5000") == "https://10.0.0.1:5000"
    assert parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull,push"'
    ) == (
        "bearer",
        {
            "realm": "https://auth.docker.io/token",
            "service": "registry.docker.io",
            "scope": "repository:library/busybox:pull,push",
        },
    )
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
