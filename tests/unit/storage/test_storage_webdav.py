"""webdav:// and webdavs:// URLs (storage/webdav.py): URL shape, connections, listings and error
causes, offline. Transfers against a real WebDAV server are in tests/integration/storage."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from webdav4.client import (
    BadGatewayError,
    ForbiddenOperation,
    HTTPError,
    InsufficientStorage,
    ResourceConflict,
    ResourceLocked,
    ResourceNotFound,
)

from toolferry.storage.base import Credential, Operation
from toolferry.storage.redact import redact
from toolferry.storage.remote import Failure
from toolferry.storage.webdav import WebdavStorage


@pytest.fixture
def dav() -> WebdavStorage:
    return WebdavStorage(timeout=9, attempts=2)


def test_declares_every_operation(dav: WebdavStorage) -> None:
    assert dav.schemes == ("webdav", "webdavs")
    assert dav.operations == frozenset(Operation)


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("webdavs://b2drop.eudat.eu/remote.php/webdav/file.txt", None),
        ("webdav://127.0.0.1:8080/a%20b/", None),
        ("webdav://host", None),
        ("https://host/x", "is not a webdav:// or webdavs:// URL"),
        ("webdav:///x", "has no host (webdavs://host/path)"),
        ("webdav://host:port/x", "has an invalid port"),
        ("webdav://host/x?y=1", "has a query or fragment"),
    ],
)
def test_supports(dav: WebdavStorage, url: str, refusal: str | None) -> None:
    answer = dav.supports(url, write=False)
    if refusal is None:
        assert answer is None
    else:
        assert answer is not None and answer.startswith(f"{redact(url)} {refusal}")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("webdavs://b2drop.eudat.eu/remote.php/webdav/file.txt", "remote.php/webdav/file.txt"),
        ("webdav://h/a%20b/%C3%BC/", "a b/ü"),
        ("webdav://h", ""),
    ],
)
def test_path(dav: WebdavStorage, url: str, path: str) -> None:
    assert dav.path(url) == path


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_webdavs_is_https_and_a_token_is_a_bearer(dav: WebdavStorage) -> None:
    credential = Credential(prefix="webdavs://", token="tok-123456")
    with dav.connection("webdavs://host:8443/remote.php/webdav/x", credential) as fs:
        assert str(fs.client.base_url) == "https://host:8443"
        headers = fs.client.http.headers
        assert headers["authorization"] == "Bearer tok-123456"
        assert headers["accept-encoding"] == "identity"
        assert fs.client.http.timeout == httpx.Timeout(9)


def test_webdav_is_http_with_basic_auth(dav: WebdavStorage) -> None:
    credential = Credential(prefix="webdav://", username="alice", password="pw-1234")
    with dav.connection("webdav://host/x", credential) as fs:
        assert str(fs.client.base_url) == "http://host"
        assert fs.client.http.headers["authorization"] == basic("alice", "pw-1234")


def test_the_urls_user_and_password_serve_when_no_credential_does(dav: WebdavStorage) -> None:
    with dav.connection("webdav://al%40ice:p%3Aw@host/x", None) as fs:
        assert str(fs.client.base_url) == "http://host"  # not in the URL sent
        request = httpx.Request("GET", "http://host/x")
        flow = fs.client.http.auth.auth_flow(request)
        assert next(flow).headers["authorization"] == basic("al@ice", "p:w")


def test_connections_are_not_shared(dav: WebdavStorage) -> None:
    alice = Credential(prefix="webdav://", username="alice", password="pw-alice")
    bob = Credential(prefix="webdav://", username="bob", password="pw-bob-1")
    with dav.connection("webdav://h/x", alice) as a, dav.connection("webdav://h/x", bob) as b:
        assert a is not b
        assert a.client.http.headers["authorization"] != b.client.http.headers["authorization"]


def test_webdav4s_own_retries_are_off(dav: WebdavStorage) -> None:
    calls = []

    def failing() -> None:
        calls.append(1)
        raise BadGatewayError

    with dav.connection("webdav://h/x", None) as fs, pytest.raises(BadGatewayError):
        fs.client.with_retry(failing)
    assert calls == [1]


def test_entry_writes_getlastmodified_back_as_an_http_date(dav: WebdavStorage) -> None:
    when = datetime(2024, 5, 6, 9, 10, 11, tzinfo=timezone(timedelta(hours=2)))
    entry = dav.entry(
        {"name": "a/b.txt", "type": "file", "size": 4, "etag": '"e1"', "modified": when}
    )
    assert (entry.path, entry.is_dir, entry.size) == ("a/b.txt", False, 4)
    assert (entry.etag, entry.modified) == ('"e1"', "Mon, 06 May 2024 07:10:11 GMT")


def test_entry_of_a_collection(dav: WebdavStorage) -> None:
    entry = dav.entry(
        {"name": "a", "type": "directory", "size": None, "etag": None, "modified": None}
    )
    assert (entry.is_dir, entry.size, entry.etag, entry.modified) == (True, -1, None, None)


def http_error(status: int) -> HTTPError:
    return HTTPError(httpx.Response(status, request=httpx.Request("GET", "http://h/x")))


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (ResourceNotFound("x"), Failure("not found (HTTP 404)")),
        (InsufficientStorage("x"), Failure("disk full (HTTP 507 Insufficient Storage)")),
        (BadGatewayError(), Failure("HTTP 502 Bad Gateway", True)),
        (ForbiddenOperation("same source and destination"), Failure("access denied (HTTP 403)")),
        (
            ResourceConflict("conflict"),
            Failure("conflict (HTTP 409): a parent collection is missing or is a file"),
        ),
        (
            ResourceLocked("locked"),
            Failure("locked (HTTP 423): another client holds a lock on it", True),
        ),
        (
            http_error(401),
            Failure(
                "login refused (HTTP 401 Unauthorized): check the user name and password, or token"
            ),
        ),
        (http_error(403), Failure("access denied (HTTP 403 Forbidden)")),
        (http_error(404), Failure("not found (HTTP 404 Not Found)")),
        (http_error(507), Failure("disk full (HTTP 507 Insufficient Storage)")),
        (http_error(503), Failure("HTTP 503 Service Unavailable", True)),
        (http_error(429), Failure("HTTP 429 Too Many Requests", True)),
        (http_error(405), Failure("HTTP 405 Method Not Allowed")),
        (http_error(599), Failure("HTTP 599", True)),
    ],
)
def test_server_answers(dav: WebdavStorage, error: Exception, failure: Failure) -> None:
    assert dav.classify(error) == failure


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            Failure("could not connect: connection refused", True),
        ),
        (httpx.ConnectTimeout("timed out"), Failure("could not connect: timed out after 9s", True)),
        (httpx.ReadTimeout("timed out"), Failure("timed out after 9s", True)),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            Failure("connection lost: Server disconnected without sending a response.", True),
        ),
    ],
)
def test_transport_failures(dav: WebdavStorage, error: Exception, failure: Failure) -> None:
    assert dav.classify(error) == failure


def test_a_translated_error_is_read_through(dav: WebdavStorage) -> None:
    try:
        try:
            raise ResourceNotFound("a/b")
        except ResourceNotFound as exc:
            raise FileNotFoundError("a/b") from exc
    except FileNotFoundError as translated:
        assert dav.failure(translated) == Failure("not found (HTTP 404)")
