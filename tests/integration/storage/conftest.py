"""Fixtures of the storage integration tests: a real HTTP server, a port nobody listens on.
(The WebDAV, S3 and FTP servers are shared by all integration tests: storage/fixtures.py.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.storage.http_server import FileServer, serving


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    with serving(root) as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nothing listens on (the port was just free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/x"
