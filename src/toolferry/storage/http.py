"""http:// and https:// URLs: GET downloads, PUT uploads, HEAD stats; transient failures retried.

Connection failures, 5xx and 429 answers are retried with a short exponential backoff, and so is
a download whose connection breaks mid-body (it starts over); any other failure is reported at
once as a :class:`StorageError` whose cause is in words ("HTTP 404 Not Found", "could not
connect: Connection refused", "timed out after 60s"). Downloads stream to a temporary file
beside the destination and replace it only when complete.

Downloads go through the standard library's ``http.client`` (:mod:`toolferry.storage.fetch`:
it leaves the CPU to the sha256 thread); HEAD and PUT through httpx. Both honour proxies from
the environment (``http_proxy``, ``https_proxy``, ``all_proxy``, ``no_proxy``).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
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
from toolferry.storage import fetch
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
        headers = self._headers(credential)
        attempts = len(self.backoff) + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._download(url, dest, headers)
            except _Transient as exc:
                if attempt == attempts:
                    after = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise exc.error(after) from exc.__cause__
            self._sleep(self.backoff[attempt - 1])
        raise AssertionError("unreachable")  # pragma: no cover

    def _download(self, url: str, dest: Path, headers: Mapping[str, str]) -> str:
        """One attempt: the sha256 of what landed at ``dest``; :class:`_Transient` if worth
        another."""
        shown = redact(url)
        try:
            answer = fetch.open_get(url, headers, timeout=self.timeout, context=_tls())
        except (fetch.ConnectFailed, fetch.FetchError, OSError, http.client.HTTPException) as exc:
            raise self._failure(shown, exc) from exc
        with answer:
            status = answer.status
            if not 200 <= status < 300:
                text = _status_text(status, answer.reason)
                if status == 429 or status >= 500:
                    raise _Transient(lambda after: HttpStatusError(shown, status, text + after))
                raise HttpStatusError(shown, status, text)
            expected = answer.headers.get("Content-Length", "")
            buffer = bytearray(CHUNK)
            view = memoryview(buffer)
            readinto1 = answer.readinto1
            try:
                with answer.body(), replacing(dest) as tmp:
                    # "r+b", not "wb": mkstemp made it empty, and ext4 answers a truncation to 0
                    # by writing the whole file out at close (auto_da_alloc): +0.4 s per GiB.
                    with tmp.open("r+b") as fh, HashingWriter(fh) as out:
                        # Raw bytes: the file as the server stores it. One buffer, refilled
                        # with what each read of the socket brings: no copy but into the file.
                        while True:
                            try:
                                count = readinto1(view)
                            except (OSError, http.client.HTTPException) as exc:
                                raise self._body_failure(shown, exc, out.size, expected) from exc
                            if not count:
                                break
                            out.write(view[:count])
                        digest = out.hexdigest()
                    if expected.isdigit() and int(expected) != out.size:
                        # A connection cut short must not pass for a complete (smaller) file.
                        raise _Transient.cause(
                            shown, f"transfer cut short: received {out.size} of {expected} bytes"
                        )
                    # mkstemp makes it 0600; a container running as another user must read it.
                    os.chmod(tmp, 0o644)
            except OSError as exc:  # the local file's: the network's are translated above
                raise StorageError(shown, os_cause(exc)) from exc
        return digest

    def _failure(self, shown: str, exc: Exception) -> StorageError | _Transient:
        """What a failure before the body becomes: :class:`_Transient` if worth another try."""
        if isinstance(exc, fetch.ConnectFailed):
            error = exc.error
            if isinstance(error, TimeoutError):
                cause = f"could not connect: timed out after {self.timeout:g}s"
            else:
                cause = f"could not connect: {redact(_words(error))}"
            return _Transient.cause(shown, cause)
        if isinstance(exc, fetch.FetchError):
            return StorageError(shown, exc.cause)
        if isinstance(exc, TimeoutError):
            return StorageError(shown, f"timed out after {self.timeout:g}s")
        if isinstance(exc, http.client.InvalidURL):
            return StorageError(shown, f"invalid URL: {redact(str(exc))}")
        if isinstance(exc, http.client.BadStatusLine) and not isinstance(exc, ConnectionError):
            # Not HTTP (a TLS or SSH port, say): the line as sent, within reason.
            line = str(exc).strip()
            return StorageError(shown, f"not an HTTP answer: {redact(line[:80])!r}")
        cause = f"transfer failed: {redact(_words(exc, lower=True))}"
        # The connection dropped (reset, closed before answering): the server may be restarting.
        if isinstance(exc, ConnectionError):
            return _Transient.cause(shown, cause)
        return StorageError(shown, cause)

    def _body_failure(
        self, shown: str, exc: Exception, received: int, expected: str
    ) -> StorageError | _Transient:
        """What a failure to read the body becomes: all but a timeout or garbage start over."""
        if isinstance(exc, TimeoutError):
            return StorageError(shown, f"timed out after {self.timeout:g}s")
        if isinstance(exc, http.client.IncompleteRead):  # a chunked body cut short
            of = f" of {expected}" if expected.isdigit() else ""
            return _Transient.cause(shown, f"transfer cut short: received {received}{of} bytes")
        cause = f"transfer failed: {redact(_words(exc, lower=True))}"
        # A network error mid-body (reset, unreachable): start over. Garbage (a malformed chunk)
        # would come again.
        return (
            _Transient.cause(shown, cause)
            if isinstance(exc, OSError)
            else StorageError(shown, cause)
        )

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

    def _headers(self, credential: Credential | None) -> dict[str, str]:
        return {
            "User-Agent": f"toolferry/{__version__}",
            # Downloads are stored byte for byte; a compressed transfer would need decoding.
            "Accept-Encoding": "identity",
            **self.headers,
            **auth_headers(credential),
        }

    def _client(self, credential: Credential | None = None) -> httpx.Client:
        return httpx.Client(
            headers=self._headers(credential),
            timeout=self.timeout,
            transport=self._transport,
            verify=_tls(),
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
                    text = _status_text(status, response.reason_phrase)
                    raise HttpStatusError(redact(url), status, text + after)
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


class _Transient(Exception):
    """A failed attempt worth another; ``error(after)`` is the error to report if none is left."""

    def __init__(self, error: Callable[[str], StorageError]) -> None:
        super().__init__()
        self.error = error

    @classmethod
    def cause(cls, shown: str, cause: str) -> _Transient:
        return cls(lambda after: StorageError(shown, cause + after))


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
        headers["Authorization"] = fetch.basic_auth(credential.username, credential.password or "")
    return headers


def _words(exc: BaseException, *, lower: bool = False) -> str:
    """An exception's message without its "[Errno N]" prefix (the class name if it has none).

    Stripped: http.client's BadStatusLine is the line the server sent, CRLF and all."""
    words = _ERRNO_PREFIX.sub("", str(exc)).strip() or type(exc).__name__
    return words[:1].lower() + words[1:] if lower else words


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


def _status_text(status: int, reason: str) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = reason
    return f"HTTP {status} {phrase}".rstrip()
