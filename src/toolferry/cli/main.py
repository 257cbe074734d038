"""The `toolferry` command: assembles the sub-commands and turns expected errors into one line.

Every command that talks to a hub uses TOOLFERRY_URL when it is set, else starts an embedded
hub for its own duration (see :mod:`toolferry.cli.session`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.core

from toolferry import __version__
from toolferry.cli import (
    cache,
    config,
    credentials,
    environments,
    keys,
    sites,
    stewards,
    tasks,
    tokens,
)
from toolferry.cli.client import ClientError
from toolferry.cli.demo import demo
from toolferry.cli.live import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_STATUS_HELP
from toolferry.cli.output import CliError, error, warn
from toolferry.cli.run import RunCommand, run
from toolferry.cli.server import server

__all__ = ["app", "describe_client_error"]


def describe_client_error(exc: ClientError) -> str:
    """The message for a failed request, with what to do about the usual causes."""
    if exc.status is None:
        return exc.message
    if exc.status == 401:
        return (
            f"the hub wants a token ({exc.message}); set TOOLFERRY_TOKEN to a secret from "
            "`toolferry token create`"
        )
    if exc.status == 403:
        return f"not allowed: {exc.message}"
    if exc.status >= 500:
        return f"the hub failed (HTTP {exc.status}): {exc.message}"
    return f"the hub refused (HTTP {exc.status}): {exc.message}"


class ToolferryGroup(typer.core.TyperGroup):
    """The root group: the one place where expected errors and Ctrl-C become a line on stderr
    and an exit code (sub-groups and commands are invoked from within this ``invoke``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except ClientError as exc:
            error(describe_client_error(exc))
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            # Not Click's "Aborted!" and exit 1, which would read as "the command failed".
            # `run` cancels its task first; `task wait` and `submit --wait` leave it running.
            warn("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    name="toolferry",
    cls=ToolferryGroup,
    help=(
        "**toolferry** runs research tools where the data is: a GA4GH TES task service.\n\n"
        "Commands that talk to a hub use the one at TOOLFERRY_URL (with TOOLFERRY_TOKEN); "
        "without it, the hub serving this machine's data directory (`toolferry server`), "
        "else they start a hub inside the command, on that data directory."
    ),
    epilog="Start with **toolferry demo**, or **toolferry run --runtime none -- echo hello**.",
    no_args_is_help=True,
    # Markdown: hard-wrapped help paragraphs reflow to the terminal's width.
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,  # locals could hold the token
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"toolferry {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    # The help text is the Typer(help=...) above; this callback only adds --version.
    return None


app.command(
    "run",
    cls=RunCommand,
    epilog=EXIT_STATUS_HELP,
    # Everything after the image belongs to the command (as with `docker run`).
    context_settings={"allow_interspersed_args": False},
)(run)
app.add_typer(tasks.app, name="task")
app.command("server")(server)
app.add_typer(tokens.app, name="token")
app.add_typer(config.app, name="config")
app.add_typer(cache.app, name="cache")
app.add_typer(credentials.app, name="credentials")
app.add_typer(environments.app, name="env")
app.add_typer(sites.app, name="site")
app.add_typer(keys.app, name="keys")
app.add_typer(stewards.approvals, name="approvals")
app.add_typer(stewards.outputs, name="outputs")
app.add_typer(stewards.audit, name="audit")
app.command("agent")(sites.agent)
app.command("demo")(demo)
