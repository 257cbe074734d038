"""One contract for every storage, against real servers on loopback (servers.py).

Each test runs over the storages its operation applies to: s3 (moto), webdav (wsgidav), ftp
(pyftpdlib), and file:// and http:// where they can (plain HTTP cannot fetch a directory or
list one; the test HTTP server checks no credentials).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypedDict

import pytest
from tests.integration.storage.http_server import FileServer
from tests.integration.storage.servers import FtpArea, MotoServer, WebdavArea, refused_port

from toolferry.storage.base import Credential, Storage, StorageError, Uploaded
from toolferry.storage.file import FileStorage, join_url
from toolferry.storage.ftp import FtpStorage
from toolferry.storage.http import HttpStorage
from toolferry.storage.router import StorageRouter
from toolferry.storage.s3 import S3Storage
from toolferry.storage.webdav import WebdavStorage

REMOTE = ("s3", "webdav", "ftp")
TREES = ("file", *REMOTE)  # can fetch and list directories
ALL = ("file", "http", *REMOTE)


class _Options(TypedDict):
    timeout: float
    attempts: int
    backoff: float


# Small delays, so that the retry tests stay quick; the schedule itself is unit-tested.
FAST: _Options = {"timeout": 10.0, "attempts": 2, "backoff": 0.01}


def over(*names: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("backend", names, indirect=True)


@dataclass
class Backend:
    """A storage, an empty area on its server (``base``), and a view of the server's side."""

    name: str
    storage: Storage
    base: str
    credential: Credential | None
    seed: Callable[[str, bytes], None]  # put a file on the server, not through the storage
    read: Callable[[str], bytes]  # read a file on the server
    names: Callable[[], list[str]]  # every file below base on the server, relative, sorted
    hashes: bool  # get() returns the sha256

    def url(self, rel: str) -> str:
        return join_url(self.base, PurePosixPath(rel))


def _disk(
    root: Path,
) -> tuple[Callable[[str, bytes], None], Callable[[str], bytes], Callable[[], list[str]]]:
    def seed(rel: str, data: bytes) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def names() -> list[str]:
        return sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
        )

    root.mkdir(parents=True, exist_ok=True)
    return seed, lambda rel: (root / rel).read_bytes(), names


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    if name == "file":
        seed, read, names = _disk(tmp_path / "files" / "area")
        storage: Storage = FileStorage([tmp_path / "files"])
        return Backend(
            name, storage, f"file://{tmp_path}/files/area", None, seed, read, names, False
        )
    if name == "http":
        server: FileServer = request.getfixturevalue("http_server")
        seed, read, names = _disk(server.root / "area")
        storage = HttpStorage(backoff=(0.01,))
        return Backend(name, storage, f"{server.url}/area", None, seed, read, names, True)
    if name == "webdav":
        dav: WebdavArea = request.getfixturevalue("webdav_auth_area")
        seed, read, names = _disk(dav.root / "area")
        ((user, password),) = dav.users.items()
        credential = Credential(prefix=dav.url, username=user, password=password)
        storage = WebdavStorage(**FAST)
        return Backend(name, storage, f"{dav.url}/area", credential, seed, read, names, True)
    if name == "ftp":
        ftp: FtpArea = request.getfixturevalue("ftp_area")
        seed, read, names = _disk(ftp.root / "area")
        credential = Credential(prefix=ftp.url, username=ftp.user, password=ftp.password)
        storage = FtpStorage(**FAST)
        return Backend(name, storage, f"{ftp.url}/area", credential, seed, read, names, True)
    assert name == "s3", name
    moto: MotoServer = request.getfixturevalue("moto_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    credential = Credential(prefix="s3://", access_key=moto.key, secret_key=moto.secret)
    storage = S3Storage(moto.endpoint_url, moto.region, part_size=5 * 2**20, **FAST)
    return Backend(name, storage, f"s3://{bucket}/area", credential, *_bucket(moto, bucket), True)


def _bucket(
    moto: MotoServer, bucket: str
) -> tuple[Callable[[str, bytes], None], Callable[[str], bytes], Callable[[], list[str]]]:
    def seed(rel: str, data: bytes) -> None:
        with _s3(moto) as s3:
            s3.put_object(Bucket=bucket, Key=f"area/{rel}", Body=data)

    def read(rel: str) -> bytes:
        with _s3(moto) as s3:
            body: bytes = s3.get_object(Bucket=bucket, Key=f"area/{rel}")["Body"].read()
        return body

    def names() -> list[str]:
        with _s3(moto) as s3:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
            # Parts of an upload that never completed would be a leak too, if invisible.
            pending = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted(k.removeprefix("area/") for k in keys) + [
            f"(multipart upload of {u['Key']})" for u in pending
        ]

    return seed, read, names


@contextlib.contextmanager
def _s3(moto: MotoServer) -> Iterator[Any]:
    client = moto.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty local directory for downloads (tmp_path also holds the servers' roots)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _payload(size: int) -> bytes:
    return secrets.token_bytes(size)


# -- files --------------------------------------------------------------------------------


@over(*ALL)
def test_file_round_trip(backend: Backend, tmp_path: Path) -> None:
    data = _payload(1_500_001)  # more than one CHUNK, not a multiple of it
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    url = backend.url("in dir/sub/ünï cödé.bin")  # a parent that does not exist yet
    uploaded = backend.storage.put(src, url, directory=False, credential=backend.credential)
    assert uploaded == [Uploaded(url=url, path=src, size=len(data))]
    assert backend.read("in dir/sub/ünï cödé.bin") == data

    dest = tmp_path / "out" / "dest.bin"
    digest = backend.storage.get(url, dest, directory=False, credential=backend.credential)
    assert dest.read_bytes() == data
    expected = hashlib.sha256(data).hexdigest()
    assert digest == (expected if backend.hashes else None)
    assert os.listdir(dest.parent) == ["dest.bin"]  # no temporary file left beside it
    if backend.name != "file":  # a local copy keeps its source's mode
        assert stat.S_IMODE(dest.stat().st_mode) == 0o644


@over(*ALL)
def test_empty_file_round_trip(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    url = backend.url("empty")
    backend.storage.put(src, url, directory=False, credential=backend.credential)
    assert backend.read("empty") == b""
    digest = backend.storage.get(
        url, tmp_path / "back", directory=False, credential=backend.credential
    )
    assert (tmp_path / "back").read_bytes() == b""
    if backend.hashes:
        assert digest == hashlib.sha256(b"").hexdigest()


@over(*ALL)
def test_overwrite_replaces_the_object_and_leaves_no_temporary_one(
    backend: Backend, tmp_path: Path
) -> None:
    backend.seed("result.txt", b"old content\n")
    src = tmp_path / "new.txt"
    src.write_bytes(b"new content, longer\n")
    url = backend.url("result.txt")
    backend.storage.put(src, url, directory=False, credential=backend.credential)
    assert backend.read("result.txt") == b"new content, longer\n"
    assert backend.names() == ["result.txt"]


@over(*ALL)
def test_stat(backend: Backend) -> None:
    backend.seed("a/f.txt", b"12345")
    url = backend.url("a/f.txt")
    info = backend.storage.stat(url, credential=backend.credential)
    assert (info.url, info.size, info.is_dir) == (url, 5, False)
    assert info.validators() is not None


@over(*TREES)
def test_stat_of_a_directory(backend: Backend) -> None:
    backend.seed("d/f.txt", b"x")
    info = backend.storage.stat(backend.url("d"), credential=backend.credential)
    assert info.is_dir


@over(*ALL)
def test_validators_change_when_the_content_does(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "v"
    url = backend.url("v.txt")
    src.write_bytes(b"version 1")
    backend.storage.put(src, url, directory=False, credential=backend.credential)
    first = backend.storage.stat(url, credential=backend.credential).validators()
    src.write_bytes(b"version 2")  # same size, in the same second
    backend.storage.put(src, url, directory=False, credential=backend.credential)
    second = backend.storage.stat(url, credential=backend.credential).validators()
    assert first is not None and second is not None
    assert first != second


@over(*ALL)
def test_missing_object_is_not_found_and_leaves_no_partial_file(
    backend: Backend, tmp_path: Path
) -> None:
    url = backend.url("missing.txt")
    dest = tmp_path / "out" / "missing.txt"
    with pytest.raises(StorageError) as stat_error:
        backend.storage.stat(url, credential=backend.credential)
    with pytest.raises(StorageError) as get_error:
        backend.storage.get(url, dest, directory=False, credential=backend.credential)
    for error in (stat_error.value, get_error.value):
        assert error.url == url
        assert "not found" in error.cause.lower() or "no such file" in error.cause
    assert not dest.exists()
    assert not dest.parent.exists() or os.listdir(dest.parent) == []


@over(*TREES)
def test_get_file_of_a_directory_and_directory_of_a_file_say_which(
    backend: Backend, out: Path
) -> None:
    backend.seed("d/f.txt", b"x")
    with pytest.raises(StorageError, match="is a directory; declare the input as a DIRECTORY"):
        backend.storage.get(
            backend.url("d"), out / "x", directory=False, credential=backend.credential
        )
    with pytest.raises(
        StorageError, match="is a file, not a directory; declare the input as a FILE"
    ):
        backend.storage.get(
            backend.url("d/f.txt"), out / "y", directory=True, credential=backend.credential
        )
    assert list(out.iterdir()) == []


# -- directories --------------------------------------------------------------------------


def _source_tree(root: Path) -> dict[str, bytes]:
    files = {
        "top.txt": b"top\n",
        "empty.dat": b"",
        "sub dir/ünï cödé.txt": "ünï\n".encode(),
        "sub dir/deeper/big.bin": _payload(CHUNK_PLUS),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


CHUNK_PLUS = (1 << 20) + 3


@over(*TREES)
def test_directory_round_trip(backend: Backend, tmp_path: Path, out: Path) -> None:
    src = tmp_path / "results"
    files = _source_tree(src)
    url = backend.url("run 1")
    uploaded = backend.storage.put(src, url, directory=True, credential=backend.credential)
    assert sorted(u.url for u in uploaded) == sorted(
        join_url(url, PurePosixPath(rel)) for rel in files
    )
    assert {u.path: u.size for u in uploaded} == {src / rel: len(d) for rel, d in files.items()}
    assert backend.names() == sorted(f"run 1/{rel}" for rel in files)

    dest = out / "back"
    assert backend.storage.get(url, dest, directory=True, credential=backend.credential) is None
    assert _tree(dest) == files
    if backend.name != "file":
        modes = {stat.S_IMODE(p.stat().st_mode) for p in [dest, *dest.rglob("*")]}
        assert modes == {0o755, 0o644}
    assert os.listdir(out) == ["back"]  # no temporary tree left beside it


@over(*TREES)
def test_list_is_recursive_and_sorted(backend: Backend) -> None:
    for rel in ("b/z.txt", "a.txt", "b/c/d.txt", "b y/ü.txt"):
        backend.seed(rel, rel.encode())
    listed = backend.storage.list(backend.base, credential=backend.credential)
    rels = ["a.txt", "b/c/d.txt", "b/z.txt", "b y/ü.txt"]  # a directory before what follows it
    assert [i.url for i in listed] == [backend.url(rel) for rel in rels]
    assert [i.size for i in listed] == [len(rel.encode()) for rel in rels]
    assert all(not i.is_dir and i.validators() is not None for i in listed)
    # The validators match what stat() says, so that either can key the input cache.
    assert listed[0] == backend.storage.stat(backend.url("a.txt"), credential=backend.credential)


@over(*TREES)
def test_a_file_lists_as_itself(backend: Backend) -> None:
    backend.seed("only.txt", b"1")
    url = backend.url("only.txt")
    listed = backend.storage.list(url, credential=backend.credential)
    assert [(i.url, i.size) for i in listed] == [(url, 1)]


@over(*TREES)
def test_missing_directory_is_not_found(backend: Backend, out: Path) -> None:
    with pytest.raises(StorageError) as error:
        backend.storage.get(
            backend.url("nothing"), out / "d", directory=True, credential=backend.credential
        )
    assert "not found" in error.value.cause.lower() or "no such file" in error.value.cause
    assert list(out.iterdir()) == []


# -- failures -----------------------------------------------------------------------------


class _FailingFile:
    """A local file whose reads fail (EIO) once ``after`` bytes were read: a disk going bad."""

    def __init__(self, fh: BinaryIO, *, after: int) -> None:
        self._fh = fh
        self._left = after

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise OSError(errno.EIO, "Input/output error", self._fh.name)
        data = self._fh.read(n)
        self._left -= len(data)
        return data

    def __enter__(self) -> _FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


@over(*REMOTE)
def test_an_upload_that_fails_midway_leaves_the_old_object_and_nothing_else(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.seed("out.bin", b"the previous result")
    src = tmp_path / "out.bin"
    src.write_bytes(_payload(12 * 2**20))  # S3: two 5 MiB parts go up before the failure

    real_open = Path.open

    def failing_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        fh = real_open(path, *args, **kwargs)
        return _FailingFile(fh, after=11 * 2**20) if path == src else fh

    monkeypatch.setattr(Path, "open", failing_open)
    with pytest.raises(StorageError) as error:
        backend.storage.put(
            src, backend.url("out.bin"), directory=False, credential=backend.credential
        )
    assert error.value.cause == f"input/output error: {src}"
    assert isinstance(error.value.__cause__, OSError)  # the cache looks for a full disk there
    assert backend.names() == ["out.bin"]
    assert backend.read("out.bin") == b"the previous result"


@over(*REMOTE)
def test_a_source_that_changes_during_the_upload_is_not_uploaded(
    backend: Backend, tmp_path: Path
) -> None:
    # /proc files claim size 0 and then have content: as a file still being written would.
    backend.seed("status", b"before")
    with pytest.raises(StorageError, match="changed while it was uploaded"):
        backend.storage.put(
            Path("/proc/self/status"),
            backend.url("status"),
            directory=False,
            credential=backend.credential,
        )
    assert backend.names() == ["status"]
    assert backend.read("status") == b"before"


WRONG = "Wr0ng-" + secrets.token_hex(6)


@over(*REMOTE)
def test_wrong_credentials_are_refused_without_showing_the_secret(backend: Backend) -> None:
    backend.seed("f.txt", b"x")
    assert backend.credential is not None
    wrong = Credential(
        prefix=backend.credential.prefix,
        username=backend.credential.username,
        password=WRONG if backend.credential.password else None,
        access_key=backend.credential.access_key,
        secret_key=WRONG if backend.credential.secret_key else None,
    )
    with pytest.raises(StorageError) as error:
        backend.storage.stat(backend.url("f.txt"), credential=wrong)
    assert error.value.cause.startswith(("access denied", "login refused")), error.value.cause
    assert WRONG not in str(error.value)


@over("s3", "webdav")  # the test FTP server lets anyone in (test_ftp_anonymous_login)
def test_no_credential_where_one_is_needed_is_refused(backend: Backend) -> None:
    backend.seed("f.txt", b"x")
    with pytest.raises(StorageError) as error:
        backend.storage.stat(backend.url("f.txt"))
    assert error.value.cause.startswith(("access denied", "login refused")), error.value.cause


@pytest.mark.parametrize("scheme", ["http", *REMOTE])
def test_connection_refused_is_retried_then_reported(scheme: str) -> None:
    pauses: list[float] = []
    port = refused_port()
    storage: Storage
    if scheme == "http":
        storage = HttpStorage(backoff=(0.01, 0.02), sleep=pauses.append)
        url = f"http://127.0.0.1:{port}/x"
    elif scheme == "s3":
        storage = S3Storage(
            f"http://127.0.0.1:{port}",
            "us-east-1",
            timeout=5,
            attempts=3,
            backoff=0.01,
            sleep=pauses.append,
        )
        url = "s3://bucket/x"
    elif scheme == "webdav":
        storage = WebdavStorage(timeout=5, attempts=3, backoff=0.01, sleep=pauses.append)
        url = f"webdav://127.0.0.1:{port}/x"
    else:
        storage = FtpStorage(timeout=5, attempts=3, backoff=0.01, sleep=pauses.append)
        url = f"ftp://127.0.0.1:{port}/x"
    with pytest.raises(StorageError) as error:
        storage.stat(url)
    assert error.value.cause.lower().startswith("could not connect: connection refused")
    assert error.value.cause.endswith("(after 3 attempts)")
    assert pauses == [0.01, 0.02]


# -- per scheme ---------------------------------------------------------------------------


def test_s3_no_such_bucket(moto_server: MotoServer) -> None:
    credential = Credential(
        prefix="s3://", access_key=moto_server.key, secret_key=moto_server.secret
    )
    storage = S3Storage(moto_server.endpoint_url, moto_server.region, **FAST)
    with pytest.raises(StorageError) as error:
        storage.stat("s3://no-such-bucket-here/x", credential=credential)
    assert error.value.cause == "no such bucket"


def test_webdav_anonymous_server(webdav_area: WebdavArea, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("anonymous\n")
    storage = WebdavStorage(**FAST)
    url = f"{webdav_area.url}/new/dir/f.txt"
    storage.put(src, url, directory=False)
    assert (webdav_area.root / "new" / "dir" / "f.txt").read_text() == "anonymous\n"
    assert (
        storage.get(url, tmp_path / "back.txt", directory=False)
        == hashlib.sha256(b"anonymous\n").hexdigest()
    )


def test_webdav_password_in_the_url(webdav_auth_area: WebdavArea, tmp_path: Path) -> None:
    (webdav_auth_area.root / "f.txt").write_text("hi")
    ((user, password),) = webdav_auth_area.users.items()
    storage = WebdavStorage(**FAST)
    netloc = webdav_auth_area.url.removeprefix("webdav://")
    storage.get(f"webdav://{user}:{password}@{netloc}/f.txt", tmp_path / "f", directory=False)
    assert (tmp_path / "f").read_text() == "hi"
    with pytest.raises(StorageError) as error:
        storage.get(f"webdav://{user}:{WRONG}@{netloc}/f.txt", tmp_path / "g", directory=False)
    assert error.value.cause.startswith("login refused")
    assert WRONG not in str(error.value)


def test_ftp_anonymous_login(ftp_area: FtpArea, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("anonymous\n")
    storage = FtpStorage(**FAST)
    url = f"{ftp_area.url}/pub/f.txt"
    storage.put(src, url, directory=False)
    assert (ftp_area.root / "pub" / "f.txt").read_text() == "anonymous\n"
    storage.get(url, tmp_path / "back.txt", directory=False)
    assert (tmp_path / "back.txt").read_text() == "anonymous\n"


def test_ftp_login_from_the_url_and_its_password_redacted(
    ftp_area: FtpArea, tmp_path: Path
) -> None:
    (ftp_area.root / "f.txt").write_text("hi")
    storage = FtpStorage(**FAST)
    netloc = ftp_area.url.removeprefix("ftp://")
    storage.get(
        f"ftp://{ftp_area.user}:{ftp_area.password}@{netloc}/f.txt",
        tmp_path / "f",
        directory=False,
    )
    assert (tmp_path / "f").read_text() == "hi"
    with pytest.raises(StorageError) as error:
        storage.stat(f"ftp://{ftp_area.user}:{WRONG}@{netloc}/f.txt")
    assert error.value.cause.startswith("login refused")
    assert WRONG not in str(error.value)
    assert error.value.url == f"ftp://***@{netloc}/f.txt"


def test_one_router_for_all_schemes(
    moto_server: MotoServer,
    s3_bucket: str,
    webdav_area: WebdavArea,
    ftp_area: FtpArea,
    tmp_path: Path,
) -> None:
    router = StorageRouter(
        [
            S3Storage(moto_server.endpoint_url, moto_server.region, **FAST),
            WebdavStorage(**FAST),
            FtpStorage(**FAST),
        ]
    )
    assert router.schemes == ["ftp", "s3", "webdav", "webdavs"]
    src = tmp_path / "f.txt"
    src.write_text("routed")
    s3 = Credential(prefix="s3://", access_key=moto_server.key, secret_key=moto_server.secret)
    for url, credential in [
        (f"s3://{s3_bucket}/f.txt", s3),
        (f"{webdav_area.url}/f.txt", None),
        (f"{ftp_area.url}/f.txt", None),
    ]:
        assert router.check(url, True) is None
        router.put(src, url, directory=False, credential=credential)
        assert router.stat(url, credential=credential).size == 6


@over(*REMOTE)
def test_no_thread_or_connection_outlives_an_operation(backend: Backend, tmp_path: Path) -> None:
    backend.seed("f.txt", b"x")
    url = backend.url("f.txt")

    def operations() -> None:
        backend.storage.stat(url, credential=backend.credential)
        backend.storage.get(
            url, tmp_path / secrets.token_hex(4), directory=False, credential=backend.credential
        )
        backend.storage.list(backend.base, credential=backend.credential)
        with pytest.raises(StorageError):
            backend.storage.stat(backend.url("missing"), credential=backend.credential)

    operations()  # once first: fsspec starts its one IO thread (and its resolver) on first use
    threads = {t.ident for t in threading.enumerate()}
    fds = _open_fds()
    for _ in range(3):
        operations()
    assert {t.ident for t in threading.enumerate()} <= threads
    assert _open_fds() <= fds  # every connection closed (the servers run in other processes)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
