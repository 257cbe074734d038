"""One HTTP(S) GET over the standard library's ``http.client``, redirects followed: the download
path of :class:`~toolferry.storage.http.HttpStorage` (its HEAD and PUT stay on httpx).

Why not httpx for downloads: on a 2-core machine the Python work h11/httpcore does per read
competes for the CPU (and the GIL) with the thread that hashes the download behind the writer.
``HTTPResponse.readinto`` fills one reused buffer with next to no Python work per byte
(measured, 1 GiB over loopback with sha256: httpx 2.2 s, http.client 1.3 s, curl 1.2 s).

Redirects (301, 302, 303, 307, 308; relative ``Location`` too) are followed up to
:data:`MAX_REDIRECTS` times, always as GET; ``Authorization`` is dropped when a redirect leaves
the origin (scheme, host and port), except for an upgrade from http:// to https:// on the same
host. User info in the URL becomes basic auth, as httpx makes it.

Proxies from the environment are honoured as httpx honours them: ``http_proxy``,
``https_proxy``, ``all_proxy`` and ``no_proxy`` (either case), via
:func:`urllib.request.getproxies` and :func:`urllib.request.proxy_bypass`. Only http:// proxies
are supported: an http:// URL is requested from the proxy in absolute form, an https:// URL is
tunnelled through it with CONNECT. Proxy user info becomes ``Proxy-Authorization``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from email.message import Message
from urllib.parse import quote, unquote, urljoin, urlsplit

from toolferry.storage.redact import redact

__all__ = [
    "MAX_REDIRECTS",
    "ConnectFailed",
    "FetchError",
    "Fetched",
    "basic_auth",
    "open_get",
]

MAX_REDIRECTS = 20
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What may stay unescaped in a request target: RFC 3986 reserved and unreserved characters,
# and "%" (the URL may be escaped already). Spaces and non-ASCII are escaped, as httpx does.
_SAFE = "!#$%&'()*+,/:;=?@[]~"


class ConnectFailed(Exception):
    """No connection was made (refused, unresolvable, timed out, TLS handshake, proxy tunnel).

    ``error`` is the :class:`OSError` that says why.
    """

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class FetchError(Exception):
    """A failure that another attempt would not cure; ``cause`` is in words, URLs redacted."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class Fetched:
    """The final (non-redirect) answer to a GET: status and headers read, the body not yet.

    Read the body with :meth:`readinto1` inside ``with fetched.body():``; the caller closes it
    (it owns a connection).
    """

    def __init__(
        self,
        url: str,
        connection: http.client.HTTPConnection,
        sock: socket.socket,
        response: http.client.HTTPResponse,
        timeout: float,
    ) -> None:
        self.url = url
        self._connection = connection
        self._sock = sock
        self._response = response
        self._timeout = timeout
        self.status: int = response.status
        self.reason: str = response.reason
        self.headers: Message = response.headers
        self._reads = 0
        self._timed_out = False

    @contextlib.contextmanager
    def body(self) -> Iterator[None]:
        """Read the body on a blocking socket, watched for stalls by a helper thread.

        A socket with a timeout polls before every read, and each poll hands the GIL over: on 2
        cores, with the hashing thread, that alone made a 1 GiB download 1.9 s instead of 1.2 s.
        So the socket blocks, and a watchdog shuts it down when no read has returned for
        ``timeout`` seconds (noticed within a quarter of that), which :meth:`readinto1` reports
        as :class:`TimeoutError`.
        """
        stop = threading.Event()
        watchdog = threading.Thread(target=self._watch, args=(stop,), name="http-watchdog")
        self._sock.settimeout(None)
        watchdog.start()
        try:
            yield
        finally:
            stop.set()
            watchdog.join()  # before the socket closes: its number may be reused at once

    def _watch(self, stop: threading.Event) -> None:
        seen, since = self._reads, time.monotonic()
        while not stop.wait(self._timeout / 4):
            now = time.monotonic()
            if self._reads != seen:
                seen, since = self._reads, now
            elif now - since >= self._timeout:
                self._timed_out = True
                with contextlib.suppress(OSError):
                    # The plain socket's shutdown, also under TLS: it wakes the blocked read.
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
                return

    def readinto1(self, buffer: memoryview) -> int:
        """Up to ``len(buffer)`` bytes of the body as they arrive (one read of the socket); 0 at
        the end. The bytes as sent: a Content-Encoding is not undone."""
        response = self._response
        try:
            if response.chunked:  # rare for files: http.client decodes the chunks, then a copy
                data = response.read1(len(buffer))
                count = len(data)
                buffer[:count] = data
            else:
                # HTTPResponse.read1 without its allocation: into the caller's buffer.
                if response.length is not None and len(buffer) > response.length:
                    buffer = buffer[: response.length]
                count = response.fp.readinto1(buffer) if buffer and response.fp else 0
                if response.length is not None:
                    response.length -= count
        except (OSError, http.client.HTTPException):
            if self._timed_out:
                raise TimeoutError("timed out") from None
            raise
        if not count and self._timed_out:
            raise TimeoutError("timed out")
        self._reads += 1
        return count

    def close(self) -> None:
        self._response.close()
        self._connection.close()

    def __enter__(self) -> Fetched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` value for HTTP basic auth (UTF-8, as httpx encodes it)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def open_get(
    url: str, headers: Mapping[str, str], *, timeout: float, context: ssl.SSLContext
) -> Fetched:
    """GET ``url`` with ``headers``, following redirects; the final answer, body unread.

    Raises :class:`ConnectFailed` when a connection cannot be made, :class:`FetchError` for too
    many redirects, a redirect or proxy that cannot be followed, or an invalid URL; anything
    else (:class:`OSError`, :class:`http.client.HTTPException`) as the standard library raises
    it, once a connection was made.
    """
    sent = dict(headers)
    parts = urlsplit(url)
    if parts.username or parts.password:
        _set(
            sent,
            "Authorization",
            basic_auth(unquote(parts.username or ""), unquote(parts.password or "")),
        )
    for hop in range(MAX_REDIRECTS + 1):
        fetched = _request(url, sent, timeout=timeout, context=context)
        location = fetched.headers.get("Location")
        if fetched.status not in _REDIRECTS or location is None:
            return fetched
        fetched.close()
        if hop == MAX_REDIRECTS:
            break
        target = urljoin(url, location.strip())
        if _refusal(target):
            raise FetchError(f"redirected to an unsupported URL: {redact(target)}")
        if not _same_origin(url, target) and not _upgrade(url, target):
            _set(sent, "Authorization", None)
        url = target
    raise FetchError("too many redirects")


def _request(
    url: str, headers: dict[str, str], *, timeout: float, context: ssl.SSLContext
) -> Fetched:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except (KeyError, ValueError) as exc:
        raise FetchError(f"invalid URL: {exc}") from exc
    if not host:
        raise FetchError("invalid URL: no host")
    target = quote(parts.path or "/", safe=_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_SAFE)
    sent = dict(headers)
    connection: http.client.HTTPConnection
    proxy = _proxy(scheme, host)
    if proxy is None:
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        proxy_host, proxy_port, proxy_headers = proxy
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                proxy_host, proxy_port, timeout=timeout, context=context
            )
            connection.set_tunnel(host, port, headers=proxy_headers)
        else:
            connection = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
            # Absolute form, without the user info (http.client takes Host from it).
            target = f"http://{parts.netloc.rpartition('@')[2]}{target}"
            sent.update(proxy_headers)
    try:
        try:
            connection.connect()
        except OSError as exc:
            raise ConnectFailed(exc) from exc
        # Kept: a "Connection: close" answer takes the socket from the connection.
        sock = connection.sock
        assert sock is not None
        connection.request("GET", target, headers=sent)
        response = connection.getresponse()
    except BaseException:
        connection.close()
        raise
    return Fetched(url, connection, sock, response, timeout)


def _proxy(scheme: str, host: str) -> tuple[str, int, dict[str, str]] | None:
    """(host, port, extra headers) of the proxy the environment names for ``scheme``, if any."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise FetchError(f"the proxy {redact(proxy)} is not supported: only http:// proxies are")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise FetchError(f"invalid proxy URL {redact(proxy)}: {exc}") from exc
    extra = {}
    if parts.username or parts.password:
        extra["Proxy-Authorization"] = basic_auth(
            unquote(parts.username or ""), unquote(parts.password or "")
        )
    return parts.hostname, port, extra


def _set(headers: dict[str, str], name: str, value: str | None) -> None:
    """Set (or with None, remove) a header, whatever the case of the name it replaces."""
    for key in [k for k in headers if k.lower() == name.lower()]:
        del headers[key]
    if value is not None:
        headers[name] = value


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, parts.hostname, port


def _same_origin(a: str, b: str) -> bool:
    return _origin(a) == _origin(b)


def _upgrade(a: str, b: str) -> bool:
    """http:// to https:// on the same host and default ports: credentials may follow."""
    return _origin(a) == ("http", _origin(b)[1], 80) and _origin(b)[::2] == ("https", 443)


def _refusal(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname
