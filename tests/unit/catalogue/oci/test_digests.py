"""Digests: well-formedness, and readers that verify what they stream."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from toolferry.catalogue.oci.digests import (
    VerifyingReader,
    check_digest,
    digest_bytes,
    digest_file,
    verify_bytes,
)
from toolferry.catalogue.oci.errors import DigestMismatch
from toolferry.catalogue.oci.store import write_verified
from toolferry.domain.errors import InvalidTask


def test_sha256_and_sha512_digests_are_accepted() -> None:
    sha256 = digest_bytes(b"x")
    assert check_digest(sha256) == sha256
    sha512 = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert verify_bytes(b"x", sha512, "it") == b"x"
    with pytest.raises(InvalidTask, match="not a digest") as caught:
        check_digest("abc", field="config.digest")
    assert caught.value.field == "config.digest"


def test_digest_file_reads_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = b"0123456789" * 300_000
    path.write_bytes(data)
    assert digest_file(path) == (digest_bytes(data), len(data))


def test_a_verifying_reader_passes_good_content_through() -> None:
    data = b"abc" * 100_000
    chunks = [data[i : i + 7000] for i in range(0, len(data), 7000)]
    stream = VerifyingReader.open(chunks, digest_bytes(data), "blob x", len(data))
    assert stream.read(10) == data[:10]
    assert stream.read() == data[10:]


def test_a_verifying_reader_fails_at_the_end_of_bad_content() -> None:
    stream = VerifyingReader.open([b"tampered"], digest_bytes(b"original"), "blob x")
    with pytest.raises(DigestMismatch, match="blob x has digest") as caught:
        stream.read()
    assert caught.value.expected == digest_bytes(b"original")
    assert caught.value.actual == digest_bytes(b"tampered")
    assert caught.value.field == "digest"


def test_a_verifying_reader_checks_the_size() -> None:
    good = digest_bytes(b"12345")
    with pytest.raises(DigestMismatch, match="longer than its 3 bytes"):
        VerifyingReader.open([b"12345"], good, "blob", 3).read()
    with pytest.raises(DigestMismatch, match="5 bytes, not 6"):
        VerifyingReader.open([b"12345"], good, "blob", 6).read()


def test_write_verified_leaves_nothing_behind_on_a_mismatch(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.write_bytes(b"previous")
    with pytest.raises(DigestMismatch):
        write_verified(iter([b"bad"]), dest, digest_bytes(b"good"), "blob")
    assert dest.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [dest]
    assert write_verified(io.BytesIO(b"good"), dest, digest_bytes(b"good"), "blob") == 4
    assert dest.read_bytes() == b"good"
