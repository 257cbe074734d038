"""Local files through the real CLI and a real hub (the `none` runtime, bubblewrap): inputs from
outside the hub's allowed directories are uploaded to its file store and outputs come back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from toolferry.cli.main import app
from toolferry.config import Settings
from toolferry.hub import serve_embedded

pytestmark = pytest.mark.integration

WIDE = {"COLUMNS": "200"}


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=WIDE)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("TOOLFERRY_DATA_DIR", str(path))
    return path


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory, outside every directory the hub allows."""
    path = tmp_path / "laptop"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def spaces(data_dir: Path) -> list[str]:
    """The file spaces left in the hub's store."""
    root = data_dir / "files"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_run_uploads_inputs_and_downloads_outputs(bwrap: str, data_dir: Path, here: Path) -> None:
    (here / "local.txt").write_text("shout this\n", encoding="utf-8")
    result = cli(
        "run", "--runtime", "none",
        "-i", "/in/a=local.txt", "-o", f"/out/b={here / 'results' / 'b.txt'}",
        "--", "sh", "-c", "tr a-z A-Z < /in/a > /out/b",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (here / "results" / "b.txt").read_text(encoding="utf-8") == "SHOUT THIS\n"
    assert "uploaded 1 file (11 bytes)" in result.stderr
    assert f"output /out/b → {here / 'results' / 'b.txt'} (11 bytes)" in result.stderr
    assert spaces(data_dir) == []  # deleted once the output was back


def test_run_with_directory_input_and_output(bwrap: str, data_dir: Path, here: Path) -> None:
    (here / "data" / "sub" / "empty").mkdir(parents=True)
    (here / "data" / "a.txt").write_text("a", encoding="utf-8")
    (here / "data" / "sub" / "b c.txt").write_text("bc", encoding="utf-8")
    result = cli(
        "run", "--runtime", "none", "-i", "/in/d=data", "-o", "/out/r=results/",
        "--", "sh", "-c", "cp -r /in/d/. /out/r/ && test -d /out/r/sub/empty && echo > /out/r/n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = here / "results"
    assert (results / "a.txt").read_text(encoding="utf-8") == "a"
    assert (results / "sub" / "b c.txt").read_text(encoding="utf-8") == "bc"
    assert (results / "n").is_file()
    assert spaces(data_dir) == []


def test_outputs_come_back_after_the_command_failed(bwrap: str, data_dir: Path, here: Path) -> None:
    result = cli(
        "run", "--runtime", "none", "-o", "/out/log=log.txt",
        "--", "sh", "-c", "echo why > /out/log; exit 3",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert (here / "log.txt").read_text(encoding="utf-8") == "why\n"


def test_a_missing_local_input_is_exit_2_before_anything_runs(
    bwrap: str, data_dir: Path, here: Path
) -> None:
    result = cli("run", "--runtime", "none", "-i", "/in/a=nope.txt", "--", "true")
    assert result.exit_code == 2
    assert f"error: --input: nope.txt does not exist (in {here})" in result.stderr
    assert not data_dir.exists()  # not even a hub was started


def test_a_path_in_an_allowed_directory_goes_as_file_url(bwrap: str, data_dir: Path) -> None:
    storage = Settings().storage_dir
    storage.mkdir(parents=True)
    (storage / "in.txt").write_text("as is\n", encoding="utf-8")
    result = cli(
        "run", "--runtime", "none",
        "-i", f"/in/a={storage / 'in.txt'}", "-o", f"/out/b={storage / 'out.txt'}",
        "--", "sh", "-c", "cp /in/a /out/b",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (storage / "out.txt").read_text(encoding="utf-8") == "as is\n"
    assert f"output /out/b → {(storage / 'out.txt').as_uri()}" in result.stderr
    assert "uploaded" not in result.stderr
    assert spaces(data_dir) == []


@pytest.fixture
def served(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A hub served on loopback; TOOLFERRY_URL points the CLI at it, as at a remote hub."""
    with serve_embedded(Settings()) as (_hub, url):
        monkeypatch.setenv("TOOLFERRY_URL", url)
        yield url


def test_submit_then_wait_brings_outputs_back_from_a_served_hub(
    bwrap: str, served: str, data_dir: Path, here: Path
) -> None:
    (here / "in.txt").write_text("payload", encoding="utf-8")
    document = {
        "executors": [{"image": "host", "command": ["sh", "-c", "cp /in/a /out/b"]}],
        "resources": {"backend_parameters": {"runtime": "none"}},
        "inputs": [{"path": "/in/a", "url": "in.txt"}],
        "outputs": [{"path": "/out/b", "url": "back/b.txt"}],
    }
    (here / "task.json").write_text(json.dumps(document), encoding="utf-8")
    submitted = cli("task", "submit", "task.json")
    assert submitted.exit_code == 0, submitted.output
    task_id = submitted.stdout.strip()
    assert len(spaces(data_dir)) == 1

    waited = cli("task", "wait", task_id, "--timeout", "60")
    assert waited.exit_code == 0, waited.output
    assert (here / "back" / "b.txt").read_text(encoding="utf-8") == "payload"
    assert spaces(data_dir) == []

    again = cli("task", "download", task_id, "elsewhere")
    assert again.exit_code == 2  # the outputs left the hub with their space
    assert "HTTP 404" in again.stderr
