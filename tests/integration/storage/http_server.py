"""A real HTTP server on 127.0.0.1 for the storage tests: serves a directory, accepts PUTs.

Scripted misbehaviour per path: failing statuses, redirects, extra headers, bodies cut short or
reset, stalls. Also answers requests in a proxy's absolute form, and refuses CONNECT (403).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["FileServer", "Received", "serving"]


@dataclass(frozen=True)
class Received:
    method: str
    target: str  # as on the request line: a path, an absolute URL (proxied), host:port (CONNECT)
    headers: Message


@dataclass
class _Break:
    after: int  # body bytes sent first
    reset: bool  # a TCP reset rather than a clean close
    stall: float  # seconds of silence instead of breaking (0: break)
    times: int | None


class FileServer(ThreadingHTTPServer):
    """GET/HEAD from ``root``, PUT into it; scripted failures per path; every request recorded."""

    daemon_threads = False  # server_close() then joins the handler threads: nothing outlives a test

    def __init__(self, root: Path, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = root
        self.requests: list[tuple[str, str]] = []
        self.received: list[Received] = []
        # ETag and Last-Modified, as most servers send (off: a server that sends neither).
        self.validators = True
        self._failures: dict[str, list[int]] = {}
        self._always: dict[str, int] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self._breaks: dict[str, _Break] = {}
        self._delays: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, path: str, status: int, *, times: int | None = None) -> None:
        """Answer ``status`` for ``path``: the next ``times`` requests, or always if None."""
        with self._lock:
            if times is None:
                self._always[path] = status
            else:
                self._failures.setdefault(path, []).extend([status] * times)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer GET and HEAD for ``path`` with a redirect to ``location`` (used as given)."""
        with self._lock:
            self._redirects[path] = (status, location)

    def add_headers(self, path: str, headers: dict[str, str]) -> None:
        """Send these headers too with ``path``'s file."""
        with self._lock:
            self._headers[path] = headers

    def cut(self, path: str, after: int, *, reset: bool = False, times: int | None = None) -> None:
        """Send the full Content-Length but only ``after`` bytes of the body, then close the
        connection (a TCP reset with ``reset``): the next ``times`` GETs, or always if None."""
        with self._lock:
            self._breaks[path] = _Break(after, reset, 0, times)

    def stall(self, path: str, seconds: float, *, after: int | None = None) -> None:
        """Stay silent for ``seconds`` before answering, or with ``after``, after that many bytes
        of the body (then send the rest)."""
        with self._lock:
            if after is None:
                self._delays[path] = seconds
            else:
                self._breaks[path] = _Break(after, False, seconds, None)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.requests.count((method, path))

    def headers_of(self, method: str, path: str) -> list[Message]:
        """The headers of every ``method`` request for ``path``, in order."""
        with self._lock:
            return [
                r.headers for r in self.received if (r.method, _path_of(r.target)) == (method, path)
            ]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timed out, say) is what some tests are about

    def _record(self, method: str, path: str, received: Received) -> int | None:
        """Remember the request; the status to fail it with, if any."""
        with self._lock:
            self.requests.append((method, path))
            self.received.append(received)
            queued = self._failures.get(path)
            if queued:
                return queued.pop(0)
            return self._always.get(path)


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def _path(self) -> str:
        return _path_of(self.path)

    def _local(self) -> Path:
        return self.server.root / self._path().lstrip("/")

    def _failed(self, method: str) -> bool:
        received = Received(method, self.path, self.headers)
        status = self.server._record(method, self._path(), received)
        if status is None:
            return False
        self._drain()
        self.send_error(status)
        return True

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _answer_file(self, method: str) -> None:
        if self._failed(method):
            return
        server = self.server
        with server._lock:
            delay = server._delays.get(self._path(), 0)
            redirect = server._redirects.get(self._path())
            extra = server._headers.get(self._path(), {})
            broken = server._breaks.get(self._path()) if method == "GET" else None
            if broken is not None and broken.times is not None:
                broken.times -= 1
                if broken.times <= 0:
                    del server._breaks[self._path()]
        time.sleep(delay)
        if redirect is not None:
            self.send_response(redirect[0])
            self.send_header("Location", redirect[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self._local()
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        st = path.stat()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(st.st_size))
        if self.server.validators:
            self.send_header("ETag", f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"')
            self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "GET":
            return
        with path.open("rb") as fh:
            if broken is None:
                shutil.copyfileobj(fh, self.wfile)
                return
            self.wfile.write(fh.read(broken.after))
            if broken.stall:
                time.sleep(broken.stall)
                shutil.copyfileobj(fh, self.wfile)
                return
        self.close_connection = True
        if broken.reset:
            # Linger 0: close() sends a reset. The reader's reference would delay the close.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_WR)

    def do_CONNECT(self) -> None:
        """A proxy that allows no tunnels (recorded, then refused)."""
        self.server._record("CONNECT", self.path, Received("CONNECT", self.path, self.headers))
        self.send_error(HTTPStatus.FORBIDDEN)

    def do_GET(self) -> None:
        self._answer_file("GET")

    def do_HEAD(self) -> None:
        self._answer_file("HEAD")

    def do_PUT(self) -> None:
        if self._failed("PUT"):
            return
        path = self._local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    fh.write(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
            else:
                fh.write(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(HTTPStatus.CREATED)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _path_of(target: str) -> str:
    """The path a request line names (the same for a proxy's absolute form)."""
    return unquote(urlsplit(target).path)


@contextlib.contextmanager
def serving(root: Path, port: int = 0) -> Iterator[FileServer]:
    """A :class:`FileServer` for ``root`` answering on a thread; shut down and joined after."""
    server = FileServer(root, port=port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()  # joins the handler threads too (daemon_threads is off)
        thread.join()
