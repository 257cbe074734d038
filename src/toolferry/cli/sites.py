"""`toolferry site ...` (operators, on the hub's machine) and `toolferry agent` (at a data site).

`site add` and `site list` open the store named by the settings (TOOLFERRY_DATA_DIR /
TOOLFERRY_DATABASE_URL), like `toolferry token`. `agent` runs a site's agent in the foreground.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.output import CliError, err, out, print_json
from toolferry.cli.session import deps, open_hub
from toolferry.domain.errors import Conflict, InvalidTask

__all__ = ["agent", "app"]

app = typer.Typer(
    name="site",
    help="Enrol and list data sites. Acts on this machine's store (TOOLFERRY_DATA_DIR), so run "
    "it where the hub runs.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@app.command()
def add(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="The site's name: lower-case letters, digits, dashes.")
    ],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
) -> None:
    """Enrol a data site and print its agent's enrolment token (shown only this once)."""
    hub = open_hub(deps(ctx).settings(), what="cannot open the store")
    try:
        record, token = hub.sites.enrol(name, description)
    except (InvalidTask, Conflict) as exc:
        raise CliError(str(exc)) from None
    finally:
        hub.close()
    out().print(token, markup=False, soft_wrap=True)
    err().print(
        f"[green]enrolled site {escape(record.name)}[/]. At the site, run: "
        f"toolferry agent --hub HUB_URL --token TOKEN --config site.toml"
    )


@app.command("list")
def list_sites(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List sites: online or not, when last heard from, their datasets."""
    from toolferry.api.sites import site_out

    hub = open_hub(deps(ctx).settings(), what="cannot open the store")
    try:
        rows = [site_out(hub.sites, r) for r in hub.sites.sites.all()]
    finally:
        hub.close()
    if as_json:
        print_json(rows)
        return
    if not rows:
        err().print("[dim]no sites; enrol one with `toolferry site add NAME`[/]")
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("SITE", "STATE", "LAST SEEN", "DATASETS"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            Text(row["name"]),
            Text("online", style="green") if row["online"] else Text("offline", style="red"),
            Text(row["seen_at"] or "never"),
            Text(", ".join(d["name"] for d in row["datasets"]) or "-"),
        )
    out().print(table)


def agent(
    hub_url: Annotated[str, typer.Option("--hub", metavar="URL", help="The hub's base URL.")],
    token: Annotated[
        str,
        typer.Option(
            "--token",
            metavar="TOKEN",
            envvar="TOOLFERRY_SITE_TOKEN",
            help="The enrolment token from `toolferry site add` (or TOOLFERRY_SITE_TOKEN).",
        ),
    ],
    config: Annotated[
        Path, typer.Option("--config", metavar="FILE", help="The site's configuration (TOML).")
    ],
) -> None:
    """Run a data site's agent: take the hub's tasks for this site, check them against the
    site's policy, run them next to the data, send their events back. Connects outbound
    only; survives hub restarts and cut links. Stops on Ctrl-C or SIGTERM (tasks go on and
    the next start follows them again)."""
    from toolferry.agent.remote import Agent, HubLink
    from toolferry.agent.site_config import SiteConfigError, load_site_config

    try:
        site = load_site_config(config)
    except SiteConfigError as exc:
        raise CliError(str(exc)) from None
    for warning in site.warnings():
        err().print(f"[yellow]warning:[/] {escape(warning)}")
    runner = Agent(site, HubLink(hub_url, token))
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    runner.start()
    err().print(f"agent of site {escape(site.name)} connected to {escape(hub_url)}")
    while not stopped.wait(0.5):
        if runner.refused.is_set():
            runner.stop()
            raise CliError(
                f"the hub at {hub_url} refused the token: enrol the site again "
                "(`toolferry site add`) or check --token"
            )
    runner.stop()
    err().print("agent stopped")
