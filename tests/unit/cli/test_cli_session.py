"""How a command finds its hub: TOOLFERRY_URL, the hub serving the data directory, or its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import toolferry.hub
from toolferry.cli import session as session_module
from toolferry.cli.output import CliError
from toolferry.cli.session import Session, connect, embedded_hub, running_hub
from toolferry.config import Settings

URL = "http://127.0.0.1:8741"
HUB_FILE = "hub.json"  # what a hub writes into the data directory it serves


def write_hub_file(data_dir: Path, content: Any) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / HUB_FILE
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    path.chmod(0o600)
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- running_hub ------------------------------------------------------------------------------


def test_a_hub_file_of_a_live_process_names_the_hub(tmp_path: Path) -> None:
    write_hub_file(tmp_path, {"url": URL, "pid": os.getpid(), "secret": "s3cret"})
    assert running_hub(tmp_path) == (URL, "s3cret")


def test_a_hub_of_another_user_counts_as_running(tmp_path: Path) -> None:
    # pid 1 always exists; signalling it is refused (EPERM) unless the tests run as root.
    write_hub_file(tmp_path, {"url": URL, "pid": 1, "secret": "s3cret"})
    assert running_hub(tmp_path) == (URL, "s3cret")


def test_no_hub_file_means_no_hub(tmp_path: Path) -> None:
    assert running_hub(tmp_path) is None
    assert running_hub(tmp_path / "does-not-exist") is None


def test_a_hub_file_left_by_a_dead_process_is_ignored(tmp_path: Path) -> None:
    write_hub_file(tmp_path, {"url": URL, "pid": dead_pid(), "secret": "s3cret"})
    assert running_hub(tmp_path) is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        b"\xff\xfe{",  # not UTF-8
        "[]",
        '"just a string"',
        {"url": URL, "pid": os.getpid()},  # no secret
        {"url": URL, "secret": "s"},  # no pid
        {"pid": os.getpid(), "secret": "s"},  # no url
        {"url": URL, "pid": str(os.getpid()), "secret": "s"},
        {"url": URL, "pid": True, "secret": "s"},  # a bool is an int: not pid 1
        {"url": URL, "pid": 0, "secret": "s"},  # 0 would signal our own process group
        {"url": URL, "pid": -1, "secret": "s"},
        {"url": URL, "pid": os.getpid(), "secret": ""},
        {"url": "127.0.0.1:8741", "pid": os.getpid(), "secret": "s"},
        {"url": None, "pid": os.getpid(), "secret": "s"},
    ],
)
def test_a_garbled_hub_file_is_ignored(tmp_path: Path, content: Any) -> None:
    write_hub_file(tmp_path, content)
    assert running_hub(tmp_path) is None


def test_an_unreadable_hub_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / HUB_FILE).mkdir()  # reading it fails with IsADirectoryError
    assert running_hub(tmp_path) is None


# -- connect ----------------------------------------------------------------------------------


def _auth(s: Session) -> str | None:
    value: str | None = s.client._http.headers.get("Authorization")
    return value


@pytest.fixture
def no_embedded_hub(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Replaces the embedded hub: records that one was asked for, yields a stand-in."""
    started: list[Settings] = []

    @contextmanager
    def fake_embedded_hub(settings: Settings) -> Iterator[tuple[Any, str]]:
        started.append(settings)
        hub = SimpleNamespace(local_secret="in-process", runtime_choice=("none", "for a test"))
        yield hub, "http://127.0.0.1:1"

    monkeypatch.setattr(session_module, "embedded_hub", fake_embedded_hub)
    return started


def test_connect_uses_the_hub_serving_the_data_dir(
    tmp_path: Path, no_embedded_hub: list[Settings]
) -> None:
    write_hub_file(tmp_path, {"url": URL, "pid": os.getpid(), "secret": "s3cret"})
    with connect(Settings(data_dir=tmp_path)) as s:
        assert (s.url, s.embedded, s.runtime_choice) == (URL, False, None)
        assert _auth(s) == "Bearer s3cret"
    assert no_embedded_hub == []


def test_connect_prefers_the_users_token_to_the_hubs_secret(
    tmp_path: Path, no_embedded_hub: list[Settings]
) -> None:
    write_hub_file(tmp_path, {"url": URL, "pid": os.getpid(), "secret": "s3cret"})
    with connect(Settings(data_dir=tmp_path, token="mine")) as s:
        assert s.url == URL
        assert _auth(s) == "Bearer mine"


def test_connect_prefers_toolferry_url_to_the_hub_file(
    tmp_path: Path, no_embedded_hub: list[Settings]
) -> None:
    write_hub_file(tmp_path, {"url": URL, "pid": os.getpid(), "secret": "s3cret"})
    with connect(Settings(data_dir=tmp_path, url="http://elsewhere:1")) as s:
        assert (s.url, s.embedded) == ("http://elsewhere:1", False)
        assert _auth(s) is None


def test_connect_starts_its_own_hub_when_the_hub_file_is_stale(
    tmp_path: Path, no_embedded_hub: list[Settings]
) -> None:
    write_hub_file(tmp_path, {"url": URL, "pid": dead_pid(), "secret": "s3cret"})
    with connect(Settings(data_dir=tmp_path)) as s:
        assert (s.url, s.embedded) == ("http://127.0.0.1:1", True)
        assert s.runtime_choice == ("none", "for a test")
        assert _auth(s) == "Bearer in-process"
    assert len(no_embedded_hub) == 1


def test_a_hub_that_refuses_to_start_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the hub raises when another one serves the data directory (HubBusy is a ConfigError).
    message = f"a hub already serves {tmp_path} at {URL} (pid 1234)"

    def busy(*_args: Any, **_kwargs: Any) -> Any:
        raise toolferry.hub.ConfigError(message)

    monkeypatch.setattr(toolferry.hub, "serve_embedded", busy)
    with pytest.raises(CliError, match="a hub already serves"), embedded_hub(Settings()):
        pass
