"""`toolferry site add|list` on this machine's store, and `toolferry agent` refusing a broken
site.toml, through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from toolferry.cli.main import app
from toolferry.cli.session import CliDeps
from toolferry.config import Settings
from toolferry.hub import Hub

WIDE = {"COLUMNS": "200"}  # so that Rich does not wrap lines the assertions look for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "hub", runtime="none")


def invoke(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliDeps(settings=lambda: settings), env=WIDE)


def assert_clean_error(result: Result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_site_add_prints_the_token_on_stdout_and_the_hint_on_stderr(settings: Settings) -> None:
    result = invoke(settings, "site", "add", "partner-a", "-d", "Partner A")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("tfs_")
    assert "enrolled site partner-a" in result.stderr
    assert "toolferry agent --hub HUB_URL --token TOKEN --config site.toml" in result.stderr
    assert token not in result.stderr

    hub = Hub(settings)
    try:
        record = hub.sites.authenticate(token)
        assert record is not None
        assert (record.name, record.description) == ("partner-a", "Partner A")
    finally:
        hub.close()


def test_site_add_of_a_bad_name_says_why(settings: Settings) -> None:
    result = invoke(settings, "site", "add", "Partner_A")
    assert_clean_error(result, "'Partner_A' is not a name", "lower-case letters")


def test_site_add_of_a_taken_name_says_so(settings: Settings) -> None:
    assert invoke(settings, "site", "add", "partner-a").exit_code == 0
    result = invoke(settings, "site", "add", "partner-a")
    assert_clean_error(result, "a site named 'partner-a' exists already")


def test_site_list_json_shows_the_site(settings: Settings) -> None:
    invoke(settings, "site", "add", "partner-a", "-d", "Partner A")
    result = invoke(settings, "site", "list", "--json")
    assert result.exit_code == 0, result.output
    (site,) = json.loads(result.stdout)
    assert site["name"] == "partner-a" and site["description"] == "Partner A"
    assert (site["online"], site["seen_at"], site["datasets"]) == (False, None, [])


def test_site_list_shows_a_table_or_how_to_enrol(settings: Settings) -> None:
    empty = invoke(settings, "site", "list")
    assert empty.exit_code == 0 and "toolferry site add NAME" in empty.stderr
    invoke(settings, "site", "add", "partner-a")
    table = invoke(settings, "site", "list")
    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if "partner-a" in line)
    assert "offline" in row and "never" in row


BROKEN = [
    (
        'name = "partner-a"\ndata_dir = "/abs"\n[policy]\nmax_cpu_cores = "two"\n',
        "policy.max_cpu_cores",
    ),
    ('name = "partner-a"\ndata_dir = "relative/dir"\n', "data_dir: must be an absolute path"),
    ('name = "partner-a"\ndata_dir = "/abs"\n[settings]\nruntim = "none"\n', "settings.runtim"),
    ('data_dir = "/abs"\n', "name: is required"),
    ('name = "partner-a"\ndata_dir = "/abs"\nnot toml at all\n', "not valid TOML"),
]


@pytest.mark.parametrize(("text", "needle"), BROKEN)
def test_agent_with_a_broken_site_toml_names_the_file_and_key(
    settings: Settings, tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    result = invoke(
        settings, "agent", "--hub", "http://127.0.0.1:9", "--token", "t", "--config", str(path)
    )
    assert_clean_error(result, f"{path}: ", needle)


def test_agent_with_a_missing_site_toml_names_the_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    result = invoke(
        settings, "agent", "--hub", "http://127.0.0.1:9", "--token", "t", "--config", str(path)
    )
    assert_clean_error(result, str(path))
