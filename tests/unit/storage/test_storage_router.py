"""StorageRouter: dispatch by scheme, refusal of unknown schemes, forwarding of operations."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolferry.storage.base import ObjectInfo, StorageError, Uploaded
from toolferry.storage.file import FileStorage
from toolferry.storage.http import HttpStorage
from toolferry.storage.router import StorageRouter, default_router, scheme_of


class FakeStorage:
    """Records calls; refuses writes, to show that check() asks the storage."""

    def __init__(self, *schemes: str) -> None:
        self.schemes = schemes
        self.calls: list[tuple[str, str]] = []

    def supports(self, url: str, *, write: bool) -> str | None:
        return f"{url} is read-only" if write else None

    def stat(self, url: str) -> ObjectInfo:
        self.calls.append(("stat", url))
        return ObjectInfo(url=url, size=1)

    def get(self, url: str, dest: Path, *, directory: bool) -> None:
        self.calls.append(("get", url))

    def put(self, src: Path, url: str, *, directory: bool) -> list[Uploaded]:
        self.calls.append(("put", url))
        return [Uploaded(url=url, path=src, size=1)]

    def list(self, url: str) -> list[ObjectInfo]:
        self.calls.append(("list", url))
        return []


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
    fake = FakeStorage("mem", "mem2")
    router = StorageRouter([fake, FakeStorage("other")])
    router.stat("mem://a")
    router.get("mem2://b", tmp_path / "b", directory=False)
    assert router.put(tmp_path, "mem://c", directory=True) == [
        Uploaded(url="mem://c", path=tmp_path, size=1)
    ]
    router.list("mem://d")
    assert fake.calls == [
        ("stat", "mem://a"),
        ("get", "mem2://b"),
        ("put", "mem://c"),
        ("list", "mem://d"),
    ]


def test_two_storages_for_one_scheme() -> None:
    with pytest.raises(ValueError, match="two storages claim the scheme 'http'"):
        StorageRouter([HttpStorage(), FakeStorage("http")])


def test_default_router_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    router = default_router([tmp_path])
    router.get((tmp_path / "a.txt").as_uri(), tmp_path / "b.txt", directory=False)
    assert (tmp_path / "b.txt").read_text() == "a"
