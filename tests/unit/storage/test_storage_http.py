"""HttpStorage against httpx.MockTransport: messages, retries, atomic downloads, uploads."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from toolferry.storage.base import ObjectInfo, Storage, StorageError, Uploaded
from toolferry.storage.http import HttpStatusError, HttpStorage

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and remembers every request."""

    def __init__(self, *answers: Handler | httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)


def storage(recorder: Recorder, sleeps: list[float] | None = None, **kwargs: object) -> HttpStorage:
    delays = sleeps if sleeps is not None else []
    return HttpStorage(
        transport=httpx.MockTransport(recorder),
        sleep=delays.append,
        **kwargs,  # type: ignore[arg-type]
    )


class Chunks(httpx.SyncByteStream):
    """A body httpx has not read yet, as from a socket (``content=`` would be read at once)."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def ok(data: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Content-Length": str(len(data)), **(headers or {})}
    return httpx.Response(200, headers=headers, stream=Chunks(data[:3], data[3:]))


class BreaksMidway(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"first part "
        raise httpx.ReadError("connection reset by peer")


URL = "https://data.example.org/in/reads.fq"


def test_is_a_storage() -> None:
    s: Storage = HttpStorage()
    assert s.schemes == ("http", "https")


def test_supports() -> None:
    s = HttpStorage()
    assert s.supports(URL, write=False) is None
    assert s.supports("http://h/x", write=True) is None
    assert s.supports("https:///nohost", write=False) == "https:///nohost has no host"
    assert s.supports("ftp://h/x", write=False) == "ftp://h/x is not an http:// or https:// URL"


def test_get_streams_to_dest(tmp_path: Path) -> None:
    rec = Recorder(ok(b"ACGT" * 1000))
    storage(rec).get(URL, tmp_path / "sub" / "reads.fq", directory=False)
    assert (tmp_path / "sub" / "reads.fq").read_bytes() == b"ACGT" * 1000
    assert stat.S_IMODE((tmp_path / "sub" / "reads.fq").stat().st_mode) == 0o644
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["reads.fq"]
    request = rec.requests[0]
    assert request.method == "GET"
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["user-agent"].startswith("toolferry/")


def test_get_keeps_bytes_as_served(tmp_path: Path) -> None:
    # A .gz served with Content-Encoding: gzip must land on disk still compressed.
    raw = b"\x1f\x8b not really gzip"
    rec = Recorder(ok(raw, {"Content-Encoding": "gzip"}))
    storage(rec).get(URL, tmp_path / "x.gz", directory=False)
    assert (tmp_path / "x.gz").read_bytes() == raw


def test_get_sends_configured_headers(tmp_path: Path) -> None:
    rec = Recorder(ok(b"x"))
    storage(rec, headers={"Authorization": "Bearer t"}).get(URL, tmp_path / "x", directory=False)
    assert rec.requests[0].headers["authorization"] == "Bearer t"


def test_get_follows_redirects(tmp_path: Path) -> None:
    rec = Recorder(
        httpx.Response(302, headers={"Location": "https://cdn.example.org/blob"}),
        ok(b"blob"),
    )
    storage(rec).get(URL, tmp_path / "x", directory=False)
    assert (tmp_path / "x").read_bytes() == b"blob"
    assert str(rec.requests[1].url) == "https://cdn.example.org/blob"


@pytest.mark.parametrize(
    ("status", "cause"),
    [(404, "HTTP 404 Not Found"), (403, "HTTP 403 Forbidden"), (401, "HTTP 401 Unauthorized")],
)
def test_client_errors_are_not_retried(tmp_path: Path, status: int, cause: str) -> None:
    rec = Recorder(httpx.Response(status))
    sleeps: list[float] = []
    with pytest.raises(HttpStatusError) as info:
        storage(rec, sleeps).get(URL, tmp_path / "x", directory=False)
    assert str(info.value) == f"{URL}: {cause}"
    assert info.value.status == status
    assert len(rec.requests) == 1
    assert sleeps == []
    assert list(tmp_path.iterdir()) == []


def test_unknown_status_code() -> None:
    rec = Recorder(httpx.Response(499))
    with pytest.raises(StorageError, match=r"HTTP 499$"):
        storage(rec).stat(URL)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_statuses_are_retried(tmp_path: Path, status: int) -> None:
    rec = Recorder(httpx.Response(status), httpx.Response(status), ok(b"ok"))
    sleeps: list[float] = []
    storage(rec, sleeps).get(URL, tmp_path / "x", directory=False)
    assert (tmp_path / "x").read_bytes() == b"ok"
    assert len(rec.requests) == 3
    assert sleeps == [0.2, 0.4]


def test_gives_up_after_three_attempts(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(500))
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        storage(rec, sleeps).get(URL, tmp_path / "x", directory=False)
    assert info.value.cause == "HTTP 500 Internal Server Error (after 3 attempts)"
    assert len(rec.requests) == 3
    assert sleeps == [0.2, 0.4]


def test_backoff_is_configurable(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(503))
    sleeps: list[float] = []
    with pytest.raises(StorageError, match=r"after 2 attempts"):
        storage(rec, sleeps, backoff=[1.5]).get(URL, tmp_path / "x", directory=False)
    assert sleeps == [1.5]
    assert len(rec.requests) == 2


def test_connect_errors_are_retried_then_reported(tmp_path: Path) -> None:
    rec = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        storage(rec, sleeps).get(URL, tmp_path / "x", directory=False)
    assert info.value.cause == "could not connect: Connection refused (after 3 attempts)"
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(rec.requests) == 3
    assert sleeps == [0.2, 0.4]


def test_connect_error_then_success(tmp_path: Path) -> None:
    rec = Recorder(httpx.ConnectError("refused"), ok(b"ok"))
    storage(rec).get(URL, tmp_path / "x", directory=False)
    assert (tmp_path / "x").read_bytes() == b"ok"


def test_connect_timeout_is_retried(tmp_path: Path) -> None:
    rec = Recorder(httpx.ConnectTimeout("timed out"))
    with pytest.raises(StorageError) as info:
        storage(rec, timeout=5).get(URL, tmp_path / "x", directory=False)
    assert info.value.cause == "could not connect: timed out after 5s (after 3 attempts)"
    assert len(rec.requests) == 3


def test_read_timeout_is_reported(tmp_path: Path) -> None:
    rec = Recorder(httpx.ReadTimeout("timed out"))
    with pytest.raises(StorageError) as info:
        storage(rec, timeout=2.5).get(URL, tmp_path / "x", directory=False)
    assert info.value.cause == "timed out after 2.5s"
    assert len(rec.requests) == 1


def test_interrupted_download_leaves_nothing(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(200, stream=BreaksMidway()))
    with pytest.raises(StorageError, match="transfer failed: connection reset by peer"):
        storage(rec).get(URL, tmp_path / "x", directory=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_keeps_the_old_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"old")
    rec = Recorder(httpx.Response(200, stream=BreaksMidway()))
    with pytest.raises(StorageError):
        storage(rec).get(URL, tmp_path / "x", directory=False)
    assert (tmp_path / "x").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_directory_get_is_refused(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(200))
    with pytest.raises(StorageError, match="directory inputs cannot be fetched over HTTP"):
        storage(rec).get(URL, tmp_path / "x", directory=True)
    assert rec.requests == []


def test_credentials_are_redacted_in_messages(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(404))
    url = "https://alice:s3cret@data.example.org/x?X-Amz-Signature=abc"
    with pytest.raises(StorageError) as info:
        storage(rec).get(url, tmp_path / "x", directory=False)
    assert "s3cret" not in str(info.value)
    assert "abc" not in str(info.value)
    assert str(info.value) == (
        "https://***@data.example.org/x?X-Amz-Signature=***: HTTP 404 Not Found"
    )
    # The credentials still went to the server, as basic auth.
    assert rec.requests[0].headers["authorization"].startswith("Basic ")


def test_invalid_url() -> None:
    with pytest.raises(StorageError, match="the URL has no host"):
        HttpStorage().stat("http:///x")


def test_put_file(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_bytes(b"result")
    rec = Recorder(httpx.Response(201))
    uploaded = storage(rec).put(tmp_path / "out.txt", URL, directory=False)
    assert uploaded == [Uploaded(url=URL, path=tmp_path / "out.txt", size=6)]
    assert rec.requests[0].method == "PUT"
    assert rec.requests[0].headers["content-length"] == "6"
    assert rec.bodies == [b"result"]


def test_put_retries_resend_the_whole_body(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_bytes(b"result")
    rec = Recorder(httpx.Response(503), httpx.Response(204))
    storage(rec).put(tmp_path / "out.txt", URL, directory=False)
    assert rec.bodies == [b"result", b"result"]


def test_put_does_not_follow_redirects(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_bytes(b"result")
    rec = Recorder(httpx.Response(307, headers={"Location": "https://elsewhere/"}))
    with pytest.raises(StorageError, match="HTTP 307 Temporary Redirect"):
        storage(rec).put(tmp_path / "out.txt", URL, directory=False)
    assert len(rec.requests) == 1


def test_put_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "empty").mkdir()
    (out / "a.txt").write_bytes(b"a")
    (out / "sub" / "b c.txt").write_bytes(b"bc")
    rec = Recorder(httpx.Response(201))
    base = "https://h/results?sig=x"
    uploaded = storage(rec).put(out, base, directory=True)
    assert uploaded == [
        Uploaded(url="https://h/results/a.txt?sig=x", path=out / "a.txt", size=1),
        Uploaded(url="https://h/results/sub/b%20c.txt?sig=x", path=out / "sub" / "b c.txt", size=2),
    ]
    assert [str(r.url) for r in rec.requests] == [u.url for u in uploaded]
    assert rec.bodies == [b"a", b"bc"]


def test_put_missing_source(tmp_path: Path) -> None:
    rec = Recorder(httpx.Response(201))
    with pytest.raises(StorageError, match="no such file"):
        storage(rec).put(tmp_path / "nope", URL, directory=False)
    with pytest.raises(StorageError, match="no such directory"):
        storage(rec).put(tmp_path / "nope", URL, directory=True)
    assert rec.requests == []


def test_stat_uses_head() -> None:
    rec = Recorder(httpx.Response(200, headers={"Content-Length": "1234"}))
    assert storage(rec).stat(URL) == ObjectInfo(url=URL, size=1234)
    assert rec.requests[0].method == "HEAD"
    rec = Recorder(httpx.Response(200, headers={"Content-Length": "5"}))
    assert storage(rec).list(URL) == [ObjectInfo(url=URL, size=5)]


def test_stat_without_length() -> None:
    assert storage(Recorder(httpx.Response(200))).stat(URL).size == -1


def test_stat_falls_back_to_get_when_head_is_refused() -> None:
    # A pre-signed GET URL answers HEAD with 403: its signature covers the method.
    rec = Recorder(
        httpx.Response(403),
        httpx.Response(200, headers={"Content-Length": "99"}, stream=BreaksMidway()),
    )
    assert storage(rec).stat(URL).size == 99
    assert [r.method for r in rec.requests] == ["HEAD", "GET"]


def test_stat_missing() -> None:
    rec = Recorder(httpx.Response(404))
    with pytest.raises(StorageError, match="HTTP 404 Not Found"):
        storage(rec).stat(URL)
    assert len(rec.requests) == 1
