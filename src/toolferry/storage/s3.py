"""s3:// URLs (Amazon S3 and compatible stores: MinIO, Ceph RGW, moto) through s3fs.

``s3://bucket/key``: the key is the URL path, percent-decoded. An object becomes visible only
once its upload completes (one PUT, or a multipart upload completed at the end), so uploads
are written in place and a failed multipart upload is aborted. Validators are the ETag and the
LastModified time (UTC, to the second: HEAD and LIST give it in different precisions).

A request without a credential is sent unsigned (public buckets): the site's own AWS
credentials (environment, profile, instance role) are never lent to a user's transfer.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import fsspec.asyn

if TYPE_CHECKING:  # imported where used: s3fs and botocore cost ~0.3 s at every start
    from aiobotocore.session import AioSession
    from botocore.exceptions import ClientError
    from s3fs import S3FileSystem

from toolferry.storage.base import Credential, StorageError, Uploaded
from toolferry.storage.integrity import CHUNK
from toolferry.storage.redact import redact
from toolferry.storage.remote import Entry, Failure, FsspecStorage, SourceReader, exception_chain

__all__ = ["S3Storage"]

# Lenient on purpose: S3-compatible stores accept names that AWS no longer does (upper case,
# underscores); the store itself refuses what it does not take.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{1,61}[A-Za-z0-9]")

# https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList
_DENIED = {
    "InvalidAccessKeyId": "the access key is not known to the server",
    "SignatureDoesNotMatch": "the signature does not match; check the secret key",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is not valid",
    "TokenRefreshRequired": "the session token must be refreshed",
    "AccountProblem": "the account has a problem; ask its owner",
}
_MIN_PART = 5 * 2**20
_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}


class S3Storage(FsspecStorage):
    """Objects in S3 or any S3-compatible store, one bucket per URL host."""

    schemes: tuple[str, ...] = ("s3",)
    atomic_put = True

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        timeout: float = 60,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        part_size: int = 50 * 2**20,
    ) -> None:
        """``endpoint_url`` for a store other than AWS (``None``: AWS, chosen by region);
        ``region`` as the store expects it (``None``: botocore's default). Files larger than
        ``part_size`` bytes go up as multipart uploads, one part held in memory at a time
        (S3 allows 10,000 parts: 500 GB at the default)."""
        if part_size < _MIN_PART:
            raise ValueError(f"part_size must be at least {_MIN_PART} bytes (5 MiB), S3's minimum")
        super().__init__(timeout=timeout, attempts=attempts, backoff=backoff, sleep=sleep)
        self.endpoint_url = endpoint_url
        self.region = region
        self.part_size = part_size
        # Shared by every connection: it caches botocore's service models (making a client
        # from scratch costs a tenth of a second) and holds no credentials, which each client
        # gets explicitly. Clients are made on fsspec's one IO thread, one at a time.
        self._aio_session: AioSession | None = None
        self._aio_lock = threading.Lock()

    def refusal(self, url: str, *, write: bool) -> str | None:
        parts = urlsplit(url)
        if parts.scheme != "s3":
            return "is not an s3:// URL"
        if not parts.netloc:
            return "names no bucket (s3://bucket/key)"
        if "@" in parts.netloc:
            return "has credentials in it; give them as a credential for the URL instead"
        if not _BUCKET.fullmatch(parts.netloc):
            return (
                f"names the bucket {parts.netloc!r}, which is not a bucket name "
                "(3 to 63 letters, digits, '.', '-' or '_')"
            )
        if parts.query or parts.fragment:
            return "has a query or fragment; percent-encode '?' and '#' in keys"
        return None

    def path(self, url: str) -> str:
        parts = urlsplit(url)
        key = unquote(parts.path).strip("/")
        return f"{parts.netloc}/{key}" if key else parts.netloc

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        if not directory and self.refusal(url, write=True) is None and "/" not in self.path(url):
            raise StorageError(redact(url), "names a bucket but no key to write the file to")
        return super().put(src, url, directory=directory, credential=credential)

    @contextlib.contextmanager
    def connection(self, url: str, credential: Credential | None) -> Iterator[S3FileSystem]:
        keys: dict[str, str | None] = {}
        if credential is not None and credential.access_key:
            keys = {
                "key": credential.access_key,
                "secret": credential.secret_key,
                "token": credential.session_token,
            }
        from s3fs import S3FileSystem

        fs = S3FileSystem(
            anon=not keys,  # unsigned: a public bucket, or access denied
            **keys,
            endpoint_url=self.endpoint_url,
            client_kwargs={"region_name": self.region} if self.region else {},
            config_kwargs={
                "connect_timeout": self.timeout,
                "read_timeout": self.timeout,
                # Retries are ours (toolferry.storage.retry), counted in attempts.
                "retries": {"total_max_attempts": 1},
            },
            session=self._botocore(),
            skip_instance_cache=True,
            use_listings_cache=False,
        )
        fs.retries = 1  # s3fs's own retry loop: likewise
        client = fs.connect()  # builds the client; no request yet
        try:
            yield fs
        finally:
            fsspec.asyn.sync(fs.loop, client.close)

    def entry(self, info: Mapping[str, Any]) -> Entry:
        modified = info.get("LastModified")
        if isinstance(modified, datetime):
            modified = modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Entry(
            path=str(info["name"]),
            is_dir=info.get("type") == "directory",
            size=int(info.get("size") or 0),
            etag=info.get("ETag") or None,
            modified=modified or None,
        )

    def download(self, fs: Any, path: str, write: Callable[[bytes], None]) -> int | None:
        bucket, _, key = path.partition("/")
        response = fs.call_s3("get_object", Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            # One GET streamed in pieces (a ranged GET per piece would cost a request each).
            while chunk := fsspec.asyn.sync(fs.loop, body.read, CHUNK):
                write(chunk)
        finally:
            fsspec.asyn.sync(fs.loop, body.aclose)
        length = response.get("ContentLength")
        return length if isinstance(length, int) else None

    def upload(self, fs: Any, path: str, source: SourceReader) -> None:
        # An S3File sends one PUT when closed, or parts while written and a completion at close.
        out = fs.open(path, "wb", block_size=self.part_size)
        try:
            for chunk in source.chunks():
                out.write(chunk)
            out.close()
        except BaseException:
            # discard() aborts a multipart upload: its parts never become an object.
            with contextlib.suppress(Exception):
                out.discard()
            out.closed = True
            raise

    def _botocore(self) -> AioSession:
        with self._aio_lock:
            if self._aio_session is None:
                from aiobotocore.session import AioSession

                self._aio_session = AioSession()
            return self._aio_session

    def classify(self, exc: BaseException) -> Failure | None:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            HTTPClientError,
            ReadTimeoutError,
        )

        if isinstance(exc, ClientError):
            return _client_error(exc)
        if isinstance(exc, ConnectTimeoutError):
            return Failure(f"could not connect: timed out after {self.timeout:g}s", True)
        if isinstance(exc, ReadTimeoutError):
            return Failure(f"timed out after {self.timeout:g}s", True)
        if isinstance(exc, EndpointConnectionError):
            return Failure(f"could not connect: {_connect_reason(exc)}", True)
        if isinstance(exc, HTTPClientError):
            return Failure(f"connection lost: {_connect_reason(exc)}", True)
        return None


def _client_error(exc: ClientError) -> Failure:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    http = f"HTTP {status}" if status else "no HTTP status"
    if code == "NoSuchBucket":
        return Failure("no such bucket")
    if code in ("NoSuchKey", "404", "NotFound") or status == 404:
        return Failure(f"not found ({http})")
    if code in _DENIED:
        return Failure(f"access denied ({http}): {_DENIED[code]}")
    if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled") or status == 403:
        return Failure(f"access denied ({http})")
    if code in ("QuotaExceeded", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded"):
        return Failure(f"disk full: the store refused the object ({code})")
    if code == "EntityTooLarge":
        return Failure("the object is larger than the store accepts (EntityTooLarge)")
    transient = code in _TRANSIENT_CODES or status == 429 or (status or 0) >= 500
    message = str(error.get("Message") or "").strip()
    return Failure(f"S3 error {code} ({http})" + (f": {message}" if message else ""), transient)


def _connect_reason(exc: Exception) -> str:
    """Why a connection failed, from the error botocore wraps (aiohttp's, or an OSError)."""
    inner = getattr(exc, "kwargs", {}).get("error")
    for link in exception_chain(inner) if isinstance(inner, BaseException) else ():
        os_error = getattr(link, "os_error", None)
        if isinstance(link, ConnectionRefusedError) or isinstance(os_error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(os_error, OSError) and os_error.strerror:
            return os_error.strerror.lower()
    return str(inner or exc)
