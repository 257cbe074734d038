"""The files API (/toolferry/v1/files): spaces, streamed uploads, listing, downloads, access."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from toolferry.hub import Hub

FILES = "/toolferry/v1/files"


@pytest.fixture
def space(client: httpx.Client) -> str:
    response = client.post(FILES)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"id": body["id"], "url": f"hub://{body['id']}/"}
    return str(body["id"])


def leftovers(hub: Hub, space: str) -> list[str]:
    base = hub.files.files_dir(space)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))


def test_upload_list_download_delete(hub: Hub, client: httpx.Client, space: str) -> None:
    data = b"line one\nline two\n"

    def body() -> Iterator[bytes]:  # a streamed (chunked) upload
        yield data[:5]
        yield data[5:]

    put = client.put(f"{FILES}/{space}/in/0/my file.txt", content=body())
    assert put.status_code == 201, put.text
    assert put.json() == {
        "path": "in/0/my file.txt",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "url": f"hub://{space}/in/0/my%20file.txt",
    }
    client.put(f"{FILES}/{space}/a.txt", content=b"a")

    listed = client.get(f"{FILES}/{space}")
    assert listed.status_code == 200
    assert listed.json() == {
        "files": [
            {"path": "a.txt", "size": 1, "url": f"hub://{space}/a.txt"},
            {
                "path": "in/0/my file.txt",
                "size": len(data),
                "url": f"hub://{space}/in/0/my%20file.txt",
            },
        ]
    }

    got = client.get(f"{FILES}/{space}/in/0/my file.txt")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["content-type"] == "application/octet-stream"
    ranged = client.get(f"{FILES}/{space}/in/0/my file.txt", headers={"Range": "bytes=5-7"})
    assert (ranged.status_code, ranged.content) == (206, b"one")

    deleted = client.delete(f"{FILES}/{space}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert client.get(f"{FILES}/{space}").status_code == 404
    assert hub.files.owner_of(space) is None


def test_an_upload_replaces_the_file(client: httpx.Client, space: str) -> None:
    client.put(f"{FILES}/{space}/x", content=b"first version")
    client.put(f"{FILES}/{space}/x", content=b"second")
    assert client.get(f"{FILES}/{space}/x").content == b"second"


def test_a_matching_checksum_is_accepted(client: httpx.Client, space: str) -> None:
    digest = hashlib.sha256(b"data").hexdigest()
    put = client.put(f"{FILES}/{space}/x", content=b"data", headers={"X-Content-SHA256": digest})
    assert put.status_code == 201, put.text
    assert put.json()["sha256"] == digest


def test_a_checksum_mismatch_is_400_and_keeps_nothing(
    hub: Hub, client: httpx.Client, space: str
) -> None:
    put = client.put(f"{FILES}/{space}/x", content=b"data", headers={"X-Content-SHA256": "0" * 64})
    assert put.status_code == 400
    assert "X-Content-SHA256" in put.json()["detail"]
    assert "nothing was kept" in put.json()["detail"]
    assert leftovers(hub, space) == []
    malformed = client.put(f"{FILES}/{space}/x", content=b"d", headers={"X-Content-SHA256": "zz"})
    assert malformed.status_code == 400
    assert malformed.json() == {"detail": "X-Content-SHA256: must be 64 hex digits"}


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("a/%2E%2E/%2E%2E/b", "'..'"),
        ("%2Fetc%2Fpasswd", "must be relative"),
        ("a%00b", "NUL"),
        ("", "is empty"),
        ("a//b", "empty components"),
    ],
)
def test_bad_paths_are_400_with_the_reason(
    hub: Hub, client: httpx.Client, space: str, path: str, needle: str
) -> None:
    # httpx would normalise some of these: send the raw path.
    url = httpx.URL(client.base_url.join(f"{FILES}/{space}/")).copy_with(
        raw_path=f"{FILES}/{space}/{path}".encode()
    )
    for method in ("PUT", "GET"):
        response = client.request(method, url, content=b"x")
        assert response.status_code == 400, (method, response.text)
        detail = response.json()["detail"]
        assert detail.startswith("path: ") and needle in detail, detail
    assert leftovers(hub, space) == []


def test_missing_files_and_spaces_are_404(client: httpx.Client, space: str) -> None:
    assert client.get(f"{FILES}/{space}/nope.txt").status_code == 404
    for method, path in [
        ("GET", f"{FILES}/{'0' * 32}"),
        ("GET", f"{FILES}/{'0' * 32}/x"),
        ("PUT", f"{FILES}/{'0' * 32}/x"),
        ("DELETE", f"{FILES}/{'0' * 32}"),
        ("GET", f"{FILES}/not-a-space"),
    ]:
        response = client.request(method, path, content=b"x" if method == "PUT" else None)
        assert response.status_code == 404, (method, path)
        assert "no file space" in response.json()["detail"]


def test_writing_over_a_directory_is_409(client: httpx.Client, space: str) -> None:
    client.put(f"{FILES}/{space}/d/x", content=b"x")
    response = client.put(f"{FILES}/{space}/d", content=b"y")
    assert response.status_code == 409
    assert "path: cannot write 'd'" in response.json()["detail"]
    assert client.get(f"{FILES}/{space}/d").status_code == 404  # a directory is not a file


def test_directory_uploads_make_empty_directories(
    hub: Hub, client: httpx.Client, space: str
) -> None:
    response = client.put(f"{FILES}/{space}/in/0/empty/", params={"directory": "true"})
    assert response.status_code == 201, response.text
    assert response.json() == {
        "path": "in/0/empty",
        "size": 0,
        "sha256": None,
        "url": f"hub://{space}/in/0/empty",
    }
    assert (hub.files.files_dir(space) / "in" / "0" / "empty").is_dir()


def test_other_users_spaces_are_404_and_admins_see_all(hub: Hub, client: httpx.Client) -> None:
    _, alice = hub.tokens.create("alice")
    _, bob = hub.tokens.create("bob")
    _, root = hub.tokens.create("root", admin=True)
    hub.authenticate.mode = "token"

    def h(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    assert client.post(FILES).status_code == 401
    space = client.post(FILES, headers=h(alice)).json()["id"]
    assert hub.files.owner_of(space) == "alice"
    assert client.put(f"{FILES}/{space}/x", content=b"mine", headers=h(alice)).status_code == 201

    for method, path in [
        ("GET", f"{FILES}/{space}"),
        ("GET", f"{FILES}/{space}/x"),
        ("PUT", f"{FILES}/{space}/x"),
        ("DELETE", f"{FILES}/{space}"),
    ]:
        response = client.request(
            method, path, headers=h(bob), content=b"theirs" if method == "PUT" else None
        )
        assert response.status_code == 404, (method, path)
        # The same answer as for a space that does not exist.
        assert response.json() == {"detail": f"no file space {space!r}"}
    assert client.get(f"{FILES}/{space}/x", headers=h(alice)).content == b"mine"

    assert client.get(f"{FILES}/{space}/x", headers=h(root)).content == b"mine"
    assert client.delete(f"{FILES}/{space}", headers=h(root)).status_code == 204


def test_wrong_methods_are_405_with_allow(client: httpx.Client, space: str) -> None:
    response = client.post(f"{FILES}/{space}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD"
    response = client.delete(f"{FILES}/{space}/x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT"


def test_the_openapi_documents_the_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths[FILES]) == {"post"}
    assert set(paths[f"{FILES}/{{space}}"]) == {"get", "delete"}
    assert set(paths[f"{FILES}/{{space}}/{{path}}"]) == {"get", "put"}
    put = paths[f"{FILES}/{{space}}/{{path}}"]["put"]
    assert put["tags"] == ["files"]
    assert "application/octet-stream" in put["requestBody"]["content"]
    assert {"201", "400", "401", "404", "409"} <= set(put["responses"])
    assert "422" not in put["responses"]


def test_large_and_empty_uploads(client: httpx.Client, space: str) -> None:
    big = bytes(range(256)) * (3 * 4096 + 17)  # a little over 3 MiB, in odd-sized pieces

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(big), 70_001):
            yield big[start : start + 70_001]

    put = client.put(f"{FILES}/{space}/big.bin", content=pieces())
    assert put.status_code == 201, put.text
    assert put.json()["sha256"] == hashlib.sha256(big).hexdigest()
    assert client.get(f"{FILES}/{space}/big.bin").content == big
    empty = client.put(f"{FILES}/{space}/empty", content=b"")
    assert (empty.status_code, empty.json()["size"]) == (201, 0)
    assert client.get(f"{FILES}/{space}/empty").content == b""
