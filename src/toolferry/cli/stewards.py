"""`toolferry approvals ...` (a site's stewards decide on tasks that wait for approval) and
`toolferry audit verify` (check a site's hash-chained audit log)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.output import CliError, err, out, print_json
from toolferry.cli.session import session

__all__ = ["approvals", "audit", "outputs"]

approvals = typer.Typer(
    name="approvals",
    help="Tasks waiting at your sites for a steward's approval: list, approve, reject.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
outputs = typer.Typer(
    name="outputs",
    help="Outputs held at your sites until a steward releases them (the airlock).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
audit = typer.Typer(
    name="audit",
    help="A data site's tamper-evident audit log.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@approvals.command("list")
def list_approvals(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Tasks at sites where you are a steward that wait for your decision."""
    with session(ctx) as s:
        items = s.client.catalogue_list("approvals")
    if as_json:
        print_json(items)
        return
    if not items:
        err().print("[dim]nothing waits for your decision[/]")
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("TASK", "SITE", "OWNER", "IMAGES", "DATA"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            Text(item["id"]),
            Text(item["site"]),
            Text(item["owner"]),
            Text("\n".join(item["images"])),
            Text("\n".join(item["inputs"]) or "-"),
        )
    out().print(table)


def _decide(ctx: typer.Context, task_id: str, verb: str, reason: str) -> None:
    with session(ctx) as s:
        s.client.catalogue("POST", f"approvals/{task_id}:{verb}", json={"reason": reason})
    out().print(f"{escape(task_id)}: {verb}d")


@approvals.command()
def approve(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (optional).")] = "",
) -> None:
    """Let the task run at the site."""
    _decide(ctx, task_id, "approve", reason)


@approvals.command()
def reject(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why: its owner reads it.")],
) -> None:
    """Refuse the task: it ends CANCELED with your reason."""
    _decide(ctx, task_id, "reject", reason)


@outputs.command("list")
def list_outputs(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Held outputs waiting for your review, with their sizes."""
    with session(ctx) as s:
        items = s.client.catalogue_list("outputs")
    if as_json:
        print_json(items)
        return
    if not items:
        err().print("[dim]no outputs wait for your review[/]")
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("TASK", "SITE", "FILES"):
        table.add_column(column, overflow="fold")
    for item in items:
        files = "\n".join(f"{f['path']} ({f['size']} bytes)" for f in item["files"])
        table.add_row(Text(item["id"]), Text(item["site"]), Text(files or "-"))
    out().print(table)


@outputs.command("release")
def release_outputs(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    reason: Annotated[str, typer.Option("--reason", "-r")] = "",
) -> None:
    """Let the outputs leave the site: they go to the task's output URLs."""
    with session(ctx) as s:
        s.client.catalogue("POST", f"outputs/{task_id}:release", json={"reason": reason})
    out().print(f"{escape(task_id)}: released")


@outputs.command("reject")
def reject_outputs(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why: its owner reads it.")],
) -> None:
    """Keep the outputs at the site: the task ends SYSTEM_ERROR with your reason."""
    with session(ctx) as s:
        s.client.catalogue("POST", f"outputs/{task_id}:reject", json={"reason": reason})
    out().print(f"{escape(task_id)}: rejected")


@audit.command()
def verify(
    ctx: typer.Context,
    log_file: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="An agent's audit.log (at the site)."),
    ] = None,
    site: Annotated[
        str | None, typer.Option("--site", help="Verify the copy the hub holds of this site's log.")
    ] = None,
) -> None:
    """Check a site's audit log: every edited, removed, reordered or inserted record is
    reported (exit status 1); an intact log exits 0."""
    from toolferry.security.audit import verify_file

    if (log_file is None) == (site is None):
        raise CliError("give either an audit log FILE or --site NAME")
    if log_file is not None:
        if not log_file.is_file():
            raise CliError(f"{log_file}: no such file")
        problems = [str(p) for p in verify_file(log_file) if not p.is_warning]
        what = str(log_file)
    else:
        with session(ctx) as s:
            answer = s.client.catalogue("GET", f"sites/{site}/audit")
        problems = list(answer["problems"])
        what = f"site {site} ({len(answer['records'])} records at the hub)"
    if problems:
        for problem in problems:
            err().print(f"[red]{escape(problem)}[/]")
        raise typer.Exit(1)
    out().print(f"{escape(what)}: intact")
