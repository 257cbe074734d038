"""HttpStorage against a real HTTP server on loopback (http_server.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.storage.http_server import FileServer

from toolferry.storage.base import ObjectInfo, StorageError, Uploaded
from toolferry.storage.http import HttpStorage
from toolferry.storage.router import default_router

pytestmark = pytest.mark.integration


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_download(http_server: FileServer, work: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, several chunks
    (http_server.root / "in").mkdir()
    (http_server.root / "in" / "reads.bin").write_bytes(data)
    HttpStorage().get(f"{http_server.url}/in/reads.bin", work / "reads.bin", directory=False)
    assert (work / "reads.bin").read_bytes() == data
    assert [p.name for p in work.iterdir()] == ["reads.bin"]


def test_download_through_the_router(http_server: FileServer, work: Path) -> None:
    (http_server.root / "a b.txt").write_text("spaced")
    router = default_router([work])
    router.get(f"{http_server.url}/a%20b.txt", work / "a.txt", directory=False)
    assert (work / "a.txt").read_text() == "spaced"


def test_stat(http_server: FileServer) -> None:
    (http_server.root / "f.txt").write_text("12345")
    url = f"{http_server.url}/f.txt"
    info = HttpStorage().stat(url)
    assert (info.url, info.size) == (url, 5)
    assert info.etag and info.modified  # the validators that key the input cache
    http_server.validators = False
    assert HttpStorage().stat(url) == ObjectInfo(url=url, size=5)
    assert http_server.count("HEAD", "/f.txt") == 2  # one request per stat


def test_upload(http_server: FileServer, work: Path) -> None:
    (work / "out.txt").write_bytes(b"result\n" * 10000)
    url = f"{http_server.url}/results/out.txt"
    uploaded = HttpStorage().put(work / "out.txt", url, directory=False)
    assert uploaded == [Uploaded(url=url, path=work / "out.txt", size=70000)]
    assert (http_server.root / "results" / "out.txt").read_bytes() == b"result\n" * 10000


def test_directory_upload(http_server: FileServer, work: Path) -> None:
    out = work / "out"
    (out / "sub").mkdir(parents=True)
    (out / "a.txt").write_text("a")
    (out / "sub" / "b c.txt").write_text("bc")
    url = f"{http_server.url}/run1"
    uploaded = HttpStorage().put(out, url, directory=True)
    assert [u.url for u in uploaded] == [f"{url}/a.txt", f"{url}/sub/b%20c.txt"]
    assert (http_server.root / "run1" / "a.txt").read_text() == "a"
    assert (http_server.root / "run1" / "sub" / "b c.txt").read_text() == "bc"


def test_not_found(http_server: FileServer, work: Path) -> None:
    url = f"{http_server.url}/missing.txt"
    with pytest.raises(StorageError) as info:
        HttpStorage().get(url, work / "x", directory=False)
    assert str(info.value) == f"{url}: HTTP 404 Not Found"
    assert http_server.count("GET", "/missing.txt") == 1
    assert list(work.iterdir()) == []


def test_forbidden_with_credentials_redacted(http_server: FileServer, work: Path) -> None:
    (http_server.root / "secret.txt").write_text("x")
    http_server.fail("/secret.txt", 403)
    url = http_server.url.replace("http://", "http://alice:pw@") + "/secret.txt"
    with pytest.raises(StorageError) as info:
        HttpStorage().get(url, work / "x", directory=False)
    shown = http_server.url.replace("http://", "http://***@") + "/secret.txt"
    assert str(info.value) == f"{shown}: HTTP 403 Forbidden"


def test_retry_after_one_server_error(http_server: FileServer, work: Path) -> None:
    (http_server.root / "flaky.txt").write_text("finally")
    http_server.fail("/flaky.txt", 500, times=1)
    HttpStorage().get(f"{http_server.url}/flaky.txt", work / "x", directory=False)
    assert (work / "x").read_text() == "finally"
    assert http_server.count("GET", "/flaky.txt") == 2


def test_upload_retried_after_a_server_error(http_server: FileServer, work: Path) -> None:
    (work / "out.txt").write_text("payload")
    http_server.fail("/up.txt", 503, times=1)
    HttpStorage().put(work / "out.txt", f"{http_server.url}/up.txt", directory=False)
    assert (http_server.root / "up.txt").read_text() == "payload"
    assert http_server.count("PUT", "/up.txt") == 2


def test_persistent_server_error(http_server: FileServer, work: Path) -> None:
    http_server.fail("/down.txt", 500)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        HttpStorage(sleep=sleeps.append).get(
            f"{http_server.url}/down.txt", work / "x", directory=False
        )
    assert info.value.cause == "HTTP 500 Internal Server Error (after 3 attempts)"
    assert http_server.count("GET", "/down.txt") == 3
    assert sleeps == [0.2, 0.4]


def test_connection_refused(refused_url: str, work: Path) -> None:
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        HttpStorage(sleep=sleeps.append).get(refused_url, work / "x", directory=False)
    assert info.value.cause == "could not connect: Connection refused (after 3 attempts)"
    assert info.value.url == refused_url
    assert sleeps == [0.2, 0.4]
    assert list(work.iterdir()) == []
