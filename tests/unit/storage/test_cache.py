"""InputCache: hits and misses, links not copies, checksums, sharing between threads and
processes, eviction, pruning, and what failures leave behind (nothing)."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from toolferry.config import Settings
from toolferry.storage.base import Credential, ObjectInfo, Operation, StorageError, Uploaded
from toolferry.storage.cache import InputCache, Staged
from toolferry.storage.file import FileStorage
from toolferry.storage.router import StorageRouter, default_router

BIG = 1 << 30


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Counting:
    """FileStorage that counts calls and can pause or fail inside ``get``."""

    schemes: tuple[str, ...] = ("file",)
    operations: frozenset[Operation] = frozenset(Operation)

    def __init__(self, allowed: Path) -> None:
        self.inner = FileStorage([allowed])
        self.calls: Counter[str] = Counter()
        self.started = threading.Event()
        self.gate: threading.Event | None = None
        self.fail: Exception | None = None
        self.no_validators = False
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def supports(self, url: str, *, write: bool) -> str | None:
        return self.inner.supports(url, write=write)

    def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
        self._count("stat")
        info = self.inner.stat(url)
        if self.no_validators:
            return ObjectInfo(url=info.url, size=info.size, is_dir=info.is_dir)
        return info

    def get(
        self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
    ) -> str | None:
        self._count("get")
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail is not None:
            dest.write_bytes(b"partial")  # a storage that leaves a mess behind
            raise self.fail
        return self.inner.get(url, dest, directory=directory)

    def put(
        self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
    ) -> list[Uploaded]:
        raise AssertionError("the cache never uploads")

    def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
        self._count("list")
        return self.inner.list(url)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def storage(src: Path) -> Counting:
    return Counting(src)


@pytest.fixture
def router(storage: Counting) -> StorageRouter:
    return StorageRouter([storage])


def write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def assert_clean(root: Path) -> None:
    """No download in progress or left behind."""
    assert listing(root / "tmp") == []
    assert [p for p in listing(root / "keys") if p.endswith(".part")] == []


# -- hits and misses --------------------------------------------------------------------------


def test_miss_then_hit_links_the_same_read_only_inode(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    url = write(src / "a.txt", b"hello")
    cache = InputCache(root, max_bytes=BIG)

    first = cache.stage(url, work / "one", directory=False, router=router)
    second = cache.stage(url, work / "two", directory=False, router=router)

    assert first == Staged(sha256=sha(b"hello"), size=5, hit=False, files={})
    assert second == Staged(sha256=sha(b"hello"), size=5, hit=True, files={})
    assert storage.calls["get"] == 1
    blob = root / "blobs" / sha(b"hello")
    for dest in (work / "one", work / "two"):
        assert dest.read_bytes() == b"hello"
        assert dest.stat().st_ino == blob.stat().st_ino
        assert stat.S_IMODE(dest.stat().st_mode) == 0o444
    [entry] = cache.entries()
    assert (entry.kind, entry.size, entry.hits, entry.url) == ("file", 5, 1, url)
    assert entry.sha256 == sha(b"hello")
    assert cache.usage() == 5
    assert_clean(root)


@pytest.mark.parametrize("change", ["content", "mtime"])
def test_a_changed_source_is_a_miss(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter, change: str
) -> None:
    url = write(src / "a.txt", b"one")
    cache = InputCache(root, max_bytes=BIG)
    cache.stage(url, work / "1", directory=False, router=router)
    if change == "content":
        write(src / "a.txt", b"three")
    else:
        os.utime(src / "a.txt", ns=(1_000_000_000, 1_000_000_000))

    staged = cache.stage(url, work / "2", directory=False, router=router)

    assert not staged.hit
    assert storage.calls["get"] == 2
    assert (work / "2").read_bytes() == (b"three" if change == "content" else b"one")
    assert (work / "1").read_bytes() == b"one"  # the earlier task's input is untouched


def test_same_content_under_two_urls_shares_one_blob(
    root: Path, src: Path, work: Path, router: StorageRouter
) -> None:
    a = write(src / "a.txt", b"same")
    b = write(src / "b.txt", b"same")
    cache = InputCache(root, max_bytes=BIG)

    cache.stage(a, work / "a", directory=False, router=router)
    cache.stage(b, work / "b", directory=False, router=router)

    assert listing(root / "blobs") == [sha(b"same")]
    assert (work / "a").stat().st_ino == (work / "b").stat().st_ino
    assert cache.usage() == 4
    assert sorted(e.url or "" for e in cache.entries()) == [a, b]


def test_a_source_without_validators_is_downloaded_each_time_but_stored_once(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    url = write(src / "a.txt", b"fresh")
    storage.no_validators = True
    cache = InputCache(root, max_bytes=BIG)

    first = cache.stage(url, work / "1", directory=False, router=router)
    second = cache.stage(url, work / "2", directory=False, router=router)

    assert (first.hit, second.hit) == (False, False)
    assert storage.calls["get"] == 2
    assert listing(root / "keys") == []
    assert listing(root / "blobs") == [sha(b"fresh")]
    [entry] = cache.entries()
    assert (entry.key, entry.url, entry.size) == (None, None, 5)


def test_userinfo_is_not_part_of_the_key_nor_of_the_recorded_url(root: Path, work: Path) -> None:
    class Remote:
        schemes: tuple[str, ...] = ("mem",)
        operations: frozenset[Operation] = frozenset(Operation)
        gets = 0

        def supports(self, url: str, *, write: bool) -> str | None:
            return None

        def stat(self, url: str, *, credential: Credential | None = None) -> ObjectInfo:
            return ObjectInfo(url=url, size=4, etag='"v1"')

        def get(
            self, url: str, dest: Path, *, directory: bool, credential: Credential | None = None
        ) -> str | None:
            self.gets += 1
            dest.write_bytes(b"data")
            return sha(b"data")

        def put(
            self, src: Path, url: str, *, directory: bool, credential: Credential | None = None
        ) -> list[Uploaded]:
            raise AssertionError

        def list(self, url: str, *, credential: Credential | None = None) -> list[ObjectInfo]:
            return [self.stat(url)]

    remote = Remote()
    router = StorageRouter([remote])
    cache = InputCache(root, max_bytes=BIG)

    cache.stage("mem://alice:s3cret@host/x", work / "1", directory=False, router=router)
    staged = cache.stage("mem://bob:hunter22@host/x", work / "2", directory=False, router=router)

    assert staged.hit and remote.gets == 1
    [entry] = cache.entries()
    assert entry.url == "mem://***@host/x"
    assert not any("s3cret" in p.read_text() for p in (root / "keys").iterdir())


def test_dest_that_exists_is_refused_and_left_alone(
    root: Path, src: Path, work: Path, router: StorageRouter
) -> None:
    url = write(src / "a.txt", b"x")
    (work / "taken").write_text("mine")
    cache = InputCache(root, max_bytes=BIG)

    with pytest.raises(StorageError, match="exists already"):
        cache.stage(url, work / "taken", directory=False, router=router)

    assert (work / "taken").read_text() == "mine"


# -- directories ------------------------------------------------------------------------------


def make_tree(src: Path) -> str:
    write(src / "tree" / "a.txt", b"A")
    write(src / "tree" / "sub" / "b.txt", b"BB")
    (src / "tree" / "empty").mkdir()
    return str(src / "tree")


def test_a_directory_is_recreated_with_linked_files(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    url = make_tree(src)
    cache = InputCache(root, max_bytes=BIG)

    first = cache.stage(url, work / "one", directory=True, router=router)
    second = cache.stage(url, work / "two", directory=True, router=router)

    assert (first.hit, second.hit) == (False, True)
    assert storage.calls["get"] == 1
    assert first.size == second.size == 3
    assert first.sha256 == second.sha256
    assert first.files == second.files == {"a.txt": sha(b"A"), "sub/b.txt": sha(b"BB")}
    for dest in (work / "one", work / "two"):
        assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
            "a.txt",
            "empty",
            "sub",
            "sub/b.txt",
        ]
        assert (dest / "sub" / "b.txt").read_bytes() == b"BB"
        assert stat.S_IMODE((dest / "a.txt").stat().st_mode) == 0o444
        assert (dest / "sub").is_dir() and not (dest / "sub").is_symlink()
    assert (work / "one" / "a.txt").stat().st_ino == (work / "two" / "a.txt").stat().st_ino
    tree = root / "blobs" / f"{first.sha256}.tree"
    assert (tree / "sub" / "b.txt").stat().st_ino == (work / "two" / "sub" / "b.txt").stat().st_ino
    [entry] = cache.entries()
    assert (entry.kind, entry.size, entry.hits) == ("directory", 3, 1)


def test_a_changed_file_in_a_directory_is_a_miss(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    url = make_tree(src)
    cache = InputCache(root, max_bytes=BIG)
    cache.stage(url, work / "one", directory=True, router=router)
    write(src / "tree" / "sub" / "b.txt", b"changed")

    staged = cache.stage(url, work / "two", directory=True, router=router)

    assert not staged.hit
    assert (work / "two" / "sub" / "b.txt").read_bytes() == b"changed"
    assert (work / "one" / "sub" / "b.txt").read_bytes() == b"BB"


# -- checksums --------------------------------------------------------------------------------


def test_a_checksum_url_hits_without_any_request(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    path = write(src / "a.txt", b"pinned")
    url = f"{path}#sha256={sha(b'pinned').upper()}"
    cache = InputCache(root, max_bytes=BIG)

    first = cache.stage(url, work / "1", directory=False, router=router)
    assert (first.hit, storage.calls["stat"], storage.calls["get"]) == (False, 0, 1)
    second = cache.stage(url, work / "2", directory=False, router=router)

    assert second.hit and second.sha256 == sha(b"pinned")
    assert storage.calls == Counter(get=1)
    assert (work / "2").read_bytes() == b"pinned"


def test_a_checksum_url_hits_content_cached_under_another_url(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    plain = write(src / "a.txt", b"content")
    cache = InputCache(root, max_bytes=BIG)
    cache.stage(plain, work / "1", directory=False, router=router)
    storage.calls.clear()

    staged = cache.stage(
        f"https://elsewhere.invalid/c#sha256={sha(b'content')}",
        work / "2",
        directory=False,
        router=router,
    )

    assert staged.hit and storage.calls == Counter()
    assert (work / "2").stat().st_ino == (work / "1").stat().st_ino


def test_a_checksum_mismatch_fails_and_keeps_nothing(
    root: Path, src: Path, work: Path, router: StorageRouter
) -> None:
    path = write(src / "a.txt", b"tampered")
    wrong = sha(b"original")
    cache = InputCache(root, max_bytes=BIG)

    with pytest.raises(StorageError) as caught:
        cache.stage(f"{path}#sha256={wrong}", work / "a", directory=False, router=router)

    assert caught.value.cause == f"checksum mismatch: expected {wrong}, got {sha(b'tampered')}"
    assert listing(root / "blobs") == [] and listing(root / "keys") == []
    assert not (work / "a").exists()
    assert_clean(root)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/x#sha256=abc", "64 hex digits"),
        (f"/x#sha256={'0' * 64}", "cannot be given for a DIRECTORY"),
    ],
)
def test_bad_checksum_fragments_are_refused(
    root: Path, work: Path, router: StorageRouter, url: str, message: str
) -> None:
    cache = InputCache(root, max_bytes=BIG)
    with pytest.raises(StorageError, match=message):
        cache.stage(url, work / "a", directory=True, router=router)


# -- concurrency ------------------------------------------------------------------------------


def test_two_threads_staging_one_url_share_one_download(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    url = write(src / "a.txt", b"shared")
    storage.gate = threading.Event()
    cache = InputCache(root, max_bytes=BIG)
    results: dict[str, Staged] = {}

    def stage(name: str) -> None:
        results[name] = cache.stage(url, work / name, directory=False, router=router)

    threads = [threading.Thread(target=stage, args=(n,)) for n in ("a", "b")]
    threads[0].start()
    assert storage.started.wait(5)
    threads[1].start()
    time.sleep(0.1)  # let the second thread reach the key's lock
    storage.gate.set()
    for t in threads:
        t.join(10)

    assert storage.calls["get"] == 1
    assert sorted(r.hit for r in results.values()) == [False, True]
    assert (work / "a").stat().st_ino == (work / "b").stat().st_ino


def test_eviction_never_pulls_a_blob_from_under_a_stage(
    root: Path, src: Path, work: Path, router: StorageRouter
) -> None:
    """Many threads, a few URLs and a cap that fits two of them: every stage links while the
    others evict, and each task still gets the right bytes."""
    urls = [write(src / f"{n}.txt", str(n).encode() * 100) for n in range(4)]
    cache = InputCache(root, max_bytes=250)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(15):
                n = (t + i) % len(urls)
                dest = work / f"{t}-{i}"
                cache.stage(urls[n], dest, directory=False, router=router)
                assert dest.read_bytes() == str(n).encode() * 100
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == []
    assert len(listing(work)) == 90
    assert cache.usage() <= 250
    assert_clean(root)


SLOW_STAGE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from toolferry.storage.cache import InputCache
    from toolferry.storage.file import FileStorage
    from toolferry.storage.router import StorageRouter

    root, url, dest, allowed, started, go = sys.argv[1:]

    class Slow(FileStorage):
        def get(self, url, dest, *, directory, credential=None):
            Path(started).touch()
            deadline = time.monotonic() + 10
            while not Path(go).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return super().get(url, dest, directory=directory)

    router = StorageRouter([Slow([Path(allowed)])])
    staged = InputCache(Path(root), max_bytes=1 << 30).stage(
        url, Path(dest), directory=False, router=router
    )
    print("hit" if staged.hit else "miss")
    """
)


def test_a_process_and_a_thread_share_one_download(
    root: Path, src: Path, work: Path, tmp_path: Path, storage: Counting, router: StorageRouter
) -> None:
    url = write(src / "a.txt", b"across processes")
    started, go = tmp_path / "started", tmp_path / "go"
    InputCache(root, max_bytes=BIG)
    args = [root, url, work / "proc", src, started, go]
    with subprocess.Popen(
        [sys.executable, "-c", SLOW_STAGE, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        deadline = time.monotonic() + 10
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started.exists(), proc.communicate()
        results: list[Staged] = []
        thread = threading.Thread(
            target=lambda: results.append(
                InputCache(root, max_bytes=BIG).stage(
                    url, work / "thread", directory=False, router=router
                )
            )
        )
        thread.start()
        time.sleep(0.1)  # the thread now waits on the key's lock, held by the process
        assert thread.is_alive()
        go.touch()
        stdout, stderr = proc.communicate(timeout=10)
        thread.join(10)

    assert proc.returncode == 0, stderr
    assert stdout.strip() == "miss"
    assert [r.hit for r in results] == [True]
    assert storage.calls["get"] == 0
    assert (work / "thread").stat().st_ino == (work / "proc").stat().st_ino


# -- size cap and pruning ---------------------------------------------------------------------


def stage_files(
    cache: InputCache, src: Path, work: Path, router: StorageRouter, *names: str, size: int = 100
) -> None:
    for name in names:
        url = write(src / name, name.encode() * size)
        cache.stage(url, work / f"{name}-{len(listing(work))}", directory=False, router=router)


def cached_names(cache: InputCache) -> list[str]:
    return sorted(Path(e.url or "?").name for e in cache.entries())


def test_least_recently_used_entries_go_first_when_over_the_cap(
    root: Path, src: Path, work: Path, router: StorageRouter
) -> None:
    cache = InputCache(root, max_bytes=250)
    stage_files(cache, src, work, router, "a", "b")
    stage_files(cache, src, work, router, "a")  # a hit: now b is the least recently used

    stage_files(cache, src, work, router, "c")

    assert cached_names(cache) == ["a", "c"]
    assert cache.usage() == 200
    assert sorted(listing(root / "blobs")) == sorted([sha(b"a" * 100), sha(b"c" * 100)])
    assert all(p.stat().st_size == 100 for p in work.iterdir())  # tasks keep their links


def test_a_cap_of_zero_keeps_nothing_but_still_stages(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    url = write(src / "a.txt", b"transient")
    cache = InputCache(root, max_bytes=0)

    first = cache.stage(url, work / "1", directory=False, router=router)
    second = cache.stage(url, work / "2", directory=False, router=router)

    assert (first.hit, second.hit) == (False, False)
    assert storage.calls["get"] == 2
    assert (work / "1").read_bytes() == (work / "2").read_bytes() == b"transient"
    assert cache.usage() == 0 and cache.entries() == []
    assert listing(root / "blobs") == [] and listing(root / "keys") == []


def test_prune_removes_everything(root: Path, src: Path, work: Path, router: StorageRouter) -> None:
    cache = InputCache(root, max_bytes=BIG)
    stage_files(cache, src, work, router, "a", "b")
    url = make_tree(src)
    cache.stage(url, work / "tree", directory=True, router=router)

    result = cache.prune(everything=True)

    assert len(result.removed) == 3 and result.freed == 203
    assert cache.entries() == [] and cache.usage() == 0
    assert listing(root / "blobs") == [] and listing(root / "locks") == []
    assert (work / "tree" / "sub" / "b.txt").read_bytes() == b"BB"


def test_prune_older_than_uses_last_use(
    root: Path, src: Path, work: Path, router: StorageRouter
) -> None:
    cache = InputCache(root, max_bytes=BIG)
    stage_files(cache, src, work, router, "old", "new")
    [old] = [e for e in cache.entries() if (e.url or "").endswith("old")]
    two_days_ago = time.time() - 2 * 86400
    os.utime(root / "keys" / f"{old.key}.json", (two_days_ago, two_days_ago))

    result = cache.prune(older_than=timedelta(days=1))

    assert [e.key for e in result.removed] == [old.key]
    assert result.freed == 300
    assert cached_names(cache) == ["new"]


def test_prune_to_a_size_and_by_default_to_the_cap(
    root: Path, src: Path, work: Path, router: StorageRouter
) -> None:
    stage_files(InputCache(root, max_bytes=BIG), src, work, router, "a", "b", "c")

    assert InputCache(root, max_bytes=BIG).prune().removed == ()
    result = InputCache(root, max_bytes=BIG).prune(max_bytes=150)
    assert [Path(e.url or "").name for e in result.removed] == ["a", "b"]
    assert cached_names(InputCache(root, max_bytes=BIG)) == ["c"]

    result = InputCache(root, max_bytes=0).prune()
    assert result.freed == 100 and cache_empty(root)


def cache_empty(root: Path) -> bool:
    return InputCache(root, max_bytes=BIG).entries() == []


def test_prune_removes_content_no_key_refers_to(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    storage.no_validators = True
    cache = InputCache(root, max_bytes=BIG)
    stage_files(cache, src, work, router, "a")

    result = cache.prune(older_than=timedelta(days=365))

    assert [(e.key, e.size) for e in result.removed] == [(None, 100)]
    assert listing(root / "blobs") == []


def test_the_cap_setting_reads_gb_as_gib() -> None:
    def cap(gb: float) -> int:
        return Settings(cache_max_gb=gb).cache_max_bytes

    assert cap(20) == 20 * 2**30 and cap(0.5) == 2**29 and cap(0) == 0


# -- failures leave nothing behind -----------------------------------------------------------


def test_start_up_sweeps_abandoned_downloads_but_not_live_ones(root: Path) -> None:
    InputCache(root, max_bytes=BIG)
    tmp = root / "tmp"
    write(tmp / "dead" / "data" / "part", b"x")
    (tmp / "dead.lock").touch()
    write(tmp / "orphan" / "data", b"x")  # its lock file is gone too
    write(tmp / "live" / "data", b"x")
    (tmp / "live.lock").touch()
    write(root / "keys" / f"{'0' * 64}.json.part", b"{")
    with (tmp / "live.lock").open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        InputCache(root, max_bytes=BIG)

    assert listing(tmp) == ["live", "live.lock"]
    assert listing(root / "keys") == []


def test_a_failed_download_leaves_nothing_behind(
    root: Path, src: Path, work: Path, storage: Counting, router: StorageRouter
) -> None:
    url = write(src / "a.txt", b"x")
    storage.fail = StorageError(url, "connection reset")
    cache = InputCache(root, max_bytes=BIG)

    with pytest.raises(StorageError, match="connection reset"):
        cache.stage(url, work / "a", directory=False, router=router)

    assert_clean(root)
    assert listing(root / "blobs") == [] and listing(root / "keys") == []
    assert listing(work) == []


def test_a_full_disk_is_named_and_leaves_nothing_behind(
    root: Path, src: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_tree(src)
    router = default_router([src])
    cache = InputCache(root, max_bytes=BIG)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "copy2", full)
    with pytest.raises(StorageError) as caught:
        cache.stage(url, work / "tree", directory=True, router=router)

    assert caught.value.cause.startswith("disk full while caching (no space left on device)")
    assert_clean(root)
    assert listing(root / "blobs") == [] and listing(work) == []


def test_a_full_disk_while_linking_is_named_and_removes_the_partial_tree(
    root: Path, src: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_tree(src)
    router = default_router([src])
    cache = InputCache(root, max_bytes=BIG)
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.is_relative_to(work) and self.name == "sub":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(StorageError, match="disk full while caching"):
        cache.stage(url, work / "tree", directory=True, router=router)

    assert listing(work) == []
    assert_clean(root)


@pytest.mark.parametrize("directory", [False, True])
def test_across_filesystems_inputs_are_copied(
    root: Path, src: Path, work: Path, monkeypatch: pytest.MonkeyPatch, directory: bool
) -> None:
    url = make_tree(src) if directory else write(src / "a.txt", b"copied")
    router = default_router([src])
    cache = InputCache(root, max_bytes=BIG)

    def cross_device(source: Any, dest: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "link", cross_device)
    staged = cache.stage(url, work / "in", directory=directory, router=router)

    target = work / "in" / "sub" / "b.txt" if directory else work / "in"
    assert target.read_bytes() == (b"BB" if directory else b"copied")
    assert target.stat().st_nlink == 1  # a copy, not a link
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert not staged.hit
    assert len(cache.entries()) == 1
