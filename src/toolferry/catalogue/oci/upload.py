"""Blob uploads to a registry (distribution spec "pushing blobs").

Every upload starts with a bodiless POST (which is also where a token is fetched, since a
streamed body cannot be sent twice) and ends with a PUT carrying ``?digest=``:

- whole: POST, then one PUT with the body (streamed from disk);
- chunked: POST, PATCHes of ``chunk_size`` bytes with ``Content-Range``/``Content-Length`` (the
  way through proxies that limit request bodies), then an empty PUT;
- streamed: POST, one PATCH of unknown length (what ``docker push`` sends), then an empty PUT.

Chunked and streamed uploads hash as they send; a digest other than the expected one abandons
the upload (DELETE) before the PUT, so the registry never stores it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import httpx

from toolferry.catalogue.oci.client import RegistryClient
from toolferry.catalogue.oci.digests import file_chunks
from toolferry.catalogue.oci.errors import DigestMismatch, StoreError
from toolferry.catalogue.oci.store import OCTET_STREAM

__all__ = ["mount", "put_streamed", "put_whole"]


def _start(
    client: RegistryClient, repository: str, params: Mapping[str, str] | None = None
) -> httpx.Response:
    return client.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        repository,
        f"an upload to {client.name(repository)}",
        params=params,
        headers={"Content-Length": "0"},
        ok=(201, 202),
    )


def _location(client: RegistryClient, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("Location")
    if not location:
        raise StoreError(f"registry {client.base_url} answered an upload without a Location")
    return response.request.url.join(location)


def put_whole(
    client: RegistryClient,
    repository: str,
    digest: str,
    body: bytes | Iterator[bytes],
    size: int,
) -> None:
    """Uploads a blob whose digest is known in one PUT."""
    location = _location(client, _start(client, repository))
    client.request(
        "PUT",
        location.copy_merge_params({"digest": digest}),
        repository,
        f"blob {client.name(repository, digest)}",
        headers={"Content-Type": OCTET_STREAM, "Content-Length": str(size)},
        content=body,
        ok=(201,),
    )


def put_streamed(
    client: RegistryClient,
    repository: str,
    stream: BinaryIO,
    *,
    algorithm: str = "sha256",
    expected: str | None = None,
    size: int | None = None,
    chunk_size: int,
) -> tuple[str, int]:
    """Uploads ``stream`` in PATCHes of ``chunk_size`` (``size`` known) or in one streamed
    PATCH (``size`` None); returns (digest, bytes sent)."""
    h = hashlib.new(algorithm)
    sent = 0

    def hashed(chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal sent
        for chunk in chunks:
            h.update(chunk)
            sent += len(chunk)
            yield chunk

    what = f"an upload to {client.name(repository)}"
    location = _location(client, _start(client, repository))
    try:
        while True:
            before = sent
            headers = {"Content-Type": OCTET_STREAM}
            if size is None:
                body = hashed(file_chunks(stream))
            else:
                length = min(chunk_size, size - sent)
                headers["Content-Length"] = str(length)
                headers["Content-Range"] = f"{sent}-{sent + length - 1}"
                body = hashed(file_chunks(stream, length))
            response = client.request(
                "PATCH", location, repository, what, headers=headers, content=body, ok=(202,)
            )
            location = _location(client, response)
            if size is None or sent >= size:
                break
            if sent == before:
                raise StoreError(f"{what}: the source ended after {sent} of {size} bytes")
        digest = f"{algorithm}:{h.hexdigest()}"
        if expected and digest != expected:
            raise DigestMismatch(f"blob for {client.name(repository)}", expected, digest)
    except BaseException:
        client.discard(location, repository)
        raise
    client.request(
        "PUT",
        location.copy_merge_params({"digest": digest}),
        repository,
        f"blob {client.name(repository, digest)}",
        headers={"Content-Length": "0"},
        ok=(201,),
    )
    return digest, sent


def mount(client: RegistryClient, repository: str, digest: str, from_repository: str) -> bool:
    """Cross-repository mount; False when the registry opened an ordinary upload instead."""
    response = _start(client, repository, {"mount": digest, "from": from_repository})
    if response.status_code == 201:
        return True
    client.discard(_location(client, response), repository)
    return False
