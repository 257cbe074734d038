"""What an uploaded file is, from its bytes: archives, recipes and disks told apart."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from toolferry.catalogue.importing import classify_upload
from toolferry.domain.errors import InvalidTask


def tar_of(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    return path


def test_names_far_into_big_archives_are_found(tmp_path: Path) -> None:
    layers = [f"{i:03d}/layer.tar" for i in range(120)]
    assert classify_upload(tar_of(tmp_path / "d.tar", [*layers, "manifest.json"]), None) == (
        "docker-archive"
    )
    git = [f".git/objects/o{i}" for i in range(90)]
    assert classify_upload(tar_of(tmp_path / "c.tar", [*git, "Dockerfile"]), None) == "context"
    assert classify_upload(tar_of(tmp_path / "o.tar", ["blobs/x", "oci-layout"]), None) == (
        "oci-archive"
    )


def test_recipes_and_declarations(tmp_path: Path) -> None:
    recipe = tmp_path / "Dockerfile"
    recipe.write_text("# build me\n\nFROM busybox\nRUN true\n")
    assert classify_upload(recipe, None) == "dockerfile"
    assert classify_upload(recipe, "containerfile") == "containerfile"
    with pytest.raises(InvalidTask, match="declared docker-archive, but the file is a dockerfile"):
        classify_upload(recipe, "docker-archive")
    with pytest.raises(InvalidTask, match="'floppy' is not one of"):
        classify_upload(recipe, "floppy")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(InvalidTask):
        classify_upload(text, None)
