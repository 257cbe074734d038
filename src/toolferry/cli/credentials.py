"""`toolferry credentials add|ls|rm`: your own secrets for storage, kept by the hub.

Secrets never come from the command line (shell history and `ps` would show them): each is
read from stdin (one per command, e.g. piped from a password manager) or asked for without
echo. The hub keeps them encrypted and hands them only to the transfers of your tasks.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.client import ClientError
from toolferry.cli.output import CliError, err, out, print_json
from toolferry.cli.render import format_time
from toolferry.cli.session import session

__all__ = ["app"]

app = typer.Typer(
    name="credentials",
    help=(
        "Your own credentials for storage (S3, WebDAV, HTTP, FTP), used by your tasks.\n\n"
        "A credential holds secrets for every input and output URL that starts with its "
        "prefix. The hub keeps them encrypted, never shows them again, and gives them only to "
        "the transfers of your tasks; when several match a URL, the longest prefix wins, and "
        "yours beats the site's on an equal prefix."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,  # locals could hold a secret
)


def _read_stdin(flag: str) -> str:
    if sys.stdin.isatty():
        raise CliError(f"{flag} reads the secret from a pipe, but stdin is a terminal")
    value = sys.stdin.read()
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise CliError(f"{flag}: stdin was empty")
    return value


def _prompt(label: str, *, confirm: bool = False) -> str:
    value: str = typer.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)
    if not value:
        raise CliError(f"{label}: nothing was entered")
    return value


def _header_name(given: str, flag: str) -> str:
    if "=" in given:
        # The value is a secret: not one character of it goes into the message.
        raise CliError(
            f"{flag} takes only the header's name ({given.partition('=')[0]}); its value is a "
            "secret: it is asked for, or read from stdin with --header-stdin NAME"
        )
    from toolferry.security.user_credentials import HEADER_NAME_PATTERN

    if not re.fullmatch(HEADER_NAME_PATTERN, given):
        raise CliError(f"{flag}: {given!r} is no HTTP header name")
    return given


@app.command(no_args_is_help=True)
def add(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="A name for the credential: letters, digits, '.', '_', '-' (max 64). Adding a "
            "name that exists replaces that credential.",
        ),
    ],
    prefix: Annotated[
        str,
        typer.Option(
            "--prefix",
            "-p",
            metavar="URL",
            help="The URLs it is for: those starting with this, e.g. s3://bucket/ or "
            "https://host/dav/.",
        ),
    ],
    username: Annotated[
        str | None,
        typer.Option("--username", "-u", help="User name (HTTP basic, WebDAV, FTP)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    password_prompt: Annotated[
        bool, typer.Option("--password-prompt", help="Ask for the password (hidden, twice).")
    ] = False,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read a bearer token from stdin.")
    ] = False,
    token_prompt: Annotated[
        bool, typer.Option("--token-prompt", help="Ask for a bearer token (hidden).")
    ] = False,
    access_key: Annotated[
        str | None,
        typer.Option("--access-key", metavar="KEY", help="S3 access key id; needs a secret key."),
    ] = None,
    secret_key_stdin: Annotated[
        bool, typer.Option("--secret-key-stdin", help="Read the S3 secret key from stdin.")
    ] = False,
    secret_key_prompt: Annotated[
        bool, typer.Option("--secret-key-prompt", help="Ask for the S3 secret key (hidden).")
    ] = False,
    session_token_stdin: Annotated[
        bool,
        typer.Option("--session-token-stdin", help="Read an S3 session token from stdin."),
    ] = False,
    session_token_prompt: Annotated[
        bool,
        typer.Option("--session-token-prompt", help="Ask for an S3 session token (hidden)."),
    ] = False,
    headers: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            metavar="NAME",
            help="Send this HTTP header (e.g. X-Api-Key); its value is asked for (hidden). "
            "Repeatable.",
        ),
    ] = None,
    header_stdin: Annotated[
        str | None,
        typer.Option(
            "--header-stdin",
            metavar="NAME",
            help="Send this HTTP header, its value read from stdin.",
        ),
    ] = None,
) -> None:
    """Save a credential for the storage URLs under a prefix (or replace one of that name).

    Secrets are read from stdin (one per command) or asked for, never taken from the command
    line. The hub answers with what it stored, without the secrets.

    **Examples**

        pass s3/lab | toolferry credentials add lab --prefix s3://lab/ --access-key AKIA... --secret-key-stdin
        toolferry credentials add dav --prefix https://dav.example.org/home/ -u me --password-prompt
        toolferry credentials add api --prefix https://api.example.org/ --header X-Api-Key
    """
    # Imported here: the credential service (and its database layer) is not needed to start.
    from toolferry.security.user_credentials import InvalidCredential, check_name, normalise_prefix

    try:
        check_name(name)
        normalise_prefix(prefix)
    except InvalidCredential as exc:
        raise CliError(str(exc)) from None
    stdin_flags = [
        flag
        for flag, on in (
            ("--password-stdin", password_stdin),
            ("--token-stdin", token_stdin),
            ("--secret-key-stdin", secret_key_stdin),
            ("--session-token-stdin", session_token_stdin),
            ("--header-stdin", header_stdin is not None),
        )
        if on
    ]
    if len(stdin_flags) > 1:
        raise CliError(f"only one secret can come from stdin; got {', '.join(stdin_flags)}")
    header_names = [_header_name(h, "--header") for h in headers or []]
    if header_stdin is not None:
        header_names.append(_header_name(header_stdin, "--header-stdin"))
    if len({h.lower() for h in header_names}) != len(header_names):
        raise CliError("--header: a header is named twice")
    # (field, flag of stdin or None for a prompt), each checked before any secret is asked for.
    secrets: list[tuple[str, str | None]] = []
    for field, from_stdin, from_prompt in (
        ("password", password_stdin, password_prompt),
        ("token", token_stdin, token_prompt),
        ("secret_key", secret_key_stdin, secret_key_prompt),
        ("session_token", session_token_stdin, session_token_prompt),
    ):
        flag = "--" + field.replace("_", "-")
        if from_stdin and from_prompt:
            raise CliError(f"{flag}-stdin and {flag}-prompt exclude each other")
        if from_stdin or from_prompt:
            secrets.append((field, f"{flag}-stdin" if from_stdin else None))
    given = {field for field, _ in secrets}
    if (access_key is None) == ("secret_key" in given):
        raise CliError("--access-key and --secret-key-stdin (or --secret-key-prompt) go together")
    if "session_token" in given and access_key is None:
        raise CliError("an S3 session token needs --access-key and a secret key")
    if username is None and not secrets and not header_names:
        raise CliError(
            "nothing to save: give --username, a password, a token, an S3 key pair or a header "
            "(see `toolferry credentials add --help`)"
        )
    body: dict[str, Any] = {"prefix": prefix}
    if username is not None:
        body["username"] = username
    if access_key is not None:
        body["access_key"] = access_key
    for field, stdin_flag in secrets:
        label = field.replace("_", " ").capitalize()
        body[field] = (
            _read_stdin(stdin_flag) if stdin_flag else _prompt(label, confirm=field == "password")
        )
    if header_names:
        body["headers"] = {
            h: _read_stdin("--header-stdin") if h == header_stdin else _prompt(f"Value of {h}")
            for h in header_names
        }
    with session(ctx) as s:
        saved = s.client.put_credential(name, body)
    verb = "created" if saved.get("created_at") == saved.get("updated_at") else "replaced"
    out().print(
        f"{verb} credential [bold]{escape(name)}[/] for {escape(str(saved.get('prefix')))}",
        soft_wrap=True,
    )


@app.command("ls")
def list_credentials(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List your credentials: their prefixes and which secrets they hold, never the secrets.

    **Examples**

        toolferry credentials ls
        toolferry credentials ls --json | jq -r '.[].prefix'
    """
    with session(ctx) as s:
        found: list[dict[str, Any]] = s.client.list_credentials().get("credentials") or []
    if as_json:
        print_json(found)
        return
    if not found:
        err().print(
            "[dim]no credentials; add one with `toolferry credentials add NAME --prefix URL ...`[/]"
        )
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("NAME", no_wrap=True)
    table.add_column("PREFIX", overflow="fold")
    table.add_column("USER / ACCESS KEY", overflow="fold")
    table.add_column("SECRETS", overflow="fold")
    table.add_column("UPDATED", no_wrap=True)
    for c in found:
        held = [str(k) for k in c.get("secrets") or []]
        held += [f"header {h}" for h in c.get("headers") or []]
        login = [str(v) for v in (c.get("username"), c.get("access_key")) if v]
        table.add_row(
            Text(str(c.get("name", ""))),
            Text(str(c.get("prefix", ""))),
            Text(", ".join(login) or "-"),
            Text(", ".join(held) or "-"),
            Text(format_time(c.get("updated_at"))),
        )
    out().print(table)


@app.command("rm", no_args_is_help=True)
def remove(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The credential's name (see `credentials ls`).")
    ],
) -> None:
    """Delete one of your credentials. Tasks already running keep what they were given.

    **Example**

        toolferry credentials rm lab-bucket
    """
    with session(ctx) as s:
        try:
            s.client.delete_credential(name)
        except ClientError as exc:
            if exc.status != 404:
                raise
            raise CliError(
                f"you have no credential named {name}; see `toolferry credentials ls`"
            ) from None
    out().print(f"removed credential [bold]{escape(name)}[/]", soft_wrap=True)
