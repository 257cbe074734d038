"""webdav:// and webdavs:// URLs (Nextcloud, ownCloud, B2DROP, Apache mod_dav) through webdav4.

``webdav://host[:port]/path`` is reached over http, ``webdavs://`` over https: so
``webdavs://b2drop.eudat.eu/remote.php/webdav/file.txt`` is
``https://b2drop.eudat.eu/remote.php/webdav/file.txt``. An upload goes to a temporary name in the
target's collection and is then MOVEd over the target (``Overwrite: T``), so readers never see
half a file; missing parent collections are made first (MKCOL). Validators are ``getetag`` and
``getlastmodified``. A credential gives a bearer token or basic auth (and any extra headers);
without one, a user name and password in the URL are used, else none.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from webdav4.client import (
    BadGatewayError,
    ClientError,
    ForbiddenOperation,
    HTTPError,
    InsufficientStorage,
    MultiStatusError,
    ResourceConflict,
    ResourceLocked,
    ResourceNotFound,
)
from webdav4.fsspec import WebdavFileSystem

from toolferry import __version__
from toolferry.storage.base import Credential
from toolferry.storage.http import auth_headers
from toolferry.storage.integrity import CHUNK
from toolferry.storage.remote import Entry, Failure, FsspecStorage, SourceReader

__all__ = ["WebdavStorage"]

_TRANSPORT = {"webdav": "http", "webdavs": "https"}
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


class WebdavStorage(FsspecStorage):
    """Files on any WebDAV server (RFC 4918)."""

    schemes: tuple[str, ...] = ("webdav", "webdavs")

    def refusal(self, url: str, *, write: bool) -> str | None:
        parts = urlsplit(url)
        if parts.scheme not in _TRANSPORT:
            return "is not a webdav:// or webdavs:// URL"
        if not parts.hostname:
            return "has no host (webdavs://host/path)"
        try:
            parts.port  # noqa: B018 -- raises for a port that is not a number
        except ValueError:
            return "has an invalid port"
        if parts.query or parts.fragment:
            return "has a query or fragment; percent-encode '?' and '#' in file names"
        return None

    def path(self, url: str) -> str:
        return unquote(urlsplit(url).path).strip("/")

    @contextlib.contextmanager
    def connection(self, url: str, credential: Credential | None) -> Iterator[WebdavFileSystem]:
        parts = urlsplit(url)
        base = f"{_TRANSPORT[parts.scheme]}://{parts.netloc.rpartition('@')[2]}"
        auth: tuple[str, str] | None = None
        if credential is None and parts.username is not None:
            auth = (unquote(parts.username), unquote(parts.password or ""))
        fs = WebdavFileSystem(
            base,
            auth=auth,
            headers={
                "User-Agent": f"toolferry/{__version__}",
                # Files are stored byte for byte; a compressed transfer would need decoding.
                "Accept-Encoding": "identity",
                **auth_headers(credential),
            },
            timeout=self.timeout,
            retry=False,  # retries are ours (toolferry.storage.retry), counted in attempts
            chunk_size=CHUNK,
            skip_instance_cache=True,
        )
        try:
            yield fs
        finally:
            fs.client.http.close()

    def entry(self, info: Mapping[str, Any]) -> Entry:
        modified = info.get("modified")
        if isinstance(modified, datetime):
            # getlastmodified is an RFC 1123 date; webdav4 parses it, this writes it back.
            modified = format_datetime(modified.astimezone(UTC), usegmt=True)
        size = info.get("size")
        return Entry(
            path=str(info["name"]),
            is_dir=info.get("type") == "directory",
            size=size if isinstance(size, int) else -1,
            etag=info.get("etag") or None,
            modified=modified or None,
        )

    def download(
        self, fs: WebdavFileSystem, path: str, write: Callable[[bytes], None]
    ) -> int | None:
        client = fs.client
        with client.http.stream("GET", client.join_url(path), follow_redirects=True) as response:
            if not response.is_success:
                raise HTTPError(response)
            # Raw bytes: the file as the server stores it, never re-encoded.
            for chunk in response.iter_raw(CHUNK):
                write(chunk)
            length = response.headers.get("content-length")
        return int(length) if length is not None and length.isdigit() else None

    def upload(self, fs: WebdavFileSystem, path: str, source: SourceReader) -> None:
        # Streamed with its length announced, not spooled to a temporary file first as
        # WebdavFileSystem.open("wb") would.
        fs.client.upload_fileobj(source, path, overwrite=True, size=source.size, chunk_size=CHUNK)

    def replace(self, fs: WebdavFileSystem, tmp: str, path: str) -> None:
        # WebdavFileSystem.mv copies and deletes; a MOVE is one step on the server.
        fs.client.move(tmp, path, overwrite=True)

    def classify(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, ClientError):
            return _client_error(exc)
        if isinstance(exc, httpx.ConnectTimeout):
            return Failure(f"could not connect: timed out after {self.timeout:g}s", True)
        if isinstance(exc, httpx.ConnectError):
            reason = _ERRNO_PREFIX.sub("", str(exc)) or type(exc).__name__
            return Failure(f"could not connect: {reason.lower()}", True)
        if isinstance(exc, httpx.TimeoutException):
            return Failure(f"timed out after {self.timeout:g}s", True)
        if isinstance(exc, httpx.TransportError):
            reason = _ERRNO_PREFIX.sub("", str(exc)) or type(exc).__name__
            return Failure(f"connection lost: {reason}", True)
        return None


def _client_error(exc: ClientError) -> Failure | None:
    if isinstance(exc, ResourceNotFound):
        return Failure("not found (HTTP 404)")
    if isinstance(exc, InsufficientStorage):
        return Failure("disk full (HTTP 507 Insufficient Storage)")
    if isinstance(exc, BadGatewayError):
        return Failure("HTTP 502 Bad Gateway", True)
    if isinstance(exc, ForbiddenOperation):
        return Failure("access denied (HTTP 403)")
    if isinstance(exc, ResourceConflict):
        return Failure("conflict (HTTP 409): a parent collection is missing or is a file")
    if isinstance(exc, ResourceLocked):
        return Failure("locked (HTTP 423): another client holds a lock on it", True)
    if isinstance(exc, MultiStatusError):
        return Failure(f"the server refused part of the request: {exc}")
    if isinstance(exc, HTTPError):
        return _status(exc.status_code)
    return None


def _status(status: int) -> Failure:
    try:
        text = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        text = f"HTTP {status}"
    if status == 401:
        return Failure(f"login refused ({text}): check the user name and password, or token")
    if status == 403:
        return Failure(f"access denied ({text})")
    if status in (404, 410):
        return Failure(f"not found ({text})")
    if status == 507:
        return Failure(f"disk full ({text})")
    return Failure(text, transient=status == 429 or status >= 500)
