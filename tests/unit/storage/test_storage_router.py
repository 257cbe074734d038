"""StorageRouter: dispatch by scheme, refusal of unknown schemes, forwarding of operations."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolferry.storage.base import Operation, StorageError, Uploaded
from toolferry.storage.file import FileStorage
from toolferry.storage.http import HttpStorage
from toolferry.storage.memory import MemoryStorage
from toolferry.storage.router import StorageRouter, default_router, scheme_of


def FakeStorage(*schemes: str) -> MemoryStorage:
    """Records calls; refuses writes, to show that check() asks the storage."""
    return MemoryStorage(*schemes, read_only=True)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("/abs/path", "file"),
        ("file:///abs", "file"),
        ("HTTPS://h/x", "https"),
        ("s3://bucket/key", "s3"),
        ("relative/path", ""),
        ("", ""),
    ],
)
def test_scheme_of(url: str, scheme: str) -> None:
    assert scheme_of(url) == scheme


def test_dispatch_by_scheme(tmp_path: Path) -> None:
    files, web = FileStorage([tmp_path]), HttpStorage()
    router = StorageRouter([files, web])
    assert router.for_url(f"file://{tmp_path}/x") is files
    assert router.for_url(f"{tmp_path}/x") is files
    assert router.for_url("http://h/x") is web
    assert router.for_url("HTTPS://h/x") is web
    assert router.schemes == ["file", "http", "https"]


def test_unknown_scheme() -> None:
    router = default_router([])
    expected = "scheme 'ftp' is not supported here; supported: file, http, https"
    assert router.check("ftp://u:pw@h/x", write=False) == expected
    with pytest.raises(StorageError) as info:
        router.for_url("ftp://u:pw@h/x")
    assert str(info.value) == f"ftp://***@h/x: {expected}"


def test_no_scheme() -> None:
    reason = default_router([]).check("data/x.txt", False)
    assert reason == (
        "'data/x.txt' is neither a URL nor an absolute path; supported schemes: file, http, https"
    )


def test_check_asks_the_storage(tmp_path: Path) -> None:
    router = StorageRouter([FakeStorage("mem")])
    assert router.check("mem://x", write=False) is None
    assert router.check("mem://x", write=True) == "mem://x is read-only"
    router = default_router([tmp_path])
    assert router.check(f"{tmp_path}/x", write=True) is None
    assert "is outside the directories" in (router.check("/etc/passwd", write=False) or "")


def test_operations_are_forwarded(tmp_path: Path) -> None:
    fake = MemoryStorage("mem", "mem2", objects={"mem2://b": b"b"})
    router = StorageRouter([fake, MemoryStorage("other")])
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "f").write_text("f")
    with pytest.raises(StorageError):
        router.stat("mem://a")
    router.get("mem2://b", tmp_path / "b", directory=False)
    assert router.put(tmp_path / "up", "mem://c", directory=True) == [
        Uploaded(url="mem://c/f", path=tmp_path / "up" / "f", size=1)
    ]
    router.list("mem://d")
    assert fake.calls == [
        ("stat", "mem://a"),
        ("get", "mem2://b"),
        ("put", "mem://c"),
        ("list", "mem://d"),
    ]


def test_check_refuses_operations_the_storage_lacks() -> None:
    router = StorageRouter([MemoryStorage("mem", operations=[Operation.GET, Operation.PUT])])
    assert router.check("mem://x", write=False) is None
    assert router.check("mem://x", write=False, directory=True) == (
        "mem://x: mem:// storage here cannot download directories"
    )
    assert router.check("mem://x", write=True, directory=True) == (
        "mem://x: mem:// storage here cannot upload directories"
    )
    assert router.operations() == {"mem": ["get", "put"]}


def test_check_accepts_a_checksum_on_file_inputs_only() -> None:
    router = StorageRouter([MemoryStorage("mem")])
    digest = "ab" * 32
    assert router.check(f"mem://x#sha256={digest}", write=False) is None
    assert "64 hex digits" in (router.check("mem://x#sha256=12", write=False) or "")
    assert "cannot be given for an output" in (
        router.check(f"mem://x#sha256={digest}", write=True) or ""
    )
    assert "DIRECTORY input" in (
        router.check(f"mem://x#sha256={digest}", write=False, directory=True) or ""
    )


def test_two_storages_for_one_scheme() -> None:
    with pytest.raises(ValueError, match="two storages claim the scheme 'http'"):
        StorageRouter([HttpStorage(), FakeStorage("http")])


def test_default_router_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    router = default_router([tmp_path])
    router.get((tmp_path / "a.txt").as_uri(), tmp_path / "b.txt", directory=False)
    assert (tmp_path / "b.txt").read_text() == "a"
