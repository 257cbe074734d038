"""s3:// URLs (storage/s3.py): URL shape, connections, listings and error causes, offline.

Transfers against a real S3 endpoint (moto) are in tests/integration/storage.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from toolferry.storage.base import Credential, Operation, StorageError
from toolferry.storage.redact import redact
from toolferry.storage.remote import Failure
from toolferry.storage.s3 import S3Storage


@pytest.fixture
def s3() -> S3Storage:
    return S3Storage("http://127.0.0.1:9", "eu-west-1", timeout=7, attempts=3)


def test_declares_every_operation(s3: S3Storage) -> None:
    assert s3.schemes == ("s3",)
    assert s3.operations == frozenset(Operation)


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("s3://bucket/key", None),
        ("s3://my.bucket-1/dir/a%20b.txt", None),
        ("s3://bucket", None),
        ("s3://bucket/", None),
        ("https://bucket/key", "is not an s3:// URL"),
        ("s3:///key", "names no bucket (s3://bucket/key)"),
        ("s3://ab/key", "names the bucket 'ab', which is not a bucket name"),
        ("s3://-bucket/key", "names the bucket '-bucket', which is not a bucket name"),
        ("s3://key:secret@bucket/key", "has credentials in it"),
        ("s3://bucket/key?versionId=3", "has a query or fragment"),
        ("s3://bucket/key#frag", "has a query or fragment"),
    ],
)
def test_supports(s3: S3Storage, url: str, refusal: str | None) -> None:
    answer = s3.supports(url, write=True)
    if refusal is None:
        assert answer is None
    else:
        assert answer is not None and answer.startswith(f"{redact(url)} {refusal}")


def test_a_refusal_names_the_url_redacted(s3: S3Storage) -> None:
    assert s3.supports("s3://AKIA:sec@bucket/k", write=False) == (
        "s3://***@bucket/k has credentials in it; give them as a credential for the URL instead"
    )


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("s3://bucket/key", "bucket/key"),
        ("s3://bucket/dir/a%20b%C3%BC.txt", "bucket/dir/a bü.txt"),
        ("s3://bucket/dir/", "bucket/dir"),
        ("s3://bucket", "bucket"),
        ("s3://bucket/", "bucket"),
    ],
)
def test_path(s3: S3Storage, url: str, path: str) -> None:
    assert s3.path(url) == path


def test_a_file_cannot_be_put_without_a_key(s3: S3Storage, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StorageError, match="names a bucket but no key"):
        s3.put(tmp_path / "f", "s3://bucket/", directory=False)


def test_part_size_has_s3s_minimum() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        S3Storage(part_size=1 << 20)


def test_a_credential_signs_requests_and_is_never_shared(s3: S3Storage) -> None:
    alice = Credential(prefix="s3://", access_key="AKIAALICE", secret_key="alice-secret")
    bob = Credential(
        prefix="s3://", access_key="AKIABOB", secret_key="bob-secret", session_token="tok"
    )
    with s3.connection("s3://b/k", alice) as fs_a, s3.connection("s3://b/k", bob) as fs_b:
        assert fs_a is not fs_b
        assert (fs_a.anon, fs_a.key, fs_a.secret) == (False, "AKIAALICE", "alice-secret")
        assert (fs_b.key, fs_b.secret, fs_b.token) == ("AKIABOB", "bob-secret", "tok")
        assert fs_a.endpoint_url == "http://127.0.0.1:9"
        assert fs_a.client_kwargs == {"region_name": "eu-west-1"}
        assert fs_a.retries == 1  # retries are the storage's own


def test_without_a_credential_requests_are_unsigned(s3: S3Storage) -> None:
    # Never the site's own AWS credentials (environment, profile, instance role).
    with s3.connection("s3://b/k", None) as fs:
        assert fs.anon
    with s3.connection("s3://b/k", Credential(prefix="s3://", username="u", password="p")) as fs:
        assert fs.anon


def test_entry_normalises_last_modified_to_utc_seconds(s3: S3Storage) -> None:
    when = datetime(2024, 5, 6, 9, 10, 11, 500_000, tzinfo=timezone(timedelta(hours=2)))
    entry = s3.entry(
        {"name": "b/k", "type": "file", "size": 3, "ETag": '"abc"', "LastModified": when}
    )
    assert (entry.path, entry.is_dir, entry.size) == ("b/k", False, 3)
    assert (entry.etag, entry.modified) == ('"abc"', "2024-05-06T07:10:11Z")


def test_entry_of_a_prefix(s3: S3Storage) -> None:
    entry = s3.entry({"name": "b/dir", "type": "directory", "size": 0, "StorageClass": "DIRECTORY"})
    assert (entry.is_dir, entry.etag, entry.modified) == (True, None, None)


def client_error(code: str, status: int, message: str = "") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (client_error("NoSuchBucket", 404), Failure("no such bucket")),
        (client_error("NoSuchKey", 404), Failure("not found (HTTP 404)")),
        (client_error("404", 404), Failure("not found (HTTP 404)")),
        (
            client_error("SignatureDoesNotMatch", 403),
            Failure("access denied (HTTP 403): the signature does not match; check the secret key"),
        ),
        (
            client_error("InvalidAccessKeyId", 403),
            Failure("access denied (HTTP 403): the access key is not known to the server"),
        ),
        (client_error("AccessDenied", 403), Failure("access denied (HTTP 403)")),
        (client_error("403", 403), Failure("access denied (HTTP 403)")),
        (
            client_error("SlowDown", 503, "Reduce your request rate"),
            Failure("S3 error SlowDown (HTTP 503): Reduce your request rate", True),
        ),
        (client_error("InternalError", 500), Failure("S3 error InternalError (HTTP 500)", True)),
        (
            client_error("TooManyRequests", 429),
            Failure("S3 error TooManyRequests (HTTP 429)", True),
        ),
        (client_error("InvalidObjectState", 403), Failure("access denied (HTTP 403)")),
        (
            client_error("XMinioStorageFull", 507),
            Failure("disk full: the store refused the object (XMinioStorageFull)"),
        ),
        (
            client_error("EntityTooLarge", 400),
            Failure("the object is larger than the store accepts (EntityTooLarge)"),
        ),
        (
            client_error("InvalidArgument", 400, "bad"),
            Failure("S3 error InvalidArgument (HTTP 400): bad"),
        ),
    ],
)
def test_client_errors(s3: S3Storage, error: ClientError, failure: Failure) -> None:
    assert s3.classify(error) == failure


def test_connection_refused(s3: S3Storage) -> None:
    refused = ConnectionRefusedError(111, "Connect call failed")
    inner = aiohttp.ClientConnectorError(connection_key=None, os_error=refused)  # type: ignore[arg-type]
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b/k", error=inner)
    assert s3.failure(error) == Failure("could not connect: connection refused", True)


def test_timeouts(s3: S3Storage) -> None:
    connect = ConnectTimeoutError(endpoint_url="http://127.0.0.1:9/b/k")
    read = ReadTimeoutError(endpoint_url="http://127.0.0.1:9/b/k")
    assert s3.failure(connect) == Failure("could not connect: timed out after 7s", True)
    assert s3.failure(read) == Failure("timed out after 7s", True)


def test_a_translated_error_is_read_through_to_its_s3_code(s3: S3Storage) -> None:
    try:
        try:
            raise client_error("NoSuchBucket", 404)
        except ClientError as exc:
            raise FileNotFoundError("The specified bucket does not exist") from exc
    except FileNotFoundError as translated:
        assert s3.failure(translated) == Failure("no such bucket")


def test_a_secret_echoed_by_the_store_is_scrubbed(s3: S3Storage) -> None:
    credential = Credential(prefix="s3://", access_key="AKIA", secret_key="very-secret-key")
    error = client_error("InvalidArgument", 400, "header had very-secret-key in it")
    message = str(s3.error("s3://b/k", error, credential))
    assert "very-secret-key" not in message
    assert message == "s3://b/k: S3 error InvalidArgument (HTTP 400): header had *** in it"
