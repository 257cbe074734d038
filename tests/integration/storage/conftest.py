"""Fixtures of the storage integration tests: real HTTP, WebDAV, S3 and FTP servers on loopback,
and a port nobody listens on."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from tests.integration.storage.http_server import FileServer
from tests.integration.storage.servers import FtpServer, MotoServer, ServerMissing, WebdavServer

ServerT = TypeVar("ServerT", WebdavServer, FtpServer, MotoServer)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    server = FileServer(root)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nothing listens on (the port was just free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/x"


# -- WebDAV, S3 and FTP servers (servers.py) -------------------------------------------------


def _started(server: ServerT) -> ServerT:
    """``server``, started; a missing server package fails the test with how to install it."""
    try:
        server.start()
    except ServerMissing as exc:
        problem = str(exc)
    except BaseException:
        server.stop()  # whatever part of it did start
        raise
    else:
        return server
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's S3 in a child process, for the whole session (it takes a second or two to start);
    tests keep apart by taking a fresh bucket each (``s3_bucket``)."""
    server = _started(MotoServer())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    """A new, empty bucket on ``moto_server``."""
    return moto_server.new_bucket()


@pytest.fixture
def webdav_server(tmp_path: Path) -> Iterator[WebdavServer]:
    """An anonymous, writable WebDAV server over a fresh directory."""
    root = tmp_path / "webdav"
    root.mkdir()
    server = _started(WebdavServer(root))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def webdav_auth_server(tmp_path: Path) -> Iterator[WebdavServer]:
    """A WebDAV server that wants HTTP basic auth: user ``alice``, password in ``.users``."""
    root = tmp_path / "webdav-auth"
    root.mkdir()
    server = _started(WebdavServer(root, {"alice": "dav-" + secrets.token_hex(8)}))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    """An FTP server over a fresh directory: anonymous (writable) and ``.user``/``.password``."""
    root = tmp_path / "ftp"
    root.mkdir()
    server = _started(FtpServer(root))
    try:
        yield server
    finally:
        server.stop()
