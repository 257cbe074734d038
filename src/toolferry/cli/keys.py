"""`toolferry keys ...`: your key pair for results that data sites seal to you.

The private key stays on this machine (DATA_DIR/keys/seal.key, readable by you only); the
public key is registered at the hub, which gives it to the sites that run your tasks with
`encrypt_outputs=true` (`toolferry run --encrypt`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from toolferry.cli.output import CliError, err, out
from toolferry.cli.session import deps, session

__all__ = ["app"]

app = typer.Typer(
    name="keys",
    help="Your key pair for results that data sites seal to you: create, decrypt.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _key_file(ctx: typer.Context) -> Path:
    return deps(ctx).settings().data_dir / "keys" / "seal.key"


@app.command()
def create(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key pair.")] = False,
) -> None:
    """Make a key pair, keep the private key here and register the public key at the hub."""
    from toolferry.security.sealing import new_keypair

    path = _key_file(ctx)
    if path.exists() and not force:
        raise CliError(
            f"{path} exists; --force replaces it (results sealed to the old key can then only "
            "be opened with a copy of it)"
        )
    private, public = new_keypair()
    with session(ctx) as s:
        s.client.catalogue("PUT", "keys/me", json={"public_key": public})
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(private + "\n")
    out().print(public, markup=False)
    err().print(f"[green]registered your public key[/]; the private key is in {escape(str(path))}")


@app.command()
def decrypt(
    ctx: typer.Context,
    sealed: Annotated[Path, typer.Argument(metavar="FILE", help="A sealed result.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write it (default: in place).")
    ] = None,
) -> None:
    """Open a result a data site sealed to your key."""
    from toolferry.security.sealing import SealingError, open_file

    path = _key_file(ctx)
    if not path.is_file():
        raise CliError(f"no private key at {path}: `toolferry keys create` makes one")
    if not sealed.is_file():
        raise CliError(f"{sealed}: no such file")
    try:
        open_file(sealed, path.read_text(), output or sealed)
    except SealingError as exc:
        raise CliError(str(exc)) from None
    out().print(f"opened {escape(str(output or sealed))}")
