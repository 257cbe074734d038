"""`toolferry run`: submit one command (or a task file), follow it, show what it printed."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.text import Text

from toolferry.cli.client import ClientError, TesClient
from toolferry.cli.documents import apply_overrides, build_task, read_task_document
from toolferry.cli.live import EXIT_INTERRUPTED, exit_code_for, wait_live
from toolferry.cli.output import CliError, err, warn, write_raw
from toolferry.cli.render import duration, executor_image, last_attempt, state_text
from toolferry.cli.session import announce_runtime, deps, session
from toolferry.cli.transfer import (
    Records,
    Staged,
    bring_back,
    check_local,
    discard,
    local_paths_in,
    local_paths_of_options,
    stage,
)

__all__ = ["RunCommand", "print_run_result", "run"]

_COMMAND_KEY = "toolferry.run.command"


class RunCommand(typer.core.TyperCommand):
    """Takes everything after ``--`` as the command, before Click sees it.

    Click would merge it into the positional arguments, and then `run --runtime none -- sh -c x`
    could not tell that ``sh`` is the command rather than the image.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if "--" in args:
            split = args.index("--")
            ctx.meta[_COMMAND_KEY] = args[split + 1 :]
            args = args[:split]
        return super().parse_args(ctx, args)


class RuntimeOption(StrEnum):
    docker = "docker"
    podman = "podman"
    none = "none"


def _split_positional(ctx: typer.Context, positional: list[str]) -> tuple[str | None, list[str]]:
    """(image, command) from the positional arguments and what came after ``--``."""
    after_dashes: list[str] | None = ctx.meta.get(_COMMAND_KEY)
    if after_dashes is None:
        return (positional[0], positional[1:]) if positional else (None, [])
    if len(positional) > 1:
        raise CliError(
            f"only the image goes before `--`, got {' '.join(positional)!r}; "
            "put options before the image and the command after `--`"
        )
    return (positional[0] if positional else None), after_dashes


def _is_task_file(positional: list[str], ctx: typer.Context) -> bool:
    return (
        _COMMAND_KEY not in ctx.meta
        and len(positional) == 1
        and positional[0].endswith(".json")
        and Path(positional[0]).is_file()
    )


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal, a killed job) act as Ctrl-C while `run`
    follows its task, so the task is canceled rather than left running unattended."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers (e.g. `run` called from a test)
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(client: TesClient, task_id: str) -> typer.Exit:
    """Ctrl-C while following a task: cancel it, as a user of `run` expects of a foreground job."""
    try:
        client.cancel(task_id)
        warn(f"interrupted: canceled task {task_id}")
    except ClientError as exc:
        warn(f"interrupted; task {task_id} could not be canceled: {exc}")
    return typer.Exit(EXIT_INTERRUPTED)


def print_run_result(task: dict[str, Any]) -> None:
    """The executors' stdout on stdout and stderr on stderr, as they wrote it, then a summary
    (output files, system logs, end state) on stderr."""
    stderr = err()
    attempt = last_attempt(task) or {}
    count = len(task.get("executors") or [])
    for index, log in enumerate(attempt.get("logs") or []):
        code = log.get("exit_code")
        if count > 1:
            image = executor_image(task, index)
            stderr.rule(
                Text(f"executor {index} of {count} · {image} · exit {code}"),
                align="left",
                style="dim",
            )
        if log.get("stdout"):
            write_raw(log["stdout"])
        if log.get("stderr"):
            write_raw(log["stderr"], stderr=True)
        if code not in (0, None):
            stderr.print(Text(f"executor {index} exited with code {code}", style="red"))
    for item in attempt.get("outputs") or []:
        stderr.print(
            Text.assemble(
                ("output ", "dim"),
                str(item.get("path", "")),
                " → ",
                str(item.get("url", "")),
                (f" ({item.get('size_bytes', '?')} bytes)", "dim"),
            )
        )
    for line in attempt.get("system_logs") or []:
        stderr.print(Text(f"system: {line}", style="yellow"))
    took = duration(attempt.get("start_time"), attempt.get("end_time"))
    stderr.print(
        Text.assemble(
            f"task {task.get('id', '')} ",
            state_text(task.get("state")),
            f" in {took}" if took else "",
        )
    )


def run(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="IMAGE [--] COMMAND... | TASK.json",
            help=(
                "The image, then the command to run in it (after **--** when it has "
                "options of its own); or a TES task document (a **.json** file)."
            ),
            show_default=False,
        ),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="PATH=URL",
            help=(
                "Put the file or directory at URL at PATH inside the container before the "
                "command runs. URL may be a local path (see below). Repeatable."
            ),
        ),
    ] = None,
    outputs: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH=URL",
            help=(
                "Upload PATH from inside the container to URL when the command ends. URL may be "
                "a local path (see below): a file, or a directory (an existing one, or a path "
                "ending in /) that receives a DIRECTORY output. Repeatable."
            ),
        ),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", metavar="NAME=VALUE", help="Set an environment variable."),
    ] = None,
    workdir: Annotated[
        str | None,
        typer.Option("--workdir", "-w", metavar="DIR", help="Working directory of the command."),
    ] = None,
    cpu: Annotated[
        int | None, typer.Option("--cpu", min=1, metavar="N", help="CPU cores to reserve.")
    ] = None,
    ram: Annotated[
        float | None, typer.Option("--ram", min=0, metavar="GB", help="Memory to reserve, in GB.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="A name to find the task by later.")
    ] = None,
    runtime: Annotated[
        RuntimeOption | None,
        typer.Option(
            "--runtime",
            case_sensitive=False,
            help=(
                "How to run the command: in a **docker** or **podman** container, or as a host process "
                "(**none**; the image is then ignored and may be left out). "
                "Default: the hub's choice."
            ),
            show_default=False,
        ),
    ] = None,
    network: Annotated[
        bool,
        typer.Option(
            "--network", help="Give the command network access (tasks have none by default)."
        ),
    ] = False,
    tags: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", metavar="KEY=VALUE", help="Tag the task. Repeatable."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            metavar="NAME",
            help="Where the task runs: **local**, **slurm** or **swarm**, as the hub offers "
            "(GET /api/v1/site). Default: the hub's choice.",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=VALUE",
            help="A backend parameter, e.g. partition=debug (slurm) or "
            "constraints=node.labels.zone==a (swarm). Repeatable.",
        ),
    ] = None,
) -> None:
    """Run a command in an image and show what it printed.

    Submits a task, follows its state, then prints the command's stdout (on stdout) and stderr
    (on stderr), where its output files went and how it ended. Ctrl-C cancels the task.

    Options go before IMAGE; everything after IMAGE is the command. Without `--runtime`, the
    hub's default runtime runs it; a hub started by this command says which one that is.

    Local paths given to `-i` and `-o` (or as `url` in a task file) are sent as file:// URLs,
    without a copy, when they lie in a directory the hub allows: DATA_DIR/storage, or one listed
    in the `file_allowed_dirs` setting (TOOLFERRY_FILE_ALLOWED_DIRS: paths separated by colons).
    Any other local input is uploaded to the hub's file store first, and any other local output
    is downloaded from it once the task has ended COMPLETE or EXECUTOR_ERROR; then the task's
    files are deleted from the hub. A progress bar shows on a terminal.

    **Examples**

        toolferry run --runtime none -- echo hello
        toolferry run --runtime none -i /in/a=a.txt -- wc -l /in/a
        toolferry run --runtime none -i /in=data/ -o /out/r=r/ -- cp -r /in/. /out/r
        toolferry run -o /out/n=n.txt IMAGE -- sh -c 'ls / | wc -l > /out/n'
        toolferry run task.json
        toolferry run --backend slurm -p partition=debug IMAGE -- sh -c 'hostname'
    """
    positional = list(args or [])
    rt = runtime.value if runtime is not None else None
    from_file = _is_task_file(positional, ctx)
    if from_file:
        given = [
            flag
            for flag, value in (
                ("--input", inputs),
                ("--output", outputs),
                ("--env", env),
                ("--workdir", workdir),
            )
            if value
        ]
        if given:
            raise CliError(
                f"{', '.join(given)} cannot be combined with a task file; put them in "
                f"{positional[0]} instead"
            )
        document = apply_overrides(
            read_task_document(positional[0]),
            name=name,
            cpu=cpu,
            ram=ram,
            runtime=rt,
            network=network,
            tags=tags or (),
            backend=backend,
            params=params or (),
        )
    else:
        image, command = _split_positional(ctx, positional)
        document = build_task(
            image=image,
            command=command,
            inputs=inputs or (),
            outputs=outputs or (),
            env=env or (),
            tags=tags or (),
            workdir=workdir,
            cpu=cpu,
            ram=ram,
            name=name,
            runtime=rt,
            network=network,
            backend=backend,
            params=params or (),
        )

    # Checked before a hub is reached: a missing input fails before anything is uploaded.
    local = (
        local_paths_in(document)
        if from_file
        else local_paths_of_options(inputs or [], outputs or [])
    )
    checked = check_local(document, local)
    records = Records(deps(ctx).settings().data_dir)

    with session(ctx) as s, _stop_signals_interrupt():
        announce_runtime(s, document)
        task_id = None
        staged = Staged()
        try:
            document, staged = stage(s.client, document, checked)
            task_id = s.client.create(document)
            records.save(task_id, staged)  # until its outputs are back
            err().print(Text.assemble(("submitted task ", "dim"), task_id))
            task = wait_live(s.client, task_id, label=name)
        except KeyboardInterrupt:
            if task_id is None:
                discard(s.client, staged)
                warn("interrupted while submitting: the task may exist; see `toolferry task list`")
                raise typer.Exit(EXIT_INTERRUPTED) from None
            stopped = _interrupted(s.client, task_id)
            discard(s.client, staged)
            records.drop(task_id)
            raise stopped from None
        except BaseException:
            if task_id is None:  # not submitted: nothing will use the uploaded files
                discard(s.client, staged)
            raise
        task = bring_back(s.client, task, staged, records)
    print_run_result(task)
    raise typer.Exit(exit_code_for(task.get("state")))
