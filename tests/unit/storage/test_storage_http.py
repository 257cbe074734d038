"""HttpStorage: downloads against a real server on loopback (GET goes through http.client),
stat and uploads against httpx.MockTransport (HEAD and PUT go through httpx)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.storage.http_server import FileServer, serving

from toolferry.storage import fetch
from toolferry.storage.base import Credential, ObjectInfo, Storage, StorageError, Uploaded
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


# --- GET: a real server on 127.0.0.1 (downloads go through http.client, not httpx) ---


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads honour proxy variables: the ones of whoever runs the tests must not count."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    (root / "in").mkdir(parents=True)
    with serving(root) as server:
        yield server


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """The download directory (apart from what the server serves)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def serve(server: FileServer, path: str, data: bytes) -> str:
    """Put ``data`` at ``path`` on the server; its URL."""
    local = server.root / path.lstrip("/")
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    return server.url + path


def refused_port() -> int:
    """A loopback port nothing listens on (it was just free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def getter(sleeps: list[float] | None = None, **kwargs: object) -> HttpStorage:
    delays = sleeps if sleeps is not None else []
    return HttpStorage(sleep=delays.append, **kwargs)  # type: ignore[arg-type]


DATA = bytes(range(256)) * 40  # 10 KiB


def test_get_streams_to_dest(server: FileServer, dest: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: several reads
    url = serve(server, "/in/reads.fq", data)
    digest = getter().get(url, dest / "sub" / "reads.fq", directory=False)
    assert (dest / "sub" / "reads.fq").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE((dest / "sub" / "reads.fq").stat().st_mode) == 0o644
    assert [p.name for p in (dest / "sub").iterdir()] == ["reads.fq"]
    assert server.requests == [("GET", "/in/reads.fq")]
    headers = server.headers_of("GET", "/in/reads.fq")[0]
    assert headers["Accept-Encoding"] == "identity"
    assert headers["User-Agent"].startswith("toolferry/")


def test_get_keeps_bytes_as_served(server: FileServer, dest: Path) -> None:
    # A .gz served with Content-Encoding: gzip must land on disk still compressed.
    raw = b"\x1f\x8b not really gzip"
    url = serve(server, "/in/x.gz", raw)
    server.add_headers("/in/x.gz", {"Content-Encoding": "gzip"})
    getter().get(url, dest / "x.gz", directory=False)
    assert (dest / "x.gz").read_bytes() == raw


def test_get_sends_configured_headers(server: FileServer, dest: Path) -> None:
    url = serve(server, "/in/x", b"x")
    getter(headers={"Authorization": "Bearer t", "X-Extra": "1"}).get(
        url, dest / "x", directory=False
    )
    headers = server.headers_of("GET", "/in/x")[0]
    assert headers["Authorization"] == "Bearer t"
    assert headers["X-Extra"] == "1"


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        (Credential(prefix="http://", token="t0ken"), "Bearer t0ken"),
        (
            Credential(prefix="http://", username="alice", password="pw"),
            fetch.basic_auth("alice", "pw"),
        ),
    ],
)
def test_get_sends_credential_headers(
    server: FileServer, dest: Path, credential: Credential, expected: str
) -> None:
    url = serve(server, "/in/x", b"x")
    credential = Credential(
        prefix=credential.prefix,
        username=credential.username,
        password=credential.password,
        token=credential.token,
        headers={"X-Api-Key": "k3y"},
    )
    getter().get(url, dest / "x", directory=False, credential=credential)
    headers = server.headers_of("GET", "/in/x")[0]
    assert headers["Authorization"] == expected
    assert headers["X-Api-Key"] == "k3y"


def test_get_follows_redirects(server: FileServer, dest: Path) -> None:
    serve(server, "/cdn/blob", b"blob")
    server.redirect("/in/x", f"{server.url}/cdn/blob")
    getter(headers={"Authorization": "Bearer t"}).get(
        f"{server.url}/in/x", dest / "x", directory=False
    )
    assert (dest / "x").read_bytes() == b"blob"
    assert server.requests == [("GET", "/in/x"), ("GET", "/cdn/blob")]
    # The same origin: the credentials follow.
    assert server.headers_of("GET", "/cdn/blob")[0]["Authorization"] == "Bearer t"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_get_follows_a_relative_redirect(server: FileServer, dest: Path, status: int) -> None:
    serve(server, "/data/blob", b"blob")
    server.redirect("/in/old/x", "../../data/blob", status)
    getter().get(f"{server.url}/in/old/x", dest / "x", directory=False)
    assert (dest / "x").read_bytes() == b"blob"
    assert server.requests == [("GET", "/in/old/x"), ("GET", "/data/blob")]


def test_too_many_redirects(server: FileServer, dest: Path) -> None:
    server.redirect("/loop", "/loop")
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps).get(f"{server.url}/loop", dest / "x", directory=False)
    assert info.value.cause == "too many redirects"
    assert server.count("GET", "/loop") == fetch.MAX_REDIRECTS + 1
    assert sleeps == []  # not retried
    assert list(dest.iterdir()) == []


def test_redirect_to_another_origin_drops_authorization(server: FileServer, dest: Path) -> None:
    # 127.0.0.1 and localhost: the same server, but another origin as far as URLs go.
    serve(server, "/cdn/blob", b"blob")
    port = server.server_address[1]
    server.redirect("/in/x", f"http://localhost:{port}/cdn/blob")
    getter(headers={"Authorization": "Bearer t"}).get(
        f"{server.url}/in/x", dest / "x", directory=False
    )
    assert (dest / "x").read_bytes() == b"blob"
    assert server.headers_of("GET", "/in/x")[0]["Authorization"] == "Bearer t"
    followed = server.headers_of("GET", "/cdn/blob")[0]
    assert followed["Host"] == f"localhost:{port}"
    assert followed["Authorization"] is None


def test_redirect_to_another_origin_drops_basic_auth_from_the_url(
    server: FileServer, dest: Path
) -> None:
    serve(server, "/cdn/blob", b"blob")
    port = server.server_address[1]
    server.redirect("/in/x", f"http://localhost:{port}/cdn/blob")
    url = f"http://alice:pw@127.0.0.1:{port}/in/x"
    getter().get(url, dest / "x", directory=False)
    assert server.headers_of("GET", "/in/x")[0]["Authorization"] == fetch.basic_auth("alice", "pw")
    assert server.headers_of("GET", "/cdn/blob")[0]["Authorization"] is None


@pytest.mark.parametrize(
    ("status", "cause"),
    [(404, "HTTP 404 Not Found"), (403, "HTTP 403 Forbidden"), (401, "HTTP 401 Unauthorized")],
)
def test_client_errors_are_not_retried(
    server: FileServer, dest: Path, status: int, cause: str
) -> None:
    url = serve(server, "/in/x", b"x")
    server.fail("/in/x", status)
    sleeps: list[float] = []
    with pytest.raises(HttpStatusError) as info:
        getter(sleeps).get(url, dest / "x", directory=False)
    assert str(info.value) == f"{url}: {cause}"
    assert info.value.status == status
    assert server.count("GET", "/in/x") == 1
    assert sleeps == []
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_statuses_are_retried(server: FileServer, dest: Path, status: int) -> None:
    url = serve(server, "/in/x", b"ok")
    server.fail("/in/x", status, times=2)
    sleeps: list[float] = []
    getter(sleeps).get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == b"ok"
    assert server.count("GET", "/in/x") == 3
    assert sleeps == [0.2, 0.4]


def test_gives_up_after_three_attempts(server: FileServer, dest: Path) -> None:
    url = serve(server, "/in/x", b"x")
    server.fail("/in/x", 500)
    sleeps: list[float] = []
    with pytest.raises(HttpStatusError) as info:
        getter(sleeps).get(url, dest / "x", directory=False)
    assert info.value.cause == "HTTP 500 Internal Server Error (after 3 attempts)"
    assert info.value.status == 500
    assert server.count("GET", "/in/x") == 3
    assert sleeps == [0.2, 0.4]
    assert list(dest.iterdir()) == []


def test_backoff_is_configurable(server: FileServer, dest: Path) -> None:
    server.fail("/in/x", 503)
    sleeps: list[float] = []
    with pytest.raises(StorageError, match=r"HTTP 503 Service Unavailable \(after 2 attempts\)$"):
        getter(sleeps, backoff=[1.5]).get(f"{server.url}/in/x", dest / "x", directory=False)
    assert sleeps == [1.5]
    assert server.count("GET", "/in/x") == 2


def test_no_backoff_means_one_attempt(server: FileServer, dest: Path) -> None:
    server.fail("/in/x", 503)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps, backoff=[]).get(f"{server.url}/in/x", dest / "x", directory=False)
    assert info.value.cause == "HTTP 503 Service Unavailable"
    assert sleeps == []
    assert server.count("GET", "/in/x") == 1


def test_connect_errors_are_retried_then_reported(dest: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}/x"
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps).get(url, dest / "x", directory=False)
    assert info.value.cause == "could not connect: Connection refused (after 3 attempts)"
    assert info.value.url == url
    cause = info.value.__cause__
    assert isinstance(cause, fetch.ConnectFailed)
    assert isinstance(cause.error, ConnectionRefusedError)
    assert sleeps == [0.2, 0.4]
    assert list(dest.iterdir()) == []


def test_connect_error_then_success(tmp_path: Path, dest: Path) -> None:
    # Nothing listens on the port until the first backoff starts the server there.
    (tmp_path / "late").mkdir()
    (tmp_path / "late" / "x").write_bytes(b"ok")
    port = refused_port()
    sleeps: list[float] = []
    with contextlib.ExitStack() as stack:
        started: list[FileServer] = []

        def start_server(delay: float) -> None:
            sleeps.append(delay)
            if not started:
                started.append(stack.enter_context(serving(tmp_path / "late", port)))

        HttpStorage(sleep=start_server).get(
            f"http://127.0.0.1:{port}/x", dest / "x", directory=False
        )
        assert started[0].requests == [("GET", "/x")]
    assert (dest / "x").read_bytes() == b"ok"
    assert sleeps == [0.2]


@pytest.fixture
def unanswered() -> Iterator[str]:
    """A URL whose connect times out: a listening socket with a backlog of 0 and one connection
    already queued (never accepted) lets the kernel drop the next handshakes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            yield f"http://127.0.0.1:{port}/x"


def test_connect_timeout_is_retried(unanswered: str, dest: Path) -> None:
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps, timeout=0.1).get(unanswered, dest / "x", directory=False)
    assert info.value.cause == "could not connect: timed out after 0.1s (after 3 attempts)"
    assert sleeps == [0.2, 0.4]
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("after", [None, 100], ids=["before-the-headers", "mid-body"])
def test_read_timeout_is_reported(server: FileServer, dest: Path, after: int | None) -> None:
    # Silent for 3 timeouts: long enough to be noticed, short enough not to slow the teardown.
    url = serve(server, "/in/x", DATA)
    server.stall("/in/x", 0.6, after=after)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps, timeout=0.2).get(url, dest / "x", directory=False)
    assert info.value.cause == "timed out after 0.2s"
    assert server.count("GET", "/in/x") == 1  # not retried
    assert sleeps == []
    assert list(dest.iterdir()) == []


def test_a_slow_body_is_not_a_timeout(server: FileServer, dest: Path) -> None:
    # Reads that keep coming reset the watchdog: a pause shorter than the timeout is fine.
    url = serve(server, "/in/x", DATA)
    server.stall("/in/x", 0.1, after=100)
    getter(timeout=1).get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == DATA


def test_interrupted_download_leaves_nothing(server: FileServer, dest: Path) -> None:
    url = serve(server, "/in/x", DATA)
    server.cut("/in/x", 1000, reset=True)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps).get(url, dest / "x", directory=False)
    assert info.value.cause == "transfer failed: connection reset by peer (after 3 attempts)"
    assert server.count("GET", "/in/x") == 3
    assert list(dest.iterdir()) == []


def test_interrupted_download_keeps_the_old_file(server: FileServer, dest: Path) -> None:
    (dest / "x").write_bytes(b"old")
    url = serve(server, "/in/x", DATA)
    server.cut("/in/x", 1000, reset=True)
    with pytest.raises(StorageError, match="connection reset by peer"):
        getter().get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == b"old"
    assert [p.name for p in dest.iterdir()] == ["x"]


def test_reset_mid_body_then_restart_succeeds(server: FileServer, dest: Path) -> None:
    (dest / "x").write_bytes(b"old")
    url = serve(server, "/in/x", DATA)
    server.cut("/in/x", 1000, reset=True, times=1)
    sleeps: list[float] = []
    getter(sleeps).get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == DATA  # whole: started over, not appended
    assert server.count("GET", "/in/x") == 2
    assert sleeps == [0.2]
    assert [p.name for p in dest.iterdir()] == ["x"]


def test_body_cut_short_is_retried_then_reported(server: FileServer, dest: Path) -> None:
    # A clean close before Content-Length bytes: not a complete (smaller) file.
    url = serve(server, "/in/x", DATA)
    server.cut("/in/x", 1000)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps).get(url, dest / "x", directory=False)
    assert info.value.cause == (
        f"transfer cut short: received 1000 of {len(DATA)} bytes (after 3 attempts)"
    )
    assert server.count("GET", "/in/x") == 3
    assert sleeps == [0.2, 0.4]
    assert list(dest.iterdir()) == []


def test_body_cut_short_once_then_complete(server: FileServer, dest: Path) -> None:
    url = serve(server, "/in/x", DATA)
    server.cut("/in/x", 1000, times=1)
    getter().get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == DATA
    assert server.count("GET", "/in/x") == 2


def test_directory_get_is_refused(server: FileServer, dest: Path) -> None:
    with pytest.raises(StorageError, match="directory inputs cannot be fetched over HTTP"):
        getter().get(f"{server.url}/in/", dest / "x", directory=True)
    assert server.requests == []
    assert list(dest.iterdir()) == []


def test_credentials_are_redacted_in_messages(server: FileServer, dest: Path) -> None:
    serve(server, "/x", b"x")
    server.fail("/x", 404)
    port = server.server_address[1]
    url = f"http://alice:s3cret@127.0.0.1:{port}/x?X-Amz-Signature=abc"
    with pytest.raises(StorageError) as info:
        getter().get(url, dest / "x", directory=False)
    assert "s3cret" not in str(info.value)
    assert "abc" not in str(info.value)
    assert str(info.value) == (
        f"http://***@127.0.0.1:{port}/x?X-Amz-Signature=***: HTTP 404 Not Found"
    )
    # The credentials still went to the server, as basic auth; the signature in the query.
    assert server.headers_of("GET", "/x")[0]["Authorization"] == fetch.basic_auth("alice", "s3cret")
    assert server.received[0].target == "/x?X-Amz-Signature=abc"


def test_credentials_are_redacted_when_the_connection_fails(dest: Path) -> None:
    port = refused_port()
    with pytest.raises(StorageError) as info:
        getter().get(f"http://alice:s3cret@127.0.0.1:{port}/x?sig=abc", dest / "x", directory=False)
    assert str(info.value) == (
        f"http://***@127.0.0.1:{port}/x?sig=***: "
        "could not connect: Connection refused (after 3 attempts)"
    )


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("http:///x", "the URL has no host"),
        ("ftp://h/x", "the URL is not an http:// or https:// URL"),
        ("http://127.0.0.1:notaport/x", "invalid URL: Port could not be cast to integer value"),
    ],
)
def test_get_invalid_url(dest: Path, url: str, cause: str) -> None:
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps).get(url, dest / "x", directory=False)
    assert info.value.cause.startswith(cause)
    assert sleeps == []
    assert list(dest.iterdir()) == []


# --- GET from a raw socket: answers FileServer does not give (chunked, close-delimited, garbage)


@contextlib.contextmanager
def answering(payload: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """A URL whose server answers every request with ``payload`` as is, then closes the
    connection; and the requests it got."""
    requests: list[bytes] = []
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.01)

        def run() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(5)
                    request = b""
                    while b"\r\n\r\n" not in request and (data := conn.recv(65536)):
                        request += data
                    requests.append(request)
                    conn.sendall(payload)
                    conn.shutdown(socket.SHUT_WR)

        thread = threading.Thread(target=run)
        thread.start()
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}/x", requests
        finally:
            stop.set()
            thread.join()


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (CHUNKED + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the connection closes", b"until the connection closes"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b""),
    ],
    ids=["chunked", "close-delimited", "empty"],
)
def test_get_bodies_without_a_length(dest: Path, payload: bytes, expected: bytes) -> None:
    with answering(payload) as (url, requests):
        digest = getter().get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == expected
    assert digest == hashlib.sha256(expected).hexdigest()
    assert len(requests) == 1


def test_chunked_body_cut_short_is_retried_then_reported(dest: Path) -> None:
    sleeps: list[float] = []
    with (
        answering(CHUNKED + b"5\r\nhello\r\n6\r\n wo") as (url, requests),
        pytest.raises(StorageError) as info,
    ):
        getter(sleeps).get(url, dest / "x", directory=False)
    assert info.value.cause == "transfer cut short: received 8 bytes (after 3 attempts)"
    assert len(requests) == 3
    assert sleeps == [0.2, 0.4]
    assert list(dest.iterdir()) == []


def test_an_answer_that_is_not_http(dest: Path) -> None:
    sleeps: list[float] = []
    with (
        answering(b"SSH-2.0-OpenSSH_9.6\r\n") as (url, requests),
        pytest.raises(StorageError) as info,
    ):
        getter(sleeps).get(url, dest / "x", directory=False)
    assert info.value.cause == "not an HTTP answer: 'SSH-2.0-OpenSSH_9.6'"
    assert len(requests) == 1  # garbage would come again: not retried
    assert sleeps == []


# --- GET through a proxy named by the environment (the FileServer plays the proxy) ---


def test_http_proxy_from_the_environment(
    server: FileServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(server, "/in/reads.fq", DATA)
    port = server.server_address[1]
    monkeypatch.setenv("http_proxy", f"http://bob:pr0xy@127.0.0.1:{port}")
    url = "http://alice:pw@files.example.invalid/in/reads.fq?q=1"
    getter().get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == DATA
    [received] = server.received
    # Absolute form, without the user info; that goes as basic auth, the proxy's as its own.
    assert received.target == "http://files.example.invalid/in/reads.fq?q=1"
    assert received.headers["Host"] == "files.example.invalid"
    assert received.headers["Authorization"] == fetch.basic_auth("alice", "pw")
    assert received.headers["Proxy-Authorization"] == fetch.basic_auth("bob", "pr0xy")


def test_all_proxy_from_the_environment(
    server: FileServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(server, "/in/x", b"x")
    monkeypatch.setenv("ALL_PROXY", server.url)
    getter().get("http://files.example.invalid/in/x", dest / "x", directory=False)
    assert [r.target for r in server.received] == ["http://files.example.invalid/in/x"]
    assert server.received[0].headers["Proxy-Authorization"] is None


def test_no_proxy_bypasses_the_proxy(
    server: FileServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy named refuses connections: the download can only succeed without it.
    url = serve(server, "/in/x", b"direct")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{refused_port()}")
    monkeypatch.setenv("no_proxy", "example.org,127.0.0.1")
    sleeps: list[float] = []
    getter(sleeps).get(url, dest / "x", directory=False)
    assert (dest / "x").read_bytes() == b"direct"
    assert [r.target for r in server.received] == ["/in/x"]
    assert sleeps == []


def test_https_through_a_proxy_that_refuses_the_tunnel(
    server: FileServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", server.url)
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps).get("https://files.example.invalid/x", dest / "x", directory=False)
    assert info.value.cause == (
        "could not connect: Tunnel connection failed: 403 Forbidden (after 3 attempts)"
    )
    assert [(r.method, r.target) for r in server.received] == [
        ("CONNECT", "files.example.invalid:443")
    ] * 3
    assert list(dest.iterdir()) == []


def test_unsupported_proxy_scheme(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "socks5://user:pw@127.0.0.1:1080")
    sleeps: list[float] = []
    with pytest.raises(StorageError) as info:
        getter(sleeps).get("https://files.example.invalid/x", dest / "x", directory=False)
    assert info.value.cause == (
        "the proxy socks5://***@127.0.0.1:1080 is not supported: only http:// proxies are"
    )
    assert sleeps == []


# --- stat and put: httpx (MockTransport) ---


def test_unknown_status_code() -> None:
    rec = Recorder(httpx.Response(499))
    with pytest.raises(StorageError, match=r"HTTP 499$"):
        storage(rec).stat(URL)


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
