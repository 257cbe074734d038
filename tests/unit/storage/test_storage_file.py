"""FileStorage: confinement to allowed directories, atomic copies, trees, stat and list."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from toolferry.storage.base import Storage, StorageError, Uploaded
from toolferry.storage.file import FileStorage


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    path = tmp_path / "allowed"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("secret")
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def fs(allowed: Path) -> FileStorage:
    return FileStorage([allowed])


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_is_a_storage(fs: FileStorage) -> None:
    storage: Storage = fs
    assert storage.schemes == ("file",)


# --- confinement ---------------------------------------------------------------------------


@pytest.mark.parametrize("write", [False, True])
def test_paths_inside_are_supported(fs: FileStorage, allowed: Path, write: bool) -> None:
    assert fs.supports(allowed.as_uri() + "/x.txt", write=write) is None
    assert fs.supports(f"{allowed}/x.txt", write=write) is None
    assert fs.supports(f"file://localhost{allowed}/x.txt", write=write) is None
    assert fs.supports(allowed.as_uri(), write=write) is None


def test_outside_reason_names_the_setting(fs: FileStorage, allowed: Path) -> None:
    reason = fs.supports("file:///etc/passwd", write=False)
    assert reason == (
        f"file:///etc/passwd is outside the directories this site allows ({allowed}); "
        "add it to file_allowed_dirs"
    )


def test_no_allowed_dirs_refuses_everything() -> None:
    reason = FileStorage([]).supports("/tmp/x", write=True)
    assert reason is not None
    assert "(none are configured)" in reason


def test_dotdot_is_normalised(fs: FileStorage, allowed: Path, outside: Path) -> None:
    url = f"{allowed}/../outside/secret.txt"
    assert "is outside the directories" in (fs.supports(url, write=False) or "")
    assert fs.supports(f"{allowed}/sub/../x.txt", write=False) is None


def test_symlink_escape_is_refused(
    fs: FileStorage, allowed: Path, outside: Path, work: Path
) -> None:
    (allowed / "link").symlink_to(outside)
    url = (allowed / "link" / "secret.txt").as_uri()
    reason = fs.supports(url, write=False)
    assert reason is not None
    assert f"resolves to {outside / 'secret.txt'}, which is outside" in reason
    with pytest.raises(StorageError, match=r"resolves to .* outside") as info:
        fs.get(url, work / "x", directory=False)
    assert info.value.url == url
    assert not (work / "x").exists()
    with pytest.raises(StorageError, match="outside"):
        fs.put(work, url, directory=True)


def test_symlink_to_a_file_outside_is_refused_for_write(
    fs: FileStorage, allowed: Path, outside: Path, work: Path
) -> None:
    (allowed / "out.txt").symlink_to(outside / "secret.txt")
    (work / "new.txt").write_text("new")
    with pytest.raises(StorageError, match="outside"):
        fs.put(work / "new.txt", f"{allowed}/out.txt", directory=False)
    assert (outside / "secret.txt").read_text() == "secret"


def test_symlink_within_allowed_dirs_is_fine(fs: FileStorage, allowed: Path, work: Path) -> None:
    (allowed / "real").mkdir()
    (allowed / "real" / "a.txt").write_text("a")
    (allowed / "alias").symlink_to(allowed / "real")
    fs.get(f"{allowed}/alias/a.txt", work / "a.txt", directory=False)
    assert (work / "a.txt").read_text() == "a"


def test_allowed_dir_given_through_a_symlink(tmp_path: Path, allowed: Path, work: Path) -> None:
    (tmp_path / "via").symlink_to(allowed)
    (allowed / "a.txt").write_text("a")
    fs = FileStorage([tmp_path / "via"])
    assert fs.supports(f"{allowed}/a.txt", write=False) is None
    assert fs.supports(f"{tmp_path}/via/a.txt", write=False) is None


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("relative/path.txt", "neither a file:// URL nor an absolute path"),
        ("file://otherhost/data/x", "names the host 'otherhost'"),
        ("file:///data/x?y", "percent-encode '?'"),
        ("file:relative", "is not an absolute path"),
        ("http://example.org/x", "neither a file:// URL"),
    ],
)
def test_malformed_urls_are_refused(fs: FileStorage, url: str, fragment: str) -> None:
    reason = fs.supports(url, write=False)
    assert reason is not None
    assert reason.startswith(url)
    assert fragment in reason
    with pytest.raises(StorageError, match="the path"):
        fs.stat(url)


def test_percent_encoding_round_trips(fs: FileStorage, allowed: Path, work: Path) -> None:
    (allowed / "a b#1.txt").write_text("x")
    url = (allowed / "a b#1.txt").as_uri()
    assert "%20" in url
    fs.get(url, work / "copy.txt", directory=False)
    assert (work / "copy.txt").read_text() == "x"


# --- get -----------------------------------------------------------------------------------


def test_get_file(fs: FileStorage, allowed: Path, work: Path) -> None:
    src = allowed / "in.sh"
    src.write_text("echo hi\n")
    src.chmod(0o755)
    dest = work / "deep" / "er" / "in.sh"
    fs.get(src.as_uri(), dest, directory=False)
    assert dest.read_text() == "echo hi\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert _leftovers(dest.parent) == ["in.sh"]


def test_get_replaces_an_existing_file(fs: FileStorage, allowed: Path, work: Path) -> None:
    (allowed / "in.txt").write_text("new")
    (work / "in.txt").write_text("old")
    fs.get(str(allowed / "in.txt"), work / "in.txt", directory=False)
    assert (work / "in.txt").read_text() == "new"


def test_get_missing(fs: FileStorage, allowed: Path, work: Path) -> None:
    url = (allowed / "nope.txt").as_uri()
    with pytest.raises(StorageError) as info:
        fs.get(url, work / "x", directory=False)
    assert str(info.value) == f"{url}: no such file or directory"
    with pytest.raises(StorageError, match="no such file or directory"):
        fs.get(url, work / "x", directory=True)
    assert _leftovers(work) == []


def test_get_directory_as_file_input(fs: FileStorage, allowed: Path, work: Path) -> None:
    (allowed / "d").mkdir()
    with pytest.raises(StorageError, match="is a directory; declare the input as a DIRECTORY"):
        fs.get(str(allowed / "d"), work / "x", directory=False)


def test_get_file_as_directory_input(fs: FileStorage, allowed: Path, work: Path) -> None:
    (allowed / "f").write_text("f")
    with pytest.raises(StorageError, match="is a file, not a directory"):
        fs.get(str(allowed / "f"), work / "x", directory=True)


def test_get_special_file_is_refused(fs: FileStorage, allowed: Path, work: Path) -> None:
    os.mkfifo(allowed / "fifo")
    with pytest.raises(StorageError, match="is not a regular file"):
        fs.get(str(allowed / "fifo"), work / "x", directory=False)


def _make_tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / "deeper" / "c.txt").write_text("c")


def test_get_directory_tree(fs: FileStorage, allowed: Path, work: Path) -> None:
    _make_tree(allowed / "tree")
    (allowed / "tree" / "sub").chmod(0o555)  # read-only source dirs must still copy
    try:
        fs.get((allowed / "tree").as_uri(), work / "in", directory=True)
    finally:
        (allowed / "tree" / "sub").chmod(0o755)
    got = sorted(str(p.relative_to(work / "in")) for p in (work / "in").rglob("*"))
    assert got == ["a.txt", "empty", "sub", "sub/b.txt", "sub/deeper", "sub/deeper/c.txt"]
    assert (work / "in" / "sub" / "deeper" / "c.txt").read_text() == "c"
    assert stat.S_IMODE((work / "in").stat().st_mode) == stat.S_IMODE(
        (allowed / "tree").stat().st_mode
    )
    (work / "in" / "sub").chmod(0o755)
    assert _leftovers(work) == ["in"]


def test_get_directory_into_an_empty_dir(fs: FileStorage, allowed: Path, work: Path) -> None:
    _make_tree(allowed / "tree")
    (work / "in").mkdir()
    fs.get(str(allowed / "tree"), work / "in", directory=True)
    assert (work / "in" / "a.txt").read_text() == "a"


def test_get_directory_refuses_a_nonempty_dest(fs: FileStorage, allowed: Path, work: Path) -> None:
    _make_tree(allowed / "tree")
    (work / "in").mkdir()
    (work / "in" / "keep.txt").write_text("keep")
    with pytest.raises(StorageError, match="exists and is not an empty directory"):
        fs.get(str(allowed / "tree"), work / "in", directory=True)
    assert _leftovers(work / "in") == ["keep.txt"]
    assert _leftovers(work) == ["in"]


def test_get_tree_with_a_symlink_escaping(
    fs: FileStorage, allowed: Path, outside: Path, work: Path
) -> None:
    _make_tree(allowed / "tree")
    (allowed / "tree" / "sub" / "evil").symlink_to(outside / "secret.txt")
    with pytest.raises(StorageError, match=r"sub/evil is a symlink to .*outside"):
        fs.get(str(allowed / "tree"), work / "in", directory=True)
    assert _leftovers(work) == []


def test_get_tree_follows_symlinks_that_stay_inside(
    fs: FileStorage, allowed: Path, work: Path
) -> None:
    _make_tree(allowed / "tree")
    (allowed / "ref.txt").write_text("ref")
    (allowed / "tree" / "ref").symlink_to(allowed / "ref.txt")
    (allowed / "tree" / "subcopy").symlink_to("sub")
    fs.get(str(allowed / "tree"), work / "in", directory=True)
    assert (work / "in" / "ref").read_text() == "ref"
    assert not (work / "in" / "ref").is_symlink()
    assert (work / "in" / "subcopy" / "deeper" / "c.txt").read_text() == "c"


def test_get_tree_with_a_loop(fs: FileStorage, allowed: Path, work: Path) -> None:
    _make_tree(allowed / "tree")
    (allowed / "tree" / "sub" / "up").symlink_to("..")
    with pytest.raises(StorageError, match="sub/up is a symlink loop"):
        fs.get(str(allowed / "tree"), work / "in", directory=True)
    assert _leftovers(work) == []


def test_get_tree_with_a_broken_symlink(fs: FileStorage, allowed: Path, work: Path) -> None:
    _make_tree(allowed / "tree")
    (allowed / "tree" / "dangling").symlink_to(allowed / "gone")
    with pytest.raises(StorageError, match="dangling is a broken symlink"):
        fs.get(str(allowed / "tree"), work / "in", directory=True)


# --- atomicity -----------------------------------------------------------------------------


def _failing_copy2(fail_on: str) -> Any:
    real_copy2 = shutil.copy2

    def copy2(src: Any, dst: Any, **kwargs: Any) -> Any:
        if Path(src).name == fail_on:
            with open(dst, "wb") as fh:
                fh.write(b"half")
            raise OSError(28, "No space left on device")
        return real_copy2(src, dst, **kwargs)

    return copy2


def test_failed_file_copy_leaves_nothing(
    fs: FileStorage, allowed: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (allowed / "big.bin").write_bytes(b"x" * 1000)
    monkeypatch.setattr(shutil, "copy2", _failing_copy2("big.bin"))
    with pytest.raises(StorageError, match="no space left on device"):
        fs.get(str(allowed / "big.bin"), work / "big.bin", directory=False)
    assert _leftovers(work) == []


def test_failed_file_copy_keeps_the_old_dest(
    fs: FileStorage, allowed: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (allowed / "big.bin").write_bytes(b"new")
    (work / "big.bin").write_bytes(b"old")
    monkeypatch.setattr(shutil, "copy2", _failing_copy2("big.bin"))
    with pytest.raises(StorageError):
        fs.get(str(allowed / "big.bin"), work / "big.bin", directory=False)
    assert (work / "big.bin").read_bytes() == b"old"
    assert _leftovers(work) == ["big.bin"]


def test_failed_tree_copy_leaves_nothing(
    fs: FileStorage, allowed: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_tree(allowed / "tree")
    monkeypatch.setattr(shutil, "copy2", _failing_copy2("c.txt"))
    with pytest.raises(StorageError, match="no space left on device"):
        fs.get(str(allowed / "tree"), work / "in", directory=True)
    assert _leftovers(work) == []


def test_failed_put_keeps_the_old_object(
    fs: FileStorage, allowed: Path, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (work / "out.txt").write_text("new")
    (allowed / "out.txt").write_text("old")
    monkeypatch.setattr(shutil, "copy2", _failing_copy2("out.txt"))
    with pytest.raises(StorageError):
        fs.put(work / "out.txt", str(allowed / "out.txt"), directory=False)
    assert (allowed / "out.txt").read_text() == "old"
    assert _leftovers(allowed) == ["out.txt"]


# --- put -----------------------------------------------------------------------------------


def test_put_file_creates_parents(fs: FileStorage, allowed: Path, work: Path) -> None:
    (work / "out.txt").write_text("result")
    url = (allowed / "runs" / "1" / "out.txt").as_uri()
    uploaded = fs.put(work / "out.txt", url, directory=False)
    assert uploaded == [Uploaded(url=url, path=work / "out.txt", size=6)]
    assert (allowed / "runs" / "1" / "out.txt").read_text() == "result"
    assert _leftovers(allowed / "runs" / "1") == ["out.txt"]


def test_put_directory(fs: FileStorage, allowed: Path, work: Path) -> None:
    _make_tree(work / "out")
    (work / "out" / "with space.txt").write_text("s")
    url = (allowed / "results").as_uri()
    uploaded = fs.put(work / "out", url, directory=True)
    assert [u.url for u in uploaded] == [
        f"{url}/a.txt",
        f"{url}/sub/b.txt",
        f"{url}/sub/deeper/c.txt",
        f"{url}/with%20space.txt",
    ]
    assert [u.path for u in uploaded] == [
        work / "out" / "a.txt",
        work / "out" / "sub" / "b.txt",
        work / "out" / "sub" / "deeper" / "c.txt",
        work / "out" / "with space.txt",
    ]
    assert all(u.size == 1 for u in uploaded)
    assert (allowed / "results" / "sub" / "deeper" / "c.txt").read_text() == "c"
    assert (allowed / "results" / "empty").is_dir()


def test_put_directory_with_a_plain_path_url(fs: FileStorage, allowed: Path, work: Path) -> None:
    (work / "out").mkdir()
    (work / "out" / "a b.txt").write_text("x")
    uploaded = fs.put(work / "out", f"{allowed}/r/", directory=True)
    assert [u.url for u in uploaded] == [f"{allowed}/r/a b.txt"]


def test_put_empty_directory(fs: FileStorage, allowed: Path, work: Path) -> None:
    (work / "out").mkdir()
    assert fs.put(work / "out", str(allowed / "r"), directory=True) == []
    assert (allowed / "r").is_dir()


def test_put_overwrites_objects(fs: FileStorage, allowed: Path, work: Path) -> None:
    (allowed / "r").mkdir()
    (allowed / "r" / "a.txt").write_text("old")
    (work / "out").mkdir()
    (work / "out" / "a.txt").write_text("new")
    fs.put(work / "out", str(allowed / "r"), directory=True)
    assert (allowed / "r" / "a.txt").read_text() == "new"
    assert _leftovers(allowed / "r") == ["a.txt"]


def test_put_refuses_symlinks_leaving_the_output(
    fs: FileStorage, allowed: Path, outside: Path, work: Path
) -> None:
    (work / "out").mkdir()
    (work / "out" / "leak").symlink_to(outside / "secret.txt")
    with pytest.raises(StorageError, match="leak is a symlink to"):
        fs.put(work / "out", str(allowed / "r"), directory=True)
    assert not (allowed / "r" / "leak").exists()


def test_put_does_not_write_through_a_symlink_in_storage(
    fs: FileStorage, allowed: Path, outside: Path, work: Path
) -> None:
    (allowed / "r").mkdir()
    (allowed / "r" / "sub").symlink_to(outside)
    (work / "out" / "sub").mkdir(parents=True)
    (work / "out" / "sub" / "secret.txt").write_text("overwritten")
    with pytest.raises(StorageError, match="outside the allowed directories"):
        fs.put(work / "out", str(allowed / "r"), directory=True)
    assert (outside / "secret.txt").read_text() == "secret"


def test_put_kind_mismatch_and_missing_source(fs: FileStorage, allowed: Path, work: Path) -> None:
    (work / "d").mkdir()
    (work / "f").write_text("f")
    with pytest.raises(StorageError, match="is a directory; declare the output as a DIRECTORY"):
        fs.put(work / "d", str(allowed / "x"), directory=False)
    with pytest.raises(StorageError, match="is a file; declare the output as a FILE"):
        fs.put(work / "f", str(allowed / "x"), directory=True)
    with pytest.raises(StorageError, match="no such file"):
        fs.put(work / "nope", str(allowed / "x"), directory=False)
    with pytest.raises(StorageError, match="no such directory"):
        fs.put(work / "nope", str(allowed / "x"), directory=True)


def test_put_onto_a_directory(fs: FileStorage, allowed: Path, work: Path) -> None:
    (allowed / "x").mkdir()
    (work / "f").write_text("f")
    with pytest.raises(StorageError, match="is a directory"):
        fs.put(work / "f", str(allowed / "x"), directory=False)
    assert _leftovers(allowed) == ["x"]


# --- stat / list ---------------------------------------------------------------------------


def test_stat(fs: FileStorage, allowed: Path) -> None:
    _make_tree(allowed / "tree")
    url = (allowed / "tree" / "a.txt").as_uri()
    info = fs.stat(url)
    assert (info.url, info.size, info.is_dir) == (url, 1, False)
    assert info.validators() == {"etag": info.etag, "modified": info.modified, "size": "1"}
    tree = fs.stat(str(allowed / "tree"))
    assert (tree.url, tree.size, tree.is_dir) == (str(allowed / "tree"), 0, True)
    before = info.validators()
    (allowed / "tree" / "a.txt").write_text("b")
    os.utime(allowed / "tree" / "a.txt", ns=(1, 1))
    assert fs.stat(url).validators() != before
    with pytest.raises(StorageError, match="no such file or directory"):
        fs.stat(str(allowed / "nope"))


def test_list(fs: FileStorage, allowed: Path) -> None:
    _make_tree(allowed / "tree")
    url = (allowed / "tree").as_uri()
    listed = fs.list(url)
    assert [(i.url, i.size) for i in listed] == [
        (f"{url}/a.txt", 1),
        (f"{url}/sub/b.txt", 1),
        (f"{url}/sub/deeper/c.txt", 1),
    ]
    assert all(i.validators() for i in listed)
    assert fs.list(f"{url}/a.txt") == [fs.stat(f"{url}/a.txt")]
    with pytest.raises(StorageError, match="no such file or directory"):
        fs.list(f"{url}/nope")
