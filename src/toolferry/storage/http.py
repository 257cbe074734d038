"""http:// and https:// URLs: GET downloads, PUT uploads, HEAD stats; transient failures retried.

Connection failures, 5xx and 429 answers are retried with a short exponential backoff; any other
failure is reported at once as a :class:`StorageError` whose cause is in words ("HTTP 404 Not
Found", "could not connect: connection refused", "timed out after 60s"). Downloads stream to a
temporary file beside the destination and replace it only when complete.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import httpx

from toolferry import __version__
from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.file import (
    inside,
    join_url,
    os_cause,
    replacing,
    require_dir,
    require_file,
    walk_tree,
)
from toolferry.storage.integrity import CHUNK, HashingWriter
from toolferry.storage.redact import redact

__all__ = ["HttpStatusError", "HttpStorage"]

_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")

# httpcore reads 64 KiB per recv; 1 MiB reads cut the CPU time of a large download by half
# (measured: 1 GiB over loopback in 1.4 s instead of 2.6 s). A class attribute of httpcore's,
# so guarded: an httpcore without it keeps its default.
with contextlib.suppress(ImportError, AttributeError):
    from httpcore._sync.http11 import HTTP11Connection

    HTTP11Connection.READ_NUM_BYTES = max(HTTP11Connection.READ_NUM_BYTES, CHUNK)


class HttpStatusError(StorageError):
    """The server answered with a non-2xx status (kept so callers can tell 404 from 503)."""

    def __init__(self, url: str, status: int, cause: str) -> None:
        super().__init__(url, cause)
        self.status = status


class HttpStorage:
    """Plain HTTP(S) servers, pre-signed object-store URLs and anything else that speaks GET/PUT."""

    schemes: tuple[str, ...] = ("http", "https")
    # HTTP has no listing: a DIRECTORY input cannot be fetched (a directory output is a PUT
    # per file).
    operations: frozenset[Operation] = frozenset(Operation) - {Operation.GET_DIRECTORY}

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60,
        *,
        backoff: Sequence[float] = (0.2, 0.4),
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``headers`` go with every request; one attempt more than ``backoff`` has delays.

        ``sleep`` and ``transport`` exist for tests (``httpx.MockTransport``); a transport given
        here must survive being closed, as each operation opens and closes its own client.
        """
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.backoff = tuple(backoff)
        self._sleep = sleep
        self._transport = transport

    def supports(self, url: str, *, write: bool) -> str | None:
        refusal = _refusal(url)
        return None if refusal is None else f"{redact(url)} {refusal}"

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        _require_valid(url)
        with self._client(credential) as client:
            try:
                response = self._send(client, "HEAD", url)
            except HttpStatusError as exc:
                # Pre-signed GET URLs refuse HEAD (the signature covers the method); so do some
                # servers. The headers of a GET answer the same question.
                if exc.status not in (403, 405, 501):
                    raise
                response = self._send(client, "GET", url)
            response.close()
        try:
            size = int(response.headers["content-length"])
        except (KeyError, ValueError):
            size = -1
        return ObjectInfo(
            url=url,
            size=size,
            etag=response.headers.get("etag"),
            modified=response.headers.get("last-modified"),
        )

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        if directory:
            raise StorageError(redact(url), "directory inputs cannot be fetched over HTTP")
        _require_valid(url)
        with self._client(credential) as client:
            response = self._send(client, "GET", url)
            try:
                with self._errors(url), replacing(dest) as tmp:
                    with tmp.open("wb") as fh, HashingWriter(fh) as out:
                        # Raw bytes: the file as the server stores it, never re-encoded.
                        # Chunks as they arrive (up to CHUNK): re-chunking would copy each.
                        for chunk in response.iter_raw():
                            out.write(chunk)
                        digest = out.hexdigest()
                    _check_length(url, response, out.size)
                    # mkstemp makes it 0600; a container running as another user must read it.
                    os.chmod(tmp, 0o644)
            finally:
                response.close()
        return digest

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        _require_valid(url)
        if directory:
            require_dir(url, src)
            with self._errors(url):
                files = [
                    (join_url(url, rel), src / rel, source)
                    for rel, source, is_dir in walk_tree(url, src, may_follow=inside(src))
                    if not is_dir
                ]
        else:
            require_file(url, src)
            files = [(url, src, src)]
        with self._client(credential) as client:
            return [
                Uploaded(url=target, path=path, size=self._put_file(client, source, target))
                for target, path, source in files
            ]

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        """HTTP has no listing: a URL lists as the one object it names."""
        return [self.stat(url, credential=credential)]

    def _put_file(self, client: httpx.Client, source: Path, url: str) -> int:
        with self._errors(url):
            size = source.stat().st_size
        self._send(client, "PUT", url, body=source).close()
        return size

    def _client(self, credential: Credential | None = None) -> httpx.Client:
        headers = {
            "User-Agent": f"toolferry/{__version__}",
            # Downloads are stored byte for byte; a compressed transfer would need decoding.
            "Accept-Encoding": "identity",
            **self.headers,
            **auth_headers(credential),
        }
        return httpx.Client(
            headers=headers, timeout=self.timeout, transport=self._transport, verify=_tls()
        )

    def _send(
        self, client: httpx.Client, method: str, url: str, *, body: Path | None = None
    ) -> httpx.Response:
        """A 2xx response, body not yet read (the caller closes it); retries what is transient."""
        attempts = len(self.backoff) + 1
        for attempt in range(1, attempts + 1):
            final = attempt == attempts
            after = f" (after {attempt} attempts)" if attempt > 1 else ""
            try:
                with self._errors(url, connect_retryable=True), contextlib.ExitStack() as stack:
                    content = stack.enter_context(body.open("rb")) if body is not None else None
                    request = client.build_request(method, url, content=content)
                    # A streamed body cannot be replayed: only bodiless requests follow redirects.
                    response = client.send(
                        request, stream=body is None, follow_redirects=body is None
                    )
            except _ConnectFailed as exc:
                if final:
                    raise StorageError(redact(url), exc.cause + after) from exc.__cause__
            else:
                if response.is_success:
                    return response
                response.close()
                status = response.status_code
                if final or not (status == 429 or status >= 500):
                    raise HttpStatusError(redact(url), status, _status_text(response) + after)
            self._sleep(self.backoff[attempt - 1])
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _errors(self, url: str, *, connect_retryable: bool = False) -> Iterator[None]:
        """Translate httpx and OS errors into :class:`StorageError` with the cause in words.

        With ``connect_retryable``, a failure to connect comes out as :class:`_ConnectFailed`.
        """
        shown = redact(url)

        def unconnected(cause: str) -> Exception:
            return _ConnectFailed(cause) if connect_retryable else StorageError(shown, cause)

        try:
            yield
        except httpx.ConnectError as exc:
            reason = _ERRNO_PREFIX.sub("", str(exc)) or type(exc).__name__
            raise unconnected(f"could not connect: {redact(reason)}") from exc
        except httpx.ConnectTimeout as exc:
            raise unconnected(f"could not connect: timed out after {self.timeout:g}s") from exc
        except httpx.TimeoutException as exc:
            raise StorageError(shown, f"timed out after {self.timeout:g}s") from exc
        except httpx.TooManyRedirects as exc:
            raise StorageError(shown, "too many redirects") from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise StorageError(shown, f"transfer failed: {redact(reason)}") from exc
        except httpx.InvalidURL as exc:
            raise StorageError(shown, f"invalid URL: {redact(str(exc))}") from exc
        except OSError as exc:
            raise StorageError(shown, os_cause(exc)) from exc


class _ConnectFailed(Exception):
    """No connection was made: worth another attempt."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~40 ms, more than a whole
    cache hit (a HEAD and a hard link) otherwise takes."""
    return ssl.create_default_context(cafile=certifi.where())


def auth_headers(credential: Credential | None) -> dict[str, str]:
    """The HTTP headers a credential stands for (bearer token, basic auth, extra headers)."""
    if credential is None:
        return {}
    headers = dict(credential.headers)
    if credential.token:
        headers["Authorization"] = f"Bearer {credential.token}"
    elif credential.username is not None:
        basic = httpx.BasicAuth(credential.username, credential.password or "")
        request = httpx.Request("GET", "http://x")
        headers["Authorization"] = next(basic.auth_flow(request)).headers["Authorization"]
    return headers


def _check_length(url: str, response: httpx.Response, received: int) -> None:
    """A connection cut short must not pass for a complete (smaller) file."""
    expected = response.headers.get("content-length")
    if expected is not None and expected.isdigit() and int(expected) != received:
        raise StorageError(
            redact(url), f"transfer cut short: received {received} of {expected} bytes"
        )


def _refusal(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in HttpStorage.schemes:
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    return None


def _require_valid(url: str) -> None:
    refusal = _refusal(url)
    if refusal is not None:
        raise StorageError(redact(url), f"the URL {refusal}")


def _status_text(response: httpx.Response) -> str:
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = response.reason_phrase
    return f"HTTP {response.status_code} {phrase}".rstrip()
