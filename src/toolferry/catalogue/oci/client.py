"""One registry's HTTP: requests carrying credentials, challenges answered, statuses mapped.

Every request goes through :meth:`RegistryClient.request`: a 401 is answered once through
:class:`~toolferry.catalogue.oci.auth.RegistryAuth` and the request sent again (streamed bodies
cannot be sent again: uploads authenticate on their bodiless first request), any status not
expected becomes the domain error it stands for, and no answer at all becomes
RegistryUnavailable naming the registry's URL.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import ssl
from collections.abc import Iterator, Mapping

import certifi
import httpx

from toolferry import __version__
from toolferry.catalogue.oci.answers import error_message, raise_for_status, transport_cause
from toolferry.catalogue.oci.auth import RegistryAuth
from toolferry.catalogue.oci.errors import RegistryUnavailable
from toolferry.catalogue.oci.reference import DOCKER_HUB
from toolferry.domain.errors import Forbidden

__all__ = ["RegistryClient", "registry_url"]


def registry_url(host: str) -> str:
    """The base URL of the registry a reference names: plain HTTP on loopback (as Docker allows
    without configuration), Docker Hub's API host for ``docker.io``, HTTPS otherwise."""
    if host == DOCKER_HUB:
        return "https://registry-1.docker.io"
    name = host if host.endswith("]") else host.rsplit(":", 1)[0]
    name = name.strip("[]")
    loopback = name == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(name).is_loopback
    return f"{'http' if loopback else 'https'}://{host}"


@functools.cache
def _public_cas() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


class RegistryClient:
    """HTTP to one registry at ``base_url``; see :class:`RegistryStore` for the options."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool | str = True,
        timeout: float = 60,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = self.base_url.split("://", 1)[-1]
        tls: ssl.SSLContext | bool = False
        if verify is True:
            tls = _public_cas()
        elif verify:
            tls = ssl.create_default_context(cafile=verify)
        self.http = httpx.Client(
            verify=tls,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10)),
            headers={"User-Agent": f"toolferry/{__version__}"},
            transport=transport,
        )
        self.auth = RegistryAuth(
            self.base_url, self.http, username=username, password=password, token=token
        )

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        scope: str,
        what: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | Iterator[bytes] | None = None,
        ok: tuple[int, ...] = (200,),
        stream: bool = False,
    ) -> httpx.Response:
        """Sends a request about repository ``scope`` ("" for none), ``url`` absolute or a path.

        Raises the domain error for any status not in ``ok``; a ``stream`` answer's body is
        left unread and must be closed by the caller.
        """
        if isinstance(url, str) and url.startswith("/"):
            url = self.base_url + url
        replayable = content is None or isinstance(content, bytes)
        for attempt in (1, 2):
            request = self.http.build_request(
                method,
                url,
                headers={**(headers or {}), **self.auth.header(scope)},
                params=params,
                content=content,
            )
            try:
                response = self.http.send(request, stream=True, follow_redirects=True)
            except httpx.TransportError as exc:
                raise RegistryUnavailable(
                    f"registry {self.base_url} does not answer ({what}): {transport_cause(exc)}"
                ) from exc
            if response.status_code == 401:
                challenge = response.headers.get("WWW-Authenticate", "")
                message = error_message(response) or "unauthorized"
                response.close()
                if attempt == 2 or not replayable:
                    raise Forbidden(
                        f"registry {self.base_url} refused {what} {self.auth.who()}: {message}"
                    )
                self.auth.answer(challenge, scope, what, message)
                continue
            if response.status_code not in ok:
                try:
                    raise_for_status(response, self.base_url, what)
                finally:
                    response.close()
            if not stream:
                response.read()
                response.close()
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def discard(self, url: httpx.URL, scope: str) -> None:
        """Best-effort DELETE (an abandoned upload): failures are of no consequence."""
        with contextlib.suppress(httpx.HTTPError):
            self.http.delete(url, headers=self.auth.header(scope))

    def name(self, repository: str, reference: str = "") -> str:
        """``host/repository[:tag|@digest]`` for messages."""
        if not reference:
            return f"{self.host}/{repository}"
        return f"{self.host}/{repository}{'@' if ':' in reference else ':'}{reference}"
