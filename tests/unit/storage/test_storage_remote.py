"""The shared machinery of the fsspec storages (storage/remote.py), over a local fake.

``FakeStorage`` serves ``fake://host/<path>`` from a directory through fsspec's
LocalFileSystem and fails on cue, so that retries, atomicity, hashing, error translation and
name checks are tested without a server (the real servers are in tests/integration/storage).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import socket
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fsspec.implementations.local import LocalFileSystem

from toolferry.storage.base import Credential, StorageError, Uploaded
from toolferry.storage.integrity import CHUNK
from toolferry.storage.remote import (
    Entry,
    Failure,
    FsspecStorage,
    LocalError,
    SourceReader,
    exception_chain,
    scrub,
)


class Scripted(Exception):
    """A failure the fake raises on cue; ``transient`` says whether to retry it."""

    def __init__(self, cause: str, *, transient: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.transient = transient


class FakeStorage(FsspecStorage):
    schemes = ("fake",)

    def __init__(self, root: Path, *, attempts: int = 3) -> None:
        self.pauses: list[float] = []
        super().__init__(timeout=5, attempts=attempts, backoff=0.1, sleep=self.pauses.append)
        self.root = root
        self.connections = 0
        self.closed = 0
        self.failures: dict[str, list[BaseException]] = {}
        self.announce: int | None = None  # a download's announced size, if not the real one

    def fail(self, step: str, *errors: BaseException) -> None:
        self.failures.setdefault(step, []).extend(errors)

    def _step(self, step: str) -> None:
        if self.failures.get(step):
            raise self.failures[step].pop(0)

    def refusal(self, url: str, *, write: bool) -> str | None:
        return None if url.startswith("fake://host/") else "is not a fake://host/ URL"

    def path(self, url: str) -> str:
        return str(self.root / unquote(urlsplit(url).path).lstrip("/"))

    @contextlib.contextmanager
    def connection(self, url: str, credential: Credential | None) -> Iterator[LocalFileSystem]:
        self._step("connect")
        self.connections += 1
        try:
            yield LocalFileSystem(skip_instance_cache=True)
        finally:
            self.closed += 1

    def entry(self, info: Mapping[str, Any]) -> Entry:
        return Entry(
            path=str(info["name"]),
            is_dir=info["type"] == "directory",
            size=int(info["size"]),
            etag=f"{info['ino']}",
            modified=f"{info['mtime']}",
        )

    def classify(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, Scripted):
            return Failure(exc.cause, exc.transient)
        return None

    def download(self, fs: Any, path: str, write: Callable[[bytes], None]) -> int | None:
        self._step("download")
        with fs.open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                write(chunk)
                self._step("download-midway")
        return self.announce if self.announce is not None else int(fs.size(path))

    def upload(self, fs: Any, path: str, source: SourceReader) -> None:
        with fs.open(path, "wb") as out:
            for chunk in source.chunks():
                out.write(chunk)
                self._step("upload-midway")

    def replace(self, fs: Any, tmp: str, path: str) -> None:
        self._step("replace")
        os.replace(tmp, path)

    def remove(self, fs: Any, path: str) -> None:
        self._step("remove")
        os.unlink(path)


@pytest.fixture
def served(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    return root


@pytest.fixture
def storage(served: Path) -> FakeStorage:
    return FakeStorage(served)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def names(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- downloads ----------------------------------------------------------------------------


def test_get_streams_hashes_and_publishes_a_readable_file(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    data = os.urandom(CHUNK * 2 + 7)
    (served / "f.bin").write_bytes(data)
    digest = storage.get("fake://host/f.bin", work / "f.bin", directory=False)
    assert digest == hashlib.sha256(data).hexdigest()
    assert (work / "f.bin").read_bytes() == data
    assert stat.S_IMODE((work / "f.bin").stat().st_mode) == 0o644
    assert names(work) == ["f.bin"]
    assert storage.connections == storage.closed == 1


def test_a_transient_failure_midway_restarts_the_file_on_a_new_connection(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    data = os.urandom(CHUNK * 3)
    (served / "f.bin").write_bytes(data)
    storage.fail("download-midway", Scripted("connection lost", transient=True))
    digest = storage.get("fake://host/f.bin", work / "f.bin", directory=False)
    assert (work / "f.bin").read_bytes() == data  # not the first attempt's piece plus the whole
    assert digest == hashlib.sha256(data).hexdigest()
    assert storage.pauses == [0.1]
    assert storage.connections == storage.closed == 2


def test_a_download_cut_short_is_retried_then_reported(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    (served / "f.bin").write_bytes(b"12345")
    storage.announce = 10
    with pytest.raises(StorageError) as info:
        storage.get("fake://host/f.bin", work / "f.bin", directory=False)
    assert info.value.cause == "transfer cut short: received 5 of 10 bytes (after 3 attempts)"
    assert storage.pauses == [0.1, 0.2]
    assert names(work) == []


def test_a_permanent_failure_is_not_retried_and_leaves_no_partial_file(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    (served / "f.bin").write_bytes(b"x" * (CHUNK + 1))
    storage.fail("download-midway", Scripted("access denied (HTTP 403)", transient=False))
    with pytest.raises(StorageError, match=r"access denied \(HTTP 403\)$"):
        storage.get("fake://host/f.bin", work / "f.bin", directory=False)
    assert storage.pauses == []
    assert names(work) == []


def test_a_missing_file(storage: FakeStorage, work: Path) -> None:
    with pytest.raises(StorageError) as info:
        storage.get("fake://host/missing", work / "m", directory=False)
    assert (info.value.url, info.value.cause) == ("fake://host/missing", "not found")
    assert names(work) == []


def test_a_directory_asked_for_as_a_file_and_the_reverse(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    (served / "d").mkdir()
    (served / "d" / "f").write_text("x")
    with pytest.raises(StorageError, match="is a directory; declare the input as a DIRECTORY"):
        storage.get("fake://host/d", work / "d", directory=False)
    with pytest.raises(StorageError, match="is a file, not a directory; declare"):
        storage.get("fake://host/d/f", work / "f", directory=True)
    assert names(work) == []


def test_a_local_failure_is_reported_as_such_and_not_retried(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    (served / "f").write_text("x")
    storage.fail("download-midway", LocalError.of(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(StorageError) as info:
        storage.get("fake://host/f", work / "f", directory=False)
    assert info.value.cause == "disk full (no space left)"
    # The cache tells a full disk from the OSError there.
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert storage.pauses == []


def test_get_directory_copies_the_tree_with_readable_modes(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    (served / "run" / "sub" / "empty dir").mkdir(parents=True)
    (served / "run" / "a.txt").write_text("a")
    (served / "run" / "sub" / "ü b.txt").write_text("b")
    assert storage.get("fake://host/run", work / "run", directory=True) is None
    assert names(work / "run") == ["a.txt", "sub", "sub/empty dir", "sub/ü b.txt"]
    assert (work / "run" / "sub" / "ü b.txt").read_text() == "b"
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode) for p in [work / "run", *(work / "run").rglob("*")]
    }
    assert modes == {
        "run": 0o755,
        "a.txt": 0o644,
        "sub": 0o755,
        "empty dir": 0o755,
        "ü b.txt": 0o644,
    }
    assert names(work) == [
        "run",
        "run/a.txt",
        "run/sub",
        "run/sub/empty dir",
        "run/sub/ü b.txt",
    ]


def test_a_failure_inside_a_tree_leaves_no_tree(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    (served / "run").mkdir()
    for name in "abc":
        (served / "run" / name).write_text(name)
    storage.fail("download", *[Scripted("b", transient=False)] * 1)
    with pytest.raises(StorageError):
        storage.get("fake://host/run", work / "run", directory=True)
    assert names(work) == []


@pytest.mark.parametrize(
    ("listed", "refusal"),
    [
        ("{path}/../escape", "unsafe name"),
        ("{path}/a/../../b", "unsafe name"),
        ("/etc/passwd", "outside"),
    ],
)
def test_names_that_would_leave_the_destination_are_refused(
    served: Path, work: Path, listed: str, refusal: str
) -> None:
    class Hostile(FakeStorage):
        def find(self, fs: Any, path: str) -> list[Entry]:
            return [Entry(path=listed.format(path=path), is_dir=False, size=1)]

    (served / "d").mkdir()
    with pytest.raises(StorageError, match=refusal):
        Hostile(served).get("fake://host/d", work / "d", directory=True)
    assert names(work) == []


# -- uploads ------------------------------------------------------------------------------


def test_put_goes_through_a_temporary_name(storage: FakeStorage, served: Path, work: Path) -> None:
    (work / "out.txt").write_text("result")
    seen: list[str] = []
    real_replace = storage.replace

    def replace(fs: Any, tmp: str, path: str) -> None:
        seen.append(os.path.basename(tmp))
        assert not os.path.exists(path)
        real_replace(fs, tmp, path)

    storage.replace = replace  # type: ignore[method-assign]
    uploaded = storage.put(work / "out.txt", "fake://host/new/dir/out.txt", directory=False)
    assert uploaded == [Uploaded(url="fake://host/new/dir/out.txt", path=work / "out.txt", size=6)]
    assert (served / "new" / "dir" / "out.txt").read_text() == "result"
    assert len(seen) == 1 and seen[0].startswith(".out.txt.") and seen[0].endswith(".part")
    assert names(served) == ["new", "new/dir", "new/dir/out.txt"]


@pytest.mark.parametrize("step", ["upload-midway", "replace"])
def test_a_failed_put_removes_its_temporary_object(
    storage: FakeStorage, served: Path, work: Path, step: str
) -> None:
    (served / "out.txt").write_text("old")
    (work / "out.txt").write_text("new")
    storage.fail(step, Scripted("refused", transient=False))
    with pytest.raises(StorageError, match="refused"):
        storage.put(work / "out.txt", "fake://host/out.txt", directory=False)
    assert names(served) == ["out.txt"]
    assert (served / "out.txt").read_text() == "old"


def test_the_temporary_object_is_removed_over_a_new_connection_if_need_be(
    storage: FakeStorage, served: Path, work: Path
) -> None:
    (work / "out.txt").write_text("new")
    storage.fail("replace", Scripted("connection broke", transient=False))
    storage.fail("remove", ConnectionResetError())  # on the broken connection
    with pytest.raises(StorageError, match="connection broke"):
        storage.put(work / "out.txt", "fake://host/out.txt", directory=False)
    assert names(served) == []
    assert storage.connections == storage.closed == 2


def test_a_transient_put_failure_is_retried(storage: FakeStorage, served: Path, work: Path) -> None:
    (work / "out.txt").write_text("new")
    storage.fail("upload-midway", Scripted("HTTP 503", transient=True))
    storage.put(work / "out.txt", "fake://host/out.txt", directory=False)
    assert names(served) == ["out.txt"]
    assert storage.pauses == [0.1]


def test_put_directory_recreates_the_tree(storage: FakeStorage, served: Path, work: Path) -> None:
    (work / "out" / "sub" / "empty").mkdir(parents=True)
    (work / "out" / "a b.txt").write_text("a")
    (work / "out" / "sub" / "c.txt").write_text("c")
    uploaded = storage.put(work / "out", "fake://host/run", directory=True)
    assert [(u.url, u.path, u.size) for u in uploaded] == [
        ("fake://host/run/a%20b.txt", work / "out" / "a b.txt", 1),
        ("fake://host/run/sub/c.txt", work / "out" / "sub" / "c.txt", 1),
    ]
    assert names(served) == ["run", "run/a b.txt", "run/sub", "run/sub/c.txt", "run/sub/empty"]


def test_put_of_a_missing_source(storage: FakeStorage, work: Path) -> None:
    with pytest.raises(StorageError, match="no such file"):
        storage.put(work / "nothing", "fake://host/x", directory=False)
    assert storage.connections == 0


# -- listing ------------------------------------------------------------------------------


def test_list_is_recursive_sorted_and_files_only(storage: FakeStorage, served: Path) -> None:
    for rel in ("b/z", "a", "b/c/d", "b y/e"):
        (served / "t" / rel).parent.mkdir(parents=True, exist_ok=True)
        (served / "t" / rel).write_text(rel)
    listed = storage.list("fake://host/t")
    assert [i.url for i in listed] == [
        "fake://host/t/a",
        "fake://host/t/b/c/d",
        "fake://host/t/b/z",
        "fake://host/t/b%20y/e",
    ]
    assert [i.size for i in listed] == [1, 5, 3, 5]
    assert listed[0] == storage.stat("fake://host/t/a")


def test_stat_of_a_directory(storage: FakeStorage, served: Path) -> None:
    (served / "d").mkdir()
    info = storage.stat("fake://host/d")
    assert (info.is_dir, info.size) == (True, 0)


def test_a_malformed_url_is_refused_before_connecting(storage: FakeStorage) -> None:
    assert storage.supports("other://x", write=False) == "other://x is not a fake://host/ URL"
    with pytest.raises(StorageError, match=r"^other://x: the URL is not a fake://host/ URL$"):
        storage.stat("other://x")
    assert storage.connections == 0


# -- errors -------------------------------------------------------------------------------


def test_a_refused_connection_is_retried_and_then_reported(storage: FakeStorage) -> None:
    storage.fail("connect", *(ConnectionRefusedError(errno.ECONNREFUSED, "refused"),) * 3)
    with pytest.raises(StorageError) as info:
        storage.stat("fake://host/x")
    assert info.value.cause == "could not connect: connection refused (after 3 attempts)"
    assert storage.pauses == [0.1, 0.2]


def test_secrets_never_reach_the_message(storage: FakeStorage) -> None:
    credential = Credential(
        prefix="fake://", username="u", password="hunter2-pw", token="tok-secret"
    )
    storage.fail(
        "connect", Scripted("login for u:hunter2-pw with tok-secret failed", transient=False)
    )
    with pytest.raises(StorageError) as info:
        storage.stat("fake://host/x", credential=credential)
    assert info.value.cause == "login for u:*** with *** failed"


@pytest.mark.parametrize(
    ("error", "cause", "transient"),
    [
        (ConnectionRefusedError(), "could not connect: connection refused", True),
        (
            ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
            "connection lost: connection reset by peer",
            True,
        ),
        (TimeoutError(), "timed out after 5s", True),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "could not connect: unknown host (name or service not known)",
            False,
        ),
        (
            socket.gaierror(socket.EAI_AGAIN, "Temporary failure"),
            "could not connect: unknown host (temporary failure)",
            True,
        ),
        (FileNotFoundError("x"), "not found", False),
        (PermissionError("x"), "access denied", False),
        (OSError(errno.ENOSPC, "No space left on device"), "disk full on the server", False),
        (ValueError("boom"), "transfer failed: ValueError: boom", False),
        (ValueError(), "transfer failed: ValueError", False),
    ],
)
def test_generic_causes(
    storage: FakeStorage, error: Exception, cause: str, transient: bool
) -> None:
    assert storage.failure(error) == Failure(cause, transient)


def test_the_scheme_reading_of_a_wrapped_error_comes_first(storage: FakeStorage) -> None:
    try:
        try:
            raise Scripted("no such bucket", transient=False)
        except Scripted as inner:
            raise FileNotFoundError("bucket/key") from inner
    except FileNotFoundError as outer:
        assert storage.failure(outer) == Failure("no such bucket")


def test_a_local_failure_wins_even_when_wrapped(storage: FakeStorage) -> None:
    try:
        try:
            raise LocalError("input/output error: /src")
        except LocalError as inner:
            raise Scripted("connection lost", transient=True) from inner
    except Scripted as outer:
        assert storage.failure(outer) == Failure("input/output error: /src")


def test_exception_chain_survives_a_cycle() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert list(exception_chain(a)) == [a, b]


# -- helpers ------------------------------------------------------------------------------


def test_scrub_hides_credential_secrets_url_passwords_and_userinfo() -> None:
    credential = Credential(prefix="x", password="pass-word", secret_key="s3cr3t-key")
    text = "pass-word and s3cr3t-key seen at ftp://bob:p%40ss@host/x; p@ss too"
    assert scrub(text, credential, "ftp://bob:p%40ss@host/x") == (
        "*** and *** seen at ftp://***@host/x; *** too"
    )


def test_scrub_without_credential_still_redacts_urls() -> None:
    assert scrub("at https://u:pw@h/p?token=abc", None) == "at https://***@h/p?token=***"


def test_source_reader_passes_a_file_of_the_announced_size(tmp_path: Path) -> None:
    reader = SourceReader(io.BytesIO(b"abcdef"), 6, tmp_path / "f")
    assert list(reader.chunks()) == [b"abcdef"]
    assert reader.sent == 6


def test_source_reader_refuses_a_file_that_grew(tmp_path: Path) -> None:
    reader = SourceReader(io.BytesIO(b"abcdef"), 3, tmp_path / "f")
    with pytest.raises(LocalError, match="changed while it was uploaded"):
        list(reader.chunks())


def test_source_reader_refuses_a_file_that_shrank(tmp_path: Path) -> None:
    reader = SourceReader(io.BytesIO(b"ab"), 3, tmp_path / "f")
    with pytest.raises(LocalError, match=r"3 bytes when the upload started, 2 read"):
        list(reader.chunks())


def test_source_reader_reports_read_errors_as_local(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error", "/data/f")

    reader = SourceReader(Broken(), 3, tmp_path / "f")
    with pytest.raises(LocalError) as info:
        reader.read(3)
    assert info.value.cause == "input/output error: /data/f"
    assert isinstance(info.value.error, OSError)
