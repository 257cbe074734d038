"""`toolferry token ...`: API tokens, managed directly in this machine's store.

These are operator commands for the hub's machine: they open the store named by the settings
(TOOLFERRY_DATA_DIR / TOOLFERRY_DATABASE_URL), not the hub at TOOLFERRY_URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.output import CliError, err, out, print_json
from toolferry.cli.session import deps, open_hub

if TYPE_CHECKING:
    from toolferry.hub import Hub

__all__ = ["app"]

app = typer.Typer(
    name="token",
    help=(
        "Create, list and revoke API tokens. Acts on this machine's store "
        "(TOOLFERRY_DATA_DIR), so run it where the hub runs."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@contextmanager
def _hub(ctx: typer.Context) -> Iterator[Hub]:
    hub = open_hub(deps(ctx).settings(), what="cannot open the store")
    try:
        yield hub
    finally:
        hub.close()


@app.command()
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Who the token identifies.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="Let the token see and manage every user's tasks.")
    ] = False,
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the token is for.")
    ] = "",
) -> None:
    """Create a token and print its secret (shown only this once).

    Once any token exists, a hub with `auth = "auto"` (the default) asks every request for one.
    """
    if not user.strip():
        raise CliError("--user must not be empty")
    with _hub(ctx) as hub:
        record, secret = hub.tokens.create(user, admin=admin, description=description)
    # The secret alone on stdout, so that `TOKEN=$(toolferry token create -u me)` works.
    out().print(secret, markup=False, soft_wrap=True)
    err().print(
        f"[green]created token {escape(record.id)}[/] for user {escape(record.user)}"
        + (" [bold](admin)[/]" if record.admin else "")
    )
    err().print(
        "[yellow]Store the secret now: it cannot be shown again.[/] "
        "Clients send it as TOOLFERRY_TOKEN (or `Authorization: Bearer ...`)."
    )


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user's tokens.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List tokens (never their secrets)."""
    with _hub(ctx) as hub:
        records = hub.tokens.list(user)
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "user": r.user,
                    "admin": r.admin,
                    "description": r.description,
                    "revoked": r.revoked,
                }
                for r in records
            ]
        )
        return
    if not records:
        err().print("[dim]no tokens; create one with `toolferry token create --user NAME`[/]")
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("USER", overflow="fold")
    table.add_column("ADMIN", no_wrap=True)
    table.add_column("DESCRIPTION", overflow="fold")
    table.add_column("STATUS", no_wrap=True)
    for r in records:
        table.add_row(
            Text(r.id),
            Text(r.user),
            "yes" if r.admin else "",
            Text(r.description),
            Text("revoked", style="red") if r.revoked else Text("active", style="green"),
        )
    out().print(table)


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The token's id (from `token list`).")
    ],
) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    with _hub(ctx) as hub:
        revoked = hub.tokens.revoke(token_id)
    if not revoked:
        raise CliError(f"no active token with id {token_id}; see `toolferry token list`")
    out().print(f"revoked token {escape(token_id)}")
