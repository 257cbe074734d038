"""`toolferry credentials add|ls|rm` through CliRunner against a real embedded hub: secrets come
from stdin or a hidden prompt, never from argv, and never show up in the output."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner, Result

from toolferry.cli.main import app
from toolferry.cli.session import CliDeps
from toolferry.hub import Hub
from toolferry.storage.base import Credential

SECRET = "Sup3r-S3cret-Value"
WIDE = {"COLUMNS": "200"}


def invoke(deps: CliDeps, *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(app, ["credentials", *args], obj=deps, env=WIDE, input=stdin)
    assert "Traceback" not in result.output
    return result


def refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert SECRET not in result.output


def test_add_reads_the_secret_key_from_stdin(hub: Hub, deps: CliDeps) -> None:
    result = invoke(
        deps,
        "add", "lab", "--prefix", "s3://Lab", "--access-key", "AKIA1", "--secret-key-stdin",
        stdin=SECRET + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "created credential lab for s3://lab/"
    assert SECRET not in result.output
    assert hub.user_credentials.credentials_of("local") == [
        Credential(prefix="s3://lab/", access_key="AKIA1", secret_key=SECRET)
    ]
    again = invoke(
        deps, "add", "lab", "-p", "s3://lab/", "-u", "me", "--token-stdin", stdin=SECRET + "2"
    )
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "replaced credential lab for s3://lab/"
    assert hub.user_credentials.credentials_of("local") == [
        Credential(prefix="s3://lab/", username="me", token=SECRET + "2")
    ]


def test_add_asks_for_a_password_twice_without_echo(hub: Hub, deps: CliDeps) -> None:
    result = invoke(
        deps,
        "add", "dav", "--prefix", "https://dav.example.org/home/", "--username", "me",
        "--password-prompt", "--header-stdin", "X-Api-Key",
        # CliRunner feeds the prompts from stdin too: two lines for them, the rest for the header.
        stdin=f"{SECRET}\n{SECRET}\n{SECRET}-h",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Password:" in result.stderr and "Repeat for confirmation:" in result.stderr
    assert SECRET not in result.output
    assert hub.user_credentials.credentials_of("local") == [
        Credential(
            prefix="https://dav.example.org/home/",
            username="me",
            password=SECRET,
            headers={"X-Api-Key": f"{SECRET}-h"},
        )
    ]


def test_add_with_a_header_prompt_only(hub: Hub, deps: CliDeps) -> None:
    result = invoke(
        deps, "add", "api", "-p", "https://api.example.org", "-H", "X-Api-Key", stdin=SECRET + "\n"
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert hub.user_credentials.credentials_of("local") == [
        Credential(prefix="https://api.example.org/", headers={"X-Api-Key": SECRET})
    ]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["bad/name", "-p", "s3://b/", "--token-stdin"], ["name: must be 1 to 64"]),
        (["n", "-p", "bucket", "--token-stdin"], ["prefix: must be a URL"]),
        (["n", "-p", "s3://b/"], ["nothing to save"]),
        (["n", "-p", "s3://b/", "--access-key", "K"], ["go together"]),
        (["n", "-p", "s3://b/", "--secret-key-stdin"], ["go together"]),
        (["n", "-p", "s3://b/", "--session-token-stdin", "-u", "x"], ["session token needs"]),
        (["n", "-p", "s3://b/", "--token-stdin", "--password-stdin"], ["only one secret"]),
        (["n", "-p", "s3://b/", "--token-stdin", "--token-prompt"], ["exclude each other"]),
        (["n", "-p", "s3://b/", "-H", f"X-Api-Key={SECRET}"], ["only the header's name"]),
        (["n", "-p", "s3://b/", "-H", "Bad Name"], ["no HTTP header name"]),
        (["n", "-p", "s3://b/", "-H", "X-A", "--header-stdin", "x-a"], ["named twice"]),
    ],
)
def test_add_refuses_before_asking_for_any_secret(
    hub: Hub, deps: CliDeps, args: list[str], fragments: list[str]
) -> None:
    result = invoke(deps, "add", *args, stdin=SECRET + "\n")
    refused(result, *fragments)
    assert "Password" not in result.stderr and "Value of" not in result.stderr
    assert hub.user_credentials.list("local") == []


def test_an_empty_stdin_is_refused(hub: Hub, deps: CliDeps) -> None:
    refused(invoke(deps, "add", "n", "-p", "s3://b/", "--token-stdin", stdin=""), "stdin was empty")


def test_a_refusal_by_the_hub_is_one_line(deps: CliDeps) -> None:
    result = invoke(deps, "add", "n", "-p", "s3://b/", "--token-stdin", stdin=SECRET + "\r\n")
    assert result.exit_code == 0, result.output  # "\r\n" ends the line, it is no part of it
    result = invoke(deps, "add", "n", "-p", "s3://b/", "--token-stdin", stdin=SECRET + "\x01")
    assert result.exit_code == 2, result.output
    assert "the hub refused (HTTP 400): token: must not contain control" in result.stderr
    assert SECRET not in result.output


def test_ls_shows_a_table_or_json_without_secrets(deps: CliDeps) -> None:
    empty = invoke(deps, "ls")
    assert empty.exit_code == 0 and "no credentials" in empty.stderr
    assert json.loads(invoke(deps, "ls", "--json").stdout) == []
    for args, stdin in [
        (["lab", "-p", "s3://lab/", "--access-key", "AK", "--secret-key-stdin"], SECRET),
        (["dav", "-p", "https://h/", "-u", "me", "--password-prompt", "-H", "X-K"],
         f"{SECRET}\n{SECRET}\n{SECRET}\n"),
    ]:  # fmt: skip
        assert invoke(deps, "add", *args, stdin=stdin).exit_code == 0
    table = invoke(deps, "ls")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert [c.strip() for c in header.split("┃")] == [
        "NAME", "PREFIX", "USER / ACCESS KEY", "SECRETS", "UPDATED"
    ]  # fmt: skip
    cells = [[c.strip() for c in row.split("│")] for row in rows if "│" in row]
    assert [c[:4] for c in cells] == [
        ["dav", "https://h/", "me", "password, header X-K"],
        ["lab", "s3://lab/", "AK", "secret_key"],
    ]
    listed = json.loads(invoke(deps, "ls", "--json").stdout)
    assert [(c["name"], c["secrets"], c["headers"]) for c in listed] == [
        ("dav", ["password"], ["X-K"]),
        ("lab", ["secret_key"], []),
    ]
    assert SECRET not in table.output


def test_rm(hub: Hub, deps: CliDeps) -> None:
    invoke(deps, "add", "lab", "-p", "s3://lab/", "--token-stdin", stdin=SECRET)
    result = invoke(deps, "rm", "lab")
    assert result.exit_code == 0 and result.stdout.strip() == "removed credential lab"
    assert hub.user_credentials.list("local") == []
    refused(invoke(deps, "rm", "lab"), "you have no credential named lab")


def test_the_help_shows_examples() -> None:
    result = CliRunner().invoke(app, ["credentials", "add", "--help"], env=WIDE)
    assert result.exit_code == 0
    assert "--secret-key-stdin" in result.output and "Examples" in result.output
