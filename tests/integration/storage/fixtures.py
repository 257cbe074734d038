"""Real WebDAV, S3 and FTP servers on loopback (servers.py) as pytest fixtures, shared by every
integration test (tests/integration/conftest.py imports them)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TypeVar

import pytest
from tests.integration.storage.servers import (
    FtpArea,
    FtpServer,
    MotoServer,
    ServerMissing,
    WebdavArea,
    WebdavServer,
)

__all__ = [
    "ftp_area",
    "ftp_server",
    "moto_server",
    "s3_bucket",
    "webdav_area",
    "webdav_auth_area",
    "webdav_auth_server",
    "webdav_server",
]

ServerT = TypeVar("ServerT", WebdavServer, FtpServer, MotoServer)


# -- WebDAV, S3 and FTP servers (servers.py) -------------------------------------------------
# Each server is started once per session (each is a child process); every test gets a fresh
# area on it: its own bucket, or its own directory.


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
    """moto's S3; it checks signatures (``.key``/``.secret`` are the valid ones)."""
    server = _started(MotoServer())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    """A new, empty bucket on ``moto_server``."""
    return moto_server.new_bucket()


@pytest.fixture(scope="session")
def webdav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebdavServer]:
    """An anonymous, writable WebDAV server."""
    server = _started(WebdavServer(tmp_path_factory.mktemp("webdav")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def webdav_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebdavServer]:
    """A WebDAV server that wants HTTP basic auth: user ``alice``, password in ``.users``."""
    users = {"alice": "dav-" + secrets.token_hex(8)}
    server = _started(WebdavServer(tmp_path_factory.mktemp("webdav-auth"), users))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    """An FTP server: anonymous (writable), and ``.user`` with ``.password``."""
    server = _started(FtpServer(tmp_path_factory.mktemp("ftp")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def webdav_area(webdav_server: WebdavServer) -> WebdavArea:
    """A fresh directory of this test's own on the anonymous WebDAV server."""
    return webdav_server.area()


@pytest.fixture
def webdav_auth_area(webdav_auth_server: WebdavServer) -> WebdavArea:
    """A fresh directory of this test's own on the WebDAV server with basic auth."""
    return webdav_auth_server.area()


@pytest.fixture
def ftp_area(ftp_server: FtpServer) -> FtpArea:
    """A fresh directory of this test's own on the FTP server."""
    return ftp_server.area()
