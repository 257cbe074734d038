"""dataset:// URLs: parsing and formatting, and resolving them on the agent inside the dataset."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from toolferry.domain.site_policy import Dataset
from toolferry.storage.base import Operation, StorageError
from toolferry.storage.dataset import (
    BadDatasetUrl,
    DatasetStorage,
    DatasetUrl,
    format_url,
    parse,
    resolve,
    stat,
)
from toolferry.storage.router import StorageRouter

# --- parse and format ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "dataset://partner-a/adni/visits/2015.csv",
            DatasetUrl("partner-a", "adni", "visits/2015.csv"),
        ),
        ("dataset://partner-a/adni", DatasetUrl("partner-a", "adni", "")),
        ("dataset://partner-a/adni/", DatasetUrl("partner-a", "adni", "")),
        ("dataset://partner-a/adni/visits/", DatasetUrl("partner-a", "adni", "visits")),
        ("DATASET://partner-a/adni/x", DatasetUrl("partner-a", "adni", "x")),
        ("dataset://p/d/a%20b/100%25.txt", DatasetUrl("p", "d", "a b/100%.txt")),
        ("dataset://p/d/%C3%A9t%C3%A9", DatasetUrl("p", "d", "été")),
        ("dataset://p/d/q%3F%23", DatasetUrl("p", "d", "q?#")),
        ("dataset://p/d/..x/x..", DatasetUrl("p", "d", "..x/x..")),
        ("dataset://site-2/v1.0_raw/x", DatasetUrl("site-2", "v1.0_raw", "x")),
    ],
)
def test_a_dataset_url_parses_into_site_dataset_and_decoded_path(
    url: str, expected: DatasetUrl
) -> None:
    assert parse(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "dataset://partner-a/adni/visits/2015.csv",
        "dataset://p/d",
        "dataset://p/d/a%20b/100%25.txt",
        "dataset://p/d/%C3%A9t%C3%A9/q%3F%23",
    ],
)
def test_formatting_gives_back_the_canonical_url(url: str) -> None:
    parsed = parse(url)
    assert str(parsed) == url
    assert format_url(parsed.site, parsed.dataset, parsed.path) == url
    assert parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("dataset:///adni/x", "names no site"),
        ("dataset:adni/x", "names no site"),
        ("dataset://partner-a", "names no dataset"),
        ("dataset://partner-a/", "names no dataset"),
        ("dataset://partner-a//x", "names no dataset"),
        ("file:///srv/adni", "is not a dataset:// URL"),
        ("dataset://p/d/x?version=2", "no query or fragment"),
        ("dataset://p/d/x#sha256=00", "no query or fragment"),
        ("dataset://p/d/x?", "no query or fragment"),
        ("dataset://alice@p/d/x", "not a user or a port"),
        ("dataset://p:8080/d/x", "not a user or a port"),
        ("dataset://p/d/../other/x", "'..' path segment"),
        ("dataset://p/d/a/%2e%2e/%2E%2E/x", "'..' path segment"),
        ("dataset://p/d/./x", "'.' path segment"),
        ("dataset://p/d/a//b", "empty path segment"),
        ("dataset://p/d/a/%2F..%2Fetc", "encoded '/'"),
        ("dataset://p/d/%00", "NUL"),
        ("dataset://p/d/%zz", "'%' not followed by two hex digits"),
        ("dataset://p/d/%ff", "not UTF-8"),
        ("dataset://p/d/a b", "white space"),
        ("dataset://p/d/a\nb", "control character"),
        ("dataset://Partner-A/d/x", "lower case only"),
        ("dataset://p/ADNI/x", "the dataset 'ADNI' is not a name"),
        (
            "dataset://p.org/d/x",
            "the site 'p.org' is not a name: 1 to 63 lower-case letters, digits or '-'",
        ),
        ("dataset://p/-d/x", "the dataset '-d' is not a name"),
    ],
)
def test_a_malformed_dataset_url_says_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(BadDatasetUrl) as caught:
        parse(url)
    assert reason in str(caught.value)


@pytest.mark.parametrize("path", ["../x", "a/./b", "/abs", "a//b", "a/"])
def test_a_dataset_url_built_directly_is_checked_too(path: str) -> None:
    with pytest.raises(BadDatasetUrl):
        DatasetUrl("p", "d", path)


# --- resolving on the agent ---------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """/data/adni with a file, a folder, links in and out; /data/other; a secret outside."""
    adni = tmp_path / "data" / "adni"
    (adni / "visits").mkdir(parents=True)
    (adni / "visits" / "2015.csv").write_text("id,score\n1,27\n")
    (adni / "readme.txt").write_text("ADNI")
    (tmp_path / "data" / "other").mkdir()
    (tmp_path / "data" / "other" / "private.csv").write_text("private")
    (tmp_path / "secret.txt").write_text("secret")
    (adni / "latest.csv").symlink_to(adni / "visits" / "2015.csv")
    (adni / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (adni / "sideways").symlink_to(tmp_path / "data" / "other")
    return tmp_path


def datasets_in(root: Path) -> dict[str, Dataset]:
    return {
        name: Dataset(name=name, path=PurePosixPath(root / "data" / name), users=frozenset({"*"}))
        for name in ("adni", "other", "gone")
    }


def test_a_url_resolves_to_the_real_file_inside_its_dataset(data: Path) -> None:
    datasets = datasets_in(data)
    adni = data / "data" / "adni"
    assert resolve("dataset://p/adni/visits/2015.csv", datasets) == adni / "visits" / "2015.csv"
    assert resolve("dataset://p/adni", datasets, site="p") == adni
    assert resolve(DatasetUrl("p", "adni", "visits"), datasets) == adni / "visits"


def test_a_symlink_inside_the_dataset_is_followed(data: Path) -> None:
    target = data / "data" / "adni" / "visits" / "2015.csv"
    assert resolve("dataset://p/adni/latest.csv", datasets_in(data)) == target


@pytest.mark.parametrize(
    "url", ["dataset://p/adni/escape.txt", "dataset://p/adni/sideways/private.csv"]
)
def test_a_symlink_leading_out_of_the_dataset_is_refused_without_naming_host_paths(
    data: Path, url: str
) -> None:
    with pytest.raises(StorageError) as caught:
        resolve(url, datasets_in(data))
    assert caught.value.url == url
    assert caught.value.cause == "leads outside dataset adni (through a symlink)"
    assert str(data) not in str(caught.value)


def test_a_dataset_whose_root_is_a_symlink_still_resolves(data: Path) -> None:
    (data / "mnt").symlink_to(data / "data" / "adni")
    datasets = {"adni": Dataset(name="adni", path=PurePosixPath(data / "mnt"))}
    assert resolve("dataset://p/adni/readme.txt", datasets) == data / "data" / "adni" / "readme.txt"


@pytest.mark.parametrize(
    ("url", "site", "cause"),
    [
        ("dataset://p/adni/nothing.txt", None, "no such file or directory in the dataset"),
        ("dataset://p/unknown/x", None, "no dataset 'unknown' at this site"),
        ("dataset://q/adni/readme.txt", "p", "names site q; this is site p"),
        ("dataset://p/gone/x", None, "dataset gone is not available at this site now"),
        ("dataset://p/adni/../other/private.csv", None, "'..' path segment"),
    ],
)
def test_what_cannot_be_resolved_says_why(
    data: Path, url: str, site: str | None, cause: str
) -> None:
    with pytest.raises(StorageError) as caught:
        resolve(url, datasets_in(data), site=site)
    assert cause in caught.value.cause
    assert str(data) not in str(caught.value)


def test_stat_names_the_dataset_url(data: Path) -> None:
    datasets = datasets_in(data)
    info = stat("dataset://p/adni/visits/2015.csv", datasets)
    assert (info.url, info.size, info.is_dir) == ("dataset://p/adni/visits/2015.csv", 14, False)
    assert info.etag is not None
    folder = stat("dataset://p/adni/visits/", datasets)
    assert (folder.url, folder.size, folder.is_dir) == ("dataset://p/adni/visits", 0, True)


def test_stat_of_a_missing_file_names_the_url_not_the_host_path(data: Path) -> None:
    with pytest.raises(StorageError) as caught:
        stat("dataset://p/adni/none.csv", datasets_in(data))
    assert caught.value.url == "dataset://p/adni/none.csv"
    assert str(data) not in str(caught.value)


# --- the storage the router uses ----------------------------------------------------------------


def test_the_storage_is_read_only_and_checks_urls(data: Path) -> None:
    storage = DatasetStorage("p", datasets_in(data))
    assert Operation.PUT not in storage.operations
    assert storage.supports("dataset://p/adni/readme.txt", write=False) is None
    assert "read-only" in (storage.supports("dataset://p/adni/new.txt", write=True) or "")
    assert "no dataset 'nope'" in (storage.supports("dataset://p/nope/x", write=False) or "")
    with pytest.raises(StorageError, match="read-only"):
        storage.put(data / "secret.txt", "dataset://p/adni/x", directory=False)


def test_the_router_refuses_a_dataset_output_at_submission(data: Path) -> None:
    router = StorageRouter([DatasetStorage("p", datasets_in(data))])
    assert router.check("dataset://p/adni/readme.txt", write=False) is None
    assert router.check("dataset://p/adni/x", write=True) is not None


def test_a_streamable_input_reads_in_place(data: Path) -> None:
    storage = DatasetStorage("p", datasets_in(data))
    assert storage.local_path("dataset://p/adni/readme.txt") == data / "data/adni/readme.txt"
    with pytest.raises(StorageError, match="through a symlink"):
        storage.local_path("dataset://p/adni/escape.txt")


def test_get_copies_a_file_within_the_site(data: Path, tmp_path: Path) -> None:
    storage = DatasetStorage("p", datasets_in(data))
    dest = tmp_path / "work" / "in.csv"
    storage.get("dataset://p/adni/visits/2015.csv", dest, directory=False)
    assert dest.read_text() == "id,score\n1,27\n"


def test_a_directory_with_a_link_out_of_the_dataset_is_not_copied(
    data: Path, tmp_path: Path
) -> None:
    storage = DatasetStorage("p", datasets_in(data))
    with pytest.raises(StorageError) as caught:
        storage.get("dataset://p/adni", tmp_path / "work" / "adni", directory=True)
    assert caught.value.url == "dataset://p/adni"
    assert caught.value.cause == (
        "escape.txt is a symlink to a path outside the dataset, outside what may be copied"
    )
    assert not (tmp_path / "work" / "adni").exists()


def test_list_names_files_by_their_dataset_urls(data: Path) -> None:
    os.remove(data / "data" / "adni" / "escape.txt")
    os.remove(data / "data" / "adni" / "sideways")
    storage = DatasetStorage("p", datasets_in(data))
    found = storage.list("dataset://p/adni")
    assert [(i.url, i.size) for i in found] == [
        ("dataset://p/adni/latest.csv", 14),
        ("dataset://p/adni/readme.txt", 4),
        ("dataset://p/adni/visits/2015.csv", 14),
    ]
