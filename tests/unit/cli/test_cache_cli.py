"""`toolferry cache ls|prune` through Typer's CliRunner, on a cache in a temporary directory."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from toolferry.cli.cache import format_size, parse_duration, parse_size
from toolferry.cli.main import app
from toolferry.storage.cache import InputCache
from toolferry.storage.router import default_router

WIDE = {"COLUMNS": "200"}  # so that Rich does not wrap lines the assertions look for


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("TOOLFERRY_CACHE_DIR", str(path))
    monkeypatch.setenv("TOOLFERRY_CACHE_MAX_GB", "1")
    return path


@pytest.fixture
def filled(cache_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Three cached inputs: a.txt (100 B, used first), b.txt (200 B), tree/ (3 B, used last);
    the keys by name."""
    src = tmp_path / "src"
    (src / "tree" / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 100)
    (src / "b.txt").write_bytes(b"b" * 200)
    (src / "tree" / "x").write_bytes(b"x")
    (src / "tree" / "sub" / "y").write_bytes(b"yy")
    work = tmp_path / "work"
    work.mkdir()
    cache = InputCache(cache_dir, max_bytes=1 << 30)
    router = default_router([src])
    cache.stage(str(src / "a.txt"), work / "a", directory=False, router=router)
    cache.stage(str(src / "b.txt"), work / "b", directory=False, router=router)
    cache.stage(str(src / "b.txt"), work / "b2", directory=False, router=router)
    cache.stage(str(src / "tree"), work / "t", directory=True, router=router)
    return {Path(e.url or "").name: e.key or "" for e in cache.entries()}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["cache", *args], env=WIDE)


def cells(line: str) -> list[str]:
    """The words of a table row, without Rich's column rules."""
    return [word for word in line.split() if word not in ("┃", "│")]


def assert_clean_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# -- ls ---------------------------------------------------------------------------------------


def test_ls_shows_a_table_with_a_total(filled: dict[str, str]) -> None:
    result = invoke("ls")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert cells(lines[0]) == ["KEY", "KIND", "SIZE", "SHA256", "LAST", "USED", "HITS", "URL"]
    rows = [cells(line) for line in lines[2:5]]
    # Most recently used first.
    assert [row[0] for row in rows] == [filled[n][:12] for n in ("tree", "b.txt", "a.txt")]
    assert rows[0][1:4] == ["directory", "3", "B"]
    assert rows[1][1:4] == ["file", "200", "B"]
    assert rows[1][-2] == "1" and rows[1][-1].endswith("/src/b.txt")
    assert "3 entries, 303 B of 1.0 GiB (cache_max_gb = 1)" in result.stdout


def test_ls_json(filled: dict[str, str], cache_dir: Path) -> None:
    result = invoke("ls", "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["cache_dir"] == str(cache_dir.resolve())
    assert (shown["usage"], shown["max_bytes"]) == (303, 1 << 30)
    by_key = {e["key"]: e for e in shown["entries"]}
    b = by_key[filled["b.txt"]]
    assert (b["kind"], b["size"], b["hits"]) == ("file", 200, 1)
    assert b["url"].endswith("/src/b.txt")
    assert len(b["sha256"]) == 64
    assert by_key[filled["tree"]]["kind"] == "directory"
    assert b["last_used"].endswith("+00:00")


def test_ls_on_a_cache_that_was_never_used(cache_dir: Path) -> None:
    result = invoke("ls")
    assert result.exit_code == 0, result.output
    assert "is empty" in result.stderr
    assert not cache_dir.exists()  # looking does not create it

    shown = json.loads(invoke("ls", "--json").stdout)
    assert (shown["entries"], shown["usage"]) == ([], 0)


# -- prune ------------------------------------------------------------------------------------


def test_prune_all(filled: dict[str, str]) -> None:
    result = invoke("prune", "--all")

    assert result.exit_code == 0, result.output
    assert result.stdout.count("removed ") == 4  # three entries and the summary
    assert "removed 3 entries, freed 303 B; 0 B left" in result.stdout
    assert json.loads(invoke("ls", "--json").stdout)["entries"] == []


def test_prune_to_a_size_removes_the_least_recently_used(filled: dict[str, str]) -> None:
    result = invoke("prune", "--max-size", "250B")

    assert result.exit_code == 0, result.output
    assert f"removed {filled['a.txt'][:12]} file 100 B" in result.stdout
    assert "removed 1 entry, freed 100 B; 203 B left (cap 1.0 GiB)" in result.stdout


def test_prune_by_default_shrinks_to_the_configured_cap(
    filled: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "nothing to remove; 303 B in use" in invoke("prune").stdout
    monkeypatch.setenv("TOOLFERRY_CACHE_MAX_GB", str(210 / 2**30))

    result = invoke("prune")

    assert result.exit_code == 0, result.output
    assert "removed 1 entry, freed 100 B; 203 B left (cap 210 B)" in result.stdout


def test_prune_older_than(filled: dict[str, str], cache_dir: Path) -> None:
    old = time.time() - 3 * 86400
    os.utime(cache_dir / "keys" / f"{filled['b.txt']}.json", (old, old))

    result = invoke("prune", "--older-than", "2d")

    assert result.exit_code == 0, result.output
    assert f"removed {filled['b.txt'][:12]} file 200 B" in result.stdout
    assert "removed 1 entry" in result.stdout


def test_prune_an_empty_cache(cache_dir: Path) -> None:
    result = invoke("prune", "--all")
    assert result.exit_code == 0, result.output
    assert "nothing to prune" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--older-than", "7 days"], ["--older-than:", "'7 days' is not a duration"]),
        (["--older-than", "d"], ["--older-than:", "30m, 12h, 7d"]),
        (["--max-size", "5XB"], ["--max-size:", "'5XB' is not a size", "GiB"]),
        (["--max-size", "-1"], ["--max-size:"]),
        (["--all", "--max-size", "0"], ["--all", "cannot be combined"]),
    ],
)
def test_bad_prune_options_name_the_option(
    cache_dir: Path, args: list[str], fragments: list[str]
) -> None:
    assert_clean_error(invoke("prune", *args), *fragments)


# -- parsing and formatting -------------------------------------------------------------------


def test_parse_size() -> None:
    assert parse_size("0") == 0
    assert parse_size("500MB") == 500_000_000
    assert parse_size("5GiB") == 5 * 2**30
    assert parse_size("1.5 kib") == 1536
    assert parse_size("12b") == 12


def test_parse_duration() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("7D") == timedelta(days=7)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)


def test_format_size() -> None:
    assert format_size(0) == "0 B"
    assert format_size(1023) == "1023 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(5 * 2**30) == "5.0 GiB"
