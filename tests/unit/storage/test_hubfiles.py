"""HubFileStore (spaces, ownership, confined paths, atomic writes) and HubFileStorage (hub://)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolferry.storage.base import Operation, Storage, StorageError
from toolferry.storage.hubfiles import (
    BadPath,
    ChecksumMismatch,
    HubFileStorage,
    HubFileStore,
    NoSuchSpace,
    StoredFile,
    hub_url,
    parse_hub_url,
)


@pytest.fixture
def store(tmp_path: Path) -> HubFileStore:
    return HubFileStore(tmp_path / "files")


@pytest.fixture
def space(store: HubFileStore) -> str:
    return store.create_space("alice")


@pytest.fixture
def hub(store: HubFileStore) -> HubFileStorage:
    return HubFileStorage(store)


def chunks(*parts: bytes) -> Iterator[bytes]:
    yield from parts


def files_of(store: HubFileStore, space: str) -> list[str]:
    """Every entry (also temporary ones) below the space's files folder."""
    base = store.files_dir(space)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))


# --- spaces and ownership --------------------------------------------------------------------


def test_a_new_space_is_empty_owned_and_unguessable(store: HubFileStore) -> None:
    first, second = store.create_space("alice"), store.create_space("bob")
    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0
    assert store.owner_of(first) == "alice"
    assert store.owner_of(second) == "bob"
    assert store.list(first) == []


@pytest.mark.parametrize("space", ["0" * 32, "../x", "", "A" * 32, "abc"])
def test_unknown_or_malformed_spaces_have_no_owner(store: HubFileStore, space: str) -> None:
    assert store.owner_of(space) is None
    with pytest.raises(NoSuchSpace):
        store.files_dir(space)


def test_the_owner_record_is_outside_the_file_tree(store: HubFileStore, space: str) -> None:
    store.write(space, "owner", chunks(b"mallory"))
    assert store.owner_of(space) == "alice"
    assert [f.path for f in store.list(space)] == ["owner"]


def test_check_access_allows_the_owner_and_admins_only(store: HubFileStore, space: str) -> None:
    url = hub_url(space, "in/a.txt")
    assert store.check_access(url, "alice", is_admin=False) is None
    assert store.check_access(url, "root", is_admin=True) is None
    denied = store.check_access(url, "bob", is_admin=False)
    missing = store.check_access(hub_url("f" * 32, "in/a.txt"), "bob", is_admin=False)
    assert denied is not None and "no such file space" in denied
    # Another user's space reads exactly like a missing one.
    assert missing is not None and denied.replace(space, "f" * 32) == missing


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("hub://nothex/a", "does not name a file space"),
        ("s3://b/a", "is not a hub:// URL"),
        (f"hub://{'a' * 32}/../x", "'..'"),
        (f"hub://{'a' * 32}/a?x=1", "query or fragment"),
    ],
)
def test_check_access_refuses_malformed_urls(store: HubFileStore, url: str, needle: str) -> None:
    reason = store.check_access(url, "alice", is_admin=True)
    assert reason is not None and needle in reason


def test_delete_space_removes_everything(store: HubFileStore, space: str) -> None:
    store.write(space, "d/a.txt", chunks(b"x"))
    store.delete_space(space)
    assert store.owner_of(space) is None
    assert not (store.root / space).exists()
    with pytest.raises(NoSuchSpace):
        store.delete_space(space)


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "needle"),
    [
        ("", "is empty"),
        ("/etc/passwd", "must be relative"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a//b", "empty components"),
        ("./a", "'.'"),
        ("a\0b", "NUL"),
        ("d/" + "n" * 256, "longer than 255 bytes"),
        ("d/" * 2000, "longer than 3072 bytes"),
    ],
)
def test_bad_paths_are_refused_with_the_reason(
    store: HubFileStore, space: str, rel: str, needle: str
) -> None:
    with pytest.raises(BadPath, match=needle.replace(".", r"\.")):
        store.path_in(space, rel)


def test_a_symlink_out_of_the_space_is_refused(
    store: HubFileStore, space: str, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path, store.files_dir(space) / "escape")
    with pytest.raises(BadPath, match="outside its file space"):
        store.path_in(space, "escape/secret")


def test_paths_are_below_the_space(store: HubFileStore, space: str) -> None:
    assert store.path_in(space, "a/b.txt") == store.files_dir(space) / "a" / "b.txt"
    assert store.path_in(space, "a/") == store.files_dir(space) / "a"
    assert store.path_in(space, "", allow_root=True) == store.files_dir(space)


def test_parse_hub_url_decodes_the_path() -> None:
    assert parse_hub_url(f"hub://{'a' * 32}/in/a%20b.txt") == ("a" * 32, "in/a b.txt")
    assert parse_hub_url(f"hub://{'a' * 32}/") == ("a" * 32, "")
    assert parse_hub_url(f"hub://{'a' * 32}") == ("a" * 32, "")
    assert hub_url("a" * 32, "in/a b.txt") == f"hub://{'a' * 32}/in/a%20b.txt"


# --- writes ----------------------------------------------------------------------------------


def test_write_streams_and_reports_size_and_sha256(store: HubFileStore, space: str) -> None:
    stored = store.write(space, "in/x.bin", chunks(b"hello ", b"world"))
    assert stored == StoredFile(
        path="in/x.bin", size=11, sha256=hashlib.sha256(b"hello world").hexdigest()
    )
    assert store.path_in(space, "in/x.bin").read_bytes() == b"hello world"
    assert store.list(space) == [StoredFile(path="in/x.bin", size=11)]


def test_a_failed_write_keeps_the_old_file_and_no_partial(store: HubFileStore, space: str) -> None:
    store.write(space, "x", chunks(b"old"))

    def broken() -> Iterator[bytes]:
        yield b"new, but"
        raise ConnectionError("cut off")

    with pytest.raises(ConnectionError):
        store.write(space, "x", broken())
    assert store.path_in(space, "x").read_bytes() == b"old"
    assert files_of(store, space) == ["x"]


def test_a_checksum_mismatch_keeps_nothing(store: HubFileStore, space: str) -> None:
    with pytest.raises(ChecksumMismatch, match="nothing was kept"):
        store.write(space, "x", chunks(b"data"), sha256="0" * 64)
    assert files_of(store, space) == []
    good = hashlib.sha256(b"data").hexdigest().upper()
    assert store.write(space, "x", chunks(b"data"), sha256=good).size == 4


def test_make_dir_creates_empty_directories(store: HubFileStore, space: str) -> None:
    assert store.make_dir(space, "d/e/") == StoredFile(path="d/e", size=0)
    assert (store.files_dir(space) / "d" / "e").is_dir()
    assert store.list(space) == []


def test_list_skips_files_being_written(store: HubFileStore, space: str) -> None:
    store.write(space, "b/z", chunks(b"zz"))
    store.write(space, "a", chunks(b"a"))
    with store.writing(space, "c") as writer:
        writer.write(b"partial")
        assert [f.path for f in store.list(space)] == ["a", "b/z"]
    assert [(f.path, f.size) for f in store.list(space)] == [("a", 1), ("b/z", 2), ("c", 7)]
    assert [f.path for f in store.list(space, "b")] == ["b/z"]


# --- hub:// storage --------------------------------------------------------------------------


def test_is_a_storage_with_every_operation(hub: HubFileStorage) -> None:
    storage: Storage = hub
    assert storage.schemes == ("hub",)
    assert storage.operations == frozenset(Operation)


def test_supports_only_existing_spaces(hub: HubFileStorage, space: str) -> None:
    assert hub.supports(hub_url(space, "out/x"), write=True) is None
    refusal = hub.supports(hub_url("b" * 32, "x"), write=False)
    assert refusal is not None and "no such file space" in refusal
    refusal = hub.supports("hub://nope/x", write=False)
    assert refusal is not None and "does not name a file space" in refusal


def test_file_round_trip(hub: HubFileStorage, space: str, tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_text("content")
    url = hub_url(space, "out/0/r e.txt")
    [uploaded] = hub.put(src, url, directory=False)
    assert (uploaded.url, uploaded.size) == (url, 7)
    info = hub.stat(url)
    assert (info.url, info.size, info.is_dir) == (url, 7, False)
    assert info.validators() is not None
    dest = tmp_path / "back.txt"
    assert hub.get(url, dest, directory=False) is None
    assert dest.read_text() == "content"
    assert [i.url for i in hub.list(url)] == [url]


def test_directory_round_trip(hub: HubFileStorage, space: str, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub" / "empty").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b c.txt").write_text("bc")
    url = hub_url(space, "out/1")
    uploaded = hub.put(src, url, directory=True)
    assert sorted((u.url, u.size) for u in uploaded) == [
        (f"{url}/a.txt", 1),
        (f"{url}/sub/b%20c.txt", 2),
    ]
    assert [(i.url, i.size) for i in hub.list(url)] == [
        (f"{url}/a.txt", 1),
        (f"{url}/sub/b%20c.txt", 2),
    ]
    assert hub.stat(url).is_dir
    dest = tmp_path / "back"
    hub.get(url, dest, directory=True)
    assert (dest / "sub" / "b c.txt").read_text() == "bc"
    assert (dest / "sub" / "empty").is_dir()
    # The space's root lists every file.
    assert len(hub.list(hub_url(space))) == 2


def test_errors_name_the_hub_url_not_host_paths(
    hub: HubFileStorage, store: HubFileStore, space: str, tmp_path: Path
) -> None:
    url = hub_url(space, "missing.txt")
    with pytest.raises(StorageError) as caught:
        hub.get(url, tmp_path / "x", directory=False)
    assert caught.value.url == url
    assert str(store.root) not in str(caught.value)
    with pytest.raises(StorageError, match="no such file space"):
        hub.stat(hub_url("c" * 32, "x"))
    with pytest.raises(StorageError, match=r"'\.\.'"):
        hub.stat(f"hub://{space}/a/../../x")


def test_a_directory_get_of_a_file_says_so(
    hub: HubFileStorage, store: HubFileStore, space: str, tmp_path: Path
) -> None:
    store.write(space, "f", chunks(b"x"))
    with pytest.raises(StorageError, match="declare the input as a FILE"):
        hub.get(hub_url(space, "f"), tmp_path / "d", directory=True)
    assert not (tmp_path / "d").exists()
