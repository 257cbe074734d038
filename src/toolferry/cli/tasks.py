"""`toolferry task ...`: submit, inspect, list, cancel and wait for TES tasks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.text import Text

from toolferry.cli.client import WaitTimeout
from toolferry.cli.documents import parse_pairs, read_task_document
from toolferry.cli.live import EXIT_ERROR, EXIT_STATUS_HELP, exit_code_for, wait_live
from toolferry.cli.output import CliError, err, out, print_json, warn
from toolferry.cli.render import print_attempt_logs, print_task, state_text, task_table
from toolferry.cli.session import announce_runtime, deps, session
from toolferry.cli.transfer import (
    Records,
    bring_back,
    check_local,
    destinations_below,
    discard,
    download_to,
    local_paths_in,
    recorded_destinations,
    stage,
)
from toolferry.domain.states import TERMINAL, State

__all__ = ["app"]

app = typer.Typer(
    name="task",
    help="Submit, inspect, list, cancel and wait for tasks.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


class View(StrEnum):
    """How much of a task the hub returns (TES `view`)."""

    MINIMAL = "MINIMAL"
    BASIC = "BASIC"
    FULL = "FULL"


VIEWS = "|".join(View)  # the --view metavar

EnumT = TypeVar("EnumT", bound=StrEnum)


def any_case(enum: type[EnumT]) -> Callable[[str], EnumT]:
    """A parser for an option whose values are upper case (TES names) that takes any case.

    Typer's own ``case_sensitive=False`` would list the values in lower case in the help and in
    its errors; with this parser and ``metavar``, both show them as the API spells them."""

    def parse(value: str) -> EnumT:
        try:
            return enum(str(value).upper())
        except ValueError:
            raise ValueError(f"{value!r} is not one of {', '.join(enum)}") from None

    return parse


EMBEDDED_SUBMIT_WARNING = (
    "no hub was running (TOOLFERRY_URL is unset and none serves this data directory): the task "
    "was queued by a hub inside this command, which stops now; it proceeds only while a hub "
    "runs on this data directory (the next `toolferry` command, or `toolferry server`)"
)

TaskId = Annotated[str, typer.Argument(metavar="ID", help="The task's id.", show_default=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the hub's JSON answer instead.")]


@app.command(epilog=EXIT_STATUS_HELP)
def submit(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE|-", help="A TES task document (JSON); `-` reads it from stdin."
        ),
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the task to end and print its final state.")
    ] = False,
) -> None:
    """Submit a TES task document and print the new task's id.

    Without `--wait`, the exit status is 0 once the hub has accepted the task.

    An input or output `url` may be a local path (relative ones are read from the current
    directory). One the hub serves as file:// is sent so; any other local input is uploaded to
    the hub's file store, and any other local output is downloaded from there once the task has
    ended: by `--wait`, `toolferry task wait` or `toolferry task download`.
    """
    document = read_task_document(file)
    checked = check_local(document, local_paths_in(document))
    records = Records(deps(ctx).settings().data_dir)
    with session(ctx) as s:
        announce_runtime(s, document)
        document, staged = stage(s.client, document, checked)
        try:
            task_id = s.client.create(document)
        except BaseException:
            discard(s.client, staged)
            raise
        records.save(task_id, staged)  # until its outputs are back
        out().print(task_id, markup=False)
        if not wait:
            if s.embedded:
                warn(EMBEDDED_SUBMIT_WARNING)
            if staged.outputs:
                err().print(
                    "[dim]its local outputs come back with "
                    f"`toolferry task download {task_id}` once it has ended[/]",
                    soft_wrap=True,
                )
            return
        task = wait_live(s.client, task_id)
        bring_back(s.client, task, staged, records)
    state = str(task.get("state", "UNKNOWN"))
    out().print(state_text(state))
    raise typer.Exit(exit_code_for(state))


@app.command()
def get(
    ctx: typer.Context,
    task_id: TaskId,
    view: Annotated[
        View,
        typer.Option(
            "--view", parser=any_case(View), metavar=VIEWS, help="How much of the task to show."
        ),
    ] = View.FULL,
    as_json: JsonFlag = False,
) -> None:
    """Show one task: its state, executors, files and the logs of its last attempt."""
    with session(ctx) as s:
        task = s.client.get(task_id, view=view.value)
    if as_json:
        print_json(task)
    else:
        print_task(out(), task)


def _tag_filter(values: list[str]) -> dict[str, str]:
    """`k=v` matches that value; a bare `k` matches any value of k (TES: an empty tag_value)."""
    tags: dict[str, str] = {}
    for value in values:
        if "=" in value:
            tags.update(parse_pairs([value], "--tag", "KEY=VALUE or KEY"))
        else:
            tags[value] = ""
    return tags


@app.command("list")
def list_tasks(
    ctx: typer.Context,
    state: Annotated[
        State | None,
        typer.Option(
            "--state",
            parser=any_case(State),
            metavar="STATE",
            help=f"Only tasks in this state: {', '.join(State)}.",
            show_default=False,
        ),
    ] = None,
    name_prefix: Annotated[
        str | None,
        typer.Option("--name-prefix", metavar="PREFIX", help="Only tasks whose name starts so."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            metavar="KEY[=VALUE]",
            help="Only tasks with this tag (any value when VALUE is left out). Repeatable.",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", min=0, metavar="N", help="Show at most N tasks; 0: all."),
    ] = 50,
    view: Annotated[
        View,
        typer.Option(
            "--view",
            parser=any_case(View),
            metavar=VIEWS,
            help="How much of each task to fetch (for --json).",
        ),
    ] = View.BASIC,
    as_json: JsonFlag = False,
) -> None:
    """List tasks (id, name, state, creation time) in the order the hub returns them."""
    tags = _tag_filter(tag or [])
    page_size = min(limit, 256) if limit else None
    with session(ctx) as s:
        tasks_iter = s.client.iter_tasks(
            view=view.value,
            name_prefix=name_prefix,
            state=state.value if state else None,
            tags=tags,
            page_size=page_size,
        )
        # One more than the limit tells whether to say that some were left out.
        fetched = list(itertools.islice(tasks_iter, limit + 1) if limit else tasks_iter)
    shown = fetched[:limit] if limit else fetched
    if as_json:
        print_json(shown)
        return
    if not shown:
        err().print("[dim]no tasks[/]")
        return
    out().print(task_table(shown))
    if limit and len(fetched) > limit:
        err().print(f"[dim]showing the first {limit}; use --limit 0 for all[/]")


@app.command()
def cancel(ctx: typer.Context, task_id: TaskId) -> None:
    """Cancel a task. Queued tasks end at once; running ones are stopped first."""
    with session(ctx) as s:
        s.client.cancel(task_id)
        state = str(s.client.get(task_id, view="MINIMAL").get("state", "UNKNOWN"))
    out().print(Text.assemble(f"{task_id} ", state_text(state)))


@app.command(epilog=EXIT_STATUS_HELP)
def wait(
    ctx: typer.Context,
    task_id: TaskId,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0, metavar="SECONDS", help="Give up after this long (exit 2)."
        ),
    ] = None,
) -> None:
    """Wait for a task to end, showing its state as it changes.

    Then prints the state it ended in. Ctrl-C stops waiting and leaves the task as it is. A task
    submitted from here with local outputs has them downloaded, as `task download` would.
    """
    records = Records(deps(ctx).settings().data_dir)
    with session(ctx) as s:
        try:
            task = wait_live(s.client, task_id, timeout=timeout)
        except WaitTimeout as exc:
            raise CliError(str(exc), exit_code=EXIT_ERROR) from None
        staged = records.load(task_id)
        if staged is not None:
            bring_back(s.client, task, staged, records)
    state = str(task.get("state", "UNKNOWN"))
    out().print(Text.assemble(f"{task_id} ", state_text(state)))
    raise typer.Exit(exit_code_for(state))


@app.command()
def logs(ctx: typer.Context, task_id: TaskId) -> None:
    """Print the stdout and stderr of each executor of the task's last attempt, and its system
    logs."""
    with session(ctx) as s:
        task: dict[str, Any] = s.client.get(task_id, view="FULL")
    if not print_attempt_logs(out(), task):
        err().print(f"task {task_id} has not started yet ({task.get('state', 'UNKNOWN')})")


@app.command()
def download(
    ctx: typer.Context,
    task_id: TaskId,
    dest: Annotated[
        Path | None,
        typer.Argument(
            metavar="DEST",
            help="Put every output below this directory, at its path in the container.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the task's files on the hub after downloading them."),
    ] = False,
) -> None:
    """Download the outputs an ended task left in the hub's file store (hub:// URLs).

    Without DEST, they go to the local paths the task was submitted with (`task submit` of a
    document whose output `url` is a local path remembers them on this machine); with DEST, each
    goes below DEST at its path in the container: /out/result.txt to DEST/out/result.txt. Then
    the file space the submit created is deleted from the hub, unless `--keep` is given. Prints
    where each file went.
    """
    records = Records(deps(ctx).settings().data_dir)
    staged = records.load(task_id)
    if dest is None and staged is None:
        raise CliError(
            f"no local destinations are recorded for task {task_id} on this machine; give DEST "
            "to download its outputs below a directory"
        )
    with session(ctx) as s:
        task = s.client.get(task_id, view="FULL")
        state = str(task.get("state", "UNKNOWN"))
        if state not in TERMINAL:
            raise CliError(
                f"task {task_id} is {state}; its outputs are uploaded when it ends "
                f"(`toolferry task wait {task_id}`)"
            )
        if dest is not None:
            plan = destinations_below(task, dest.expanduser().resolve())
        else:
            assert staged is not None
            plan = recorded_destinations(task, staged)
        if not plan:
            err().print(f"task {task_id} left no outputs in the hub's file store", markup=False)
        fetched = download_to(s.client, plan)
        if staged is not None and not keep:
            discard(s.client, staged)
            records.drop(task_id)
    for path in fetched.values():
        out().print(str(path), markup=False, soft_wrap=True)
