"""A real HTTP server on 127.0.0.1 for the storage tests: serves a directory, accepts PUTs."""

from __future__ import annotations

import shutil
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["FileServer"]


class FileServer(ThreadingHTTPServer):
    """GET/HEAD from ``root``, PUT into it; scripted failures per path; every request recorded."""

    daemon_threads = False  # server_close() then joins the handler threads: nothing outlives a test

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.requests: list[tuple[str, str]] = []
        # ETag and Last-Modified, as most servers send (off: a server that sends neither).
        self.validators = True
        self._failures: dict[str, list[int]] = {}
        self._always: dict[str, int] = {}
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

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.requests.count((method, path))

    def _record(self, method: str, path: str) -> int | None:
        """Remember the request; the status to fail it with, if any."""
        with self._lock:
            self.requests.append((method, path))
            queued = self._failures.get(path)
            if queued:
                return queued.pop(0)
            return self._always.get(path)


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def _path(self) -> str:
        return unquote(urlsplit(self.path).path)

    def _local(self) -> Path:
        return self.server.root / self._path().lstrip("/")

    def _failed(self, method: str) -> bool:
        status = self.server._record(method, self._path())
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
        self.end_headers()
        if method == "GET":
            with path.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile)

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
