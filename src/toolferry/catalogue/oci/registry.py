"""An OCI registry over the distribution API (https://github.com/opencontainers/distribution-spec)
as an :class:`~toolferry.catalogue.oci.store.ImageStore`.

Works with any registry: Debian's ``docker-registry`` (distribution 2.8), Harbor, GHCR, Docker
Hub. HTTP, authentication and error mapping live in :mod:`.client` and :mod:`.auth`, uploads in
:mod:`.upload`. Manifests are asked for with every manifest and index media type in ``Accept``
(a registry converts or refuses what is missing), verified against the digest they were asked
by or the one the registry claims, and kept in a small cache (content-addressed, so never
stale). Blobs stream; nothing is ever held in memory whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import httpx

from toolferry.catalogue.oci import media, upload
from toolferry.catalogue.oci.answers import json_body, transport_cause
from toolferry.catalogue.oci.client import RegistryClient, registry_url
from toolferry.catalogue.oci.digests import (
    CHUNK,
    VerifyingReader,
    check_digest,
    digest_file,
    file_chunks,
    verify_bytes,
)
from toolferry.catalogue.oci.errors import DigestMismatch, RegistryUnavailable, StoreError
from toolferry.catalogue.oci.manifest import parse_manifest
from toolferry.catalogue.oci.reference import check_repository, check_tag
from toolferry.catalogue.oci.store import (
    OCTET_STREAM,
    BlobSource,
    Descriptor,
    ImageStore,
    write_verified,
)
from toolferry.domain.errors import InvalidTask

__all__ = ["DEFAULT_CHUNK_SIZE", "RegistryStore", "registry_url"]

DEFAULT_CHUNK_SIZE = 64 << 20
_CACHED_MANIFESTS = 32
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryStore:
    """The registry at ``base_url`` (e.g. ``http://127.0.0.1:5000``, ``https://ghcr.io``).

    Credentials: ``username``/``password`` (Basic, or to obtain Bearer tokens), or a ready
    ``token``. ``verify`` is True (public CAs), False, or a CA bundle's path. Files bigger than
    ``chunk_size`` are uploaded in chunks of that size. ``transport`` replaces the network
    (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool | str = True,
        timeout: float = 60,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if chunk_size < 1:
            raise InvalidTask("chunk_size", "must be positive")
        self.chunk_size = chunk_size
        self._client = RegistryClient(
            base_url,
            username=username,
            password=password,
            token=token,
            verify=verify,
            timeout=timeout,
            transport=transport,
        )
        self._manifests: OrderedDict[str, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()  # one store serves many request threads

    @classmethod
    def for_host(cls, host: str, **options: Any) -> RegistryStore:
        """The registry a reference's host names (see :func:`registry_url`)."""
        return cls(registry_url(host), **options)

    @property
    def where(self) -> str:
        return self._client.base_url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def check(self) -> None:
        """Raises unless the registry answers ``GET /v2/`` (with these credentials)."""
        self._client.request("GET", "/v2/", "", "the API base /v2/")

    # -- reading ----------------------------------------------------------------------------

    def resolve(self, repository: str, reference: str) -> Descriptor:
        check_repository(repository)
        by_digest = ":" in reference
        if by_digest:
            check_digest(reference, "reference")
        else:
            check_tag(reference, "reference")
        what = f"manifest {self._client.name(repository, reference)}"
        response = self._get_manifest(repository, reference, what)
        data = response.content
        claimed = response.headers.get("Docker-Content-Digest")
        if by_digest:
            digest = reference
        elif claimed:
            digest = check_digest(claimed, "Docker-Content-Digest")
        else:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
        verify_bytes(data, digest, what)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        hint = content_type if content_type in media.MANIFESTS | media.INDEXES else None
        parsed = parse_manifest(data, hint)
        self._remember(digest, data)
        return Descriptor(parsed.media_type, digest, len(data), artifact_type=parsed.artifact_type)

    def manifest(self, repository: str, digest: str) -> bytes:
        check_repository(repository)
        check_digest(digest)
        with self._cache_lock:
            cached = self._manifests.get(digest)
        if cached is not None:
            return cached
        what = f"manifest {self._client.name(repository, digest)}"
        data = verify_bytes(self._get_manifest(repository, digest, what).content, digest, what)
        self._remember(digest, data)
        return data

    def _get_manifest(self, repository: str, reference: str, what: str) -> httpx.Response:
        return self._client.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            repository,
            what,
            headers={"Accept": media.MANIFEST_ACCEPT},
        )

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[BinaryIO]:
        what = f"blob {self._client.name(repository, digest)}"
        with self._blob_response(repository, digest) as response:
            yield VerifyingReader.open(response.iter_bytes(CHUNK), digest, what)

    def fetch_blob(self, repository: str, digest: str, dest: Path) -> int:
        what = f"blob {self._client.name(repository, digest)}"
        with self._blob_response(repository, digest) as response:
            return write_verified(response.iter_bytes(CHUNK), dest, digest, what)

    def has_blob(self, repository: str, digest: str) -> bool:
        return self._blob_size(repository, digest) is not None

    def tags(self, repository: str) -> list[str]:
        check_repository(repository)
        path = f"/v2/{repository}/tags/list"
        return sorted(self._paged(path, repository, f"tags of {repository}", "tags"))

    def repositories(self) -> list[str]:
        return sorted(self._paged("/v2/_catalog", "", "the repository catalog", "repositories"))

    def _blob_size(self, repository: str, digest: str) -> int | None:
        """The size of a blob the repository has (HEAD), None when it has not."""
        check_repository(repository)
        check_digest(digest)
        response = self._client.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            repository,
            f"blob {self._client.name(repository, digest)}",
            ok=(200, 404),
        )
        if response.status_code == 404:
            return None
        return int(response.headers.get("Content-Length", "0"))

    @contextlib.contextmanager
    def _blob_response(self, repository: str, digest: str) -> Iterator[httpx.Response]:
        check_repository(repository)
        check_digest(digest)
        response = self._client.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            repository,
            f"blob {self._client.name(repository, digest)}",
            stream=True,
        )
        try:
            yield response
        except httpx.TransportError as exc:
            raise RegistryUnavailable(
                f"registry {self.where} broke off sending blob {digest}: {transport_cause(exc)}"
            ) from exc
        finally:
            response.close()

    def _paged(self, path: str, repository: str, what: str, key: str) -> list[str]:
        """Every item of a paginated list (``?n=``, then the ``Link: <...>; rel="next"``)."""
        found: list[str] = []
        url: str | None = path
        params: dict[str, str] | None = {"n": "1000"}
        while url:
            response = self._client.request("GET", url, repository, what, params=params)
            items = json_body(response, what).get(key) or []
            if not isinstance(items, list):
                raise StoreError(f"registry {self.where} answered {what} without a list")
            found.extend(str(item) for item in items)
            match = _NEXT_LINK.search(response.headers.get("Link", ""))
            url, params = (match[1], None) if match else (None, None)
        return found

    def _remember(self, digest: str, data: bytes) -> None:
        with self._cache_lock:
            self._manifests[digest] = data
            self._manifests.move_to_end(digest)
            while len(self._manifests) > _CACHED_MANIFESTS:
                self._manifests.popitem(last=False)

    # -- writing ----------------------------------------------------------------------------

    def put_blob(
        self,
        repository: str,
        source: BlobSource,
        *,
        media_type: str = OCTET_STREAM,
        expected: str | None = None,
    ) -> Descriptor:
        check_repository(repository)
        algorithm = check_digest(expected).partition(":")[0] if expected else "sha256"
        what = f"blob for {self._client.name(repository)}"
        if isinstance(source, bytes):
            digest = f"{algorithm}:{hashlib.new(algorithm, source).hexdigest()}"
            if expected and digest != expected:
                raise DigestMismatch(what, expected, digest)
            if not self.has_blob(repository, digest):
                upload.put_whole(self._client, repository, digest, source, len(source))
            return Descriptor(media_type, digest, len(source))
        stored = self._blob_size(repository, expected) if expected else None
        if expected and stored is not None:
            return Descriptor(media_type, expected, stored)  # nothing to send
        size = source.stat().st_size if isinstance(source, Path) else None
        if isinstance(source, Path) and size is not None and size <= self.chunk_size:
            digest, size = digest_file(source, algorithm)
            if expected and digest != expected:
                raise DigestMismatch(f"{what} from {source}", expected, digest)
            if not self.has_blob(repository, digest):
                with source.open("rb") as fh:
                    upload.put_whole(self._client, repository, digest, file_chunks(fh), size)
            return Descriptor(media_type, digest, size)
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(source.open("rb")) if isinstance(source, Path) else source
            digest, size = upload.put_streamed(
                self._client,
                repository,
                stream,
                algorithm=algorithm,
                expected=expected,
                size=size,
                chunk_size=self.chunk_size,
            )
        return Descriptor(media_type, digest, size)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        check_repository(repository)
        check_repository(from_repository)
        check_digest(digest)
        return upload.mount(self._client, repository, digest, from_repository)

    def put_manifest(
        self, repository: str, data: bytes, media_type: str, tag: str | None = None
    ) -> Descriptor:
        check_repository(repository)
        if tag is not None:
            check_tag(tag)
        parsed = parse_manifest(data, media_type)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        response = self._client.request(
            "PUT",
            f"/v2/{repository}/manifests/{tag or digest}",
            repository,
            f"manifest {self._client.name(repository, tag or digest)}",
            headers={"Content-Type": parsed.media_type},
            content=data,
            ok=(201,),
        )
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise StoreError(f"registry {self.where} stored manifest {digest} as {claimed}")
        self._remember(digest, data)
        return Descriptor(parsed.media_type, digest, len(data), artifact_type=parsed.artifact_type)

    def delete_manifest(self, repository: str, digest: str) -> None:
        check_repository(repository)
        check_digest(digest)
        self._client.request(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            repository,
            f"manifest {self._client.name(repository, digest)}",
            ok=(200, 202),
        )
        with self._cache_lock:
            self._manifests.pop(digest, None)


if TYPE_CHECKING:
    _conforms: ImageStore = RegistryStore("")
