"""Checksums: URL fragments, files, trees, and hashing while writing."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from toolferry.storage.integrity import (
    CHUNK,
    HashingWriter,
    sha256_file,
    split_checksum,
    tree_digest,
)

DIGEST = "ab" * 32


def test_split_checksum() -> None:
    assert split_checksum("http://h/x") == ("http://h/x", None)
    assert split_checksum(f"http://h/x#sha256={DIGEST}") == ("http://h/x", DIGEST)
    assert split_checksum(f"s3://b/k#SHA256={DIGEST.upper()}") == ("s3://b/k", DIGEST)
    assert split_checksum("http://h/x#section") == ("http://h/x#section", None)


@pytest.mark.parametrize("bad", ["12", "zz" * 32, "ab" * 33, ""])
def test_split_checksum_refuses_what_is_not_a_sha256(bad: str) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        split_checksum(f"http://h/x#sha256={bad}")


def test_sha256_file(tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 17)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_tree_digest_covers_paths_contents_and_empty_folders(tmp_path: Path) -> None:
    def tree(root: Path, content: bytes = b"a", extra_dir: bool = False) -> Path:
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "f").write_bytes(content)
        (root / "g").write_bytes(b"g")
        if extra_dir:
            (root / "empty").mkdir()
        return root

    digest, total, files = tree_digest(tree(tmp_path / "one"))
    assert total == 2
    assert files == {
        "sub/f": hashlib.sha256(b"a").hexdigest(),
        "g": hashlib.sha256(b"g").hexdigest(),
    }
    assert tree_digest(tree(tmp_path / "same"))[0] == digest
    assert tree_digest(tree(tmp_path / "other", content=b"b"))[0] != digest
    assert tree_digest(tree(tmp_path / "empty", extra_dir=True))[0] != digest


@pytest.mark.parametrize("chunk", [1, 1000, CHUNK - 1, CHUNK, 3 * CHUNK + 5])
def test_hashing_writer_hashes_what_it_wrote(tmp_path: Path, chunk: int) -> None:
    data = os.urandom(4 * CHUNK + 123)
    path = tmp_path / "out"
    with path.open("wb") as fh, HashingWriter(fh) as out:
        for start in range(0, len(data), chunk):
            out.write(data[start : start + chunk])
        digest = out.hexdigest()
    assert digest == hashlib.sha256(data).hexdigest()
    assert out.size == len(data)
    assert path.read_bytes() == data


def test_hashing_writer_of_nothing(tmp_path: Path) -> None:
    with (tmp_path / "empty").open("wb") as fh, HashingWriter(fh) as out:
        assert out.hexdigest() == hashlib.sha256(b"").hexdigest()


def test_hashing_writer_leaves_no_thread_or_descriptor(tmp_path: Path) -> None:
    threads = threading.active_count()
    descriptors = len(os.listdir("/proc/self/fd"))
    with (tmp_path / "f").open("wb") as fh, HashingWriter(fh) as out:
        out.write(b"x" * (2 * CHUNK))
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == descriptors


def test_hashing_writer_reports_bytes_that_never_reached_the_file(tmp_path: Path) -> None:
    class Lossy(io.BufferedWriter):
        def write(self, data: object) -> int:  # type: ignore[override]
            return 0  # a broken file object: nothing arrives

    with Lossy(io.FileIO(tmp_path / "f", "w")) as fh, HashingWriter(fh) as out:
        out.write(b"x" * (CHUNK + 1))
        with pytest.raises(OSError, match="shorter than what was written"):
            out.hexdigest()
