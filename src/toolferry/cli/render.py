"""How tasks look in a terminal: one task in detail, a table of tasks, an attempt's logs.

Everything here takes TES JSON (dicts) as the API returns it, so that it renders tasks from any
TES server, and text that came from a task (names, logs, commands) is never read as markup.
Executors, inputs and outputs are numbered from 0, as in TES arrays and the hub's messages
("executor 0", "inputs[0]"), so that what a user reads here matches what the hub says.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from toolferry.domain.states import State

__all__ = [
    "STATE_STYLES",
    "command_line",
    "duration",
    "executor_image",
    "format_time",
    "last_attempt",
    "print_attempt_logs",
    "print_task",
    "state_text",
    "stream_panel",
    "tail",
    "task_table",
]

# Keyed by State (strs), so that the names that come from the API look their style up as they are.
STATE_STYLES: Mapping[str, str] = {
    State.UNKNOWN: "dim",
    State.QUEUED: "blue",
    State.INITIALIZING: "cyan",
    State.RUNNING: "cyan",
    State.PAUSED: "yellow",
    State.CANCELING: "yellow",
    State.COMPLETE: "bold green",
    State.EXECUTOR_ERROR: "bold red",
    State.SYSTEM_ERROR: "bold red",
    State.CANCELED: "yellow",
    State.PREEMPTED: "yellow",
}

TAIL_LINES = 20


def state_text(state: str | None) -> Text:
    state = state or "UNKNOWN"
    return Text(state, style=STATE_STYLES.get(state, ""))


def format_time(value: str | None) -> str:
    """RFC 3339 from the API → local time to the second; unparseable values are shown as is."""
    if not value:
        return "-"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone()
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def duration(start: str | None, end: str | None) -> str | None:
    if not start or not end:
        return None
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (ValueError, TypeError):
        return None
    if seconds < 10:  # short tasks are common; "0.0 s" would say nothing
        return f"{seconds:.2f} s"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def tail(text: str, lines: int = TAIL_LINES) -> tuple[str, int]:
    """The last ``lines`` lines of ``text`` and how many lines were left out."""
    parts = text.rstrip("\n").split("\n")
    if len(parts) <= lines:
        return "\n".join(parts), 0
    return "\n".join(parts[-lines:]), len(parts) - lines


def command_line(command: Iterable[str]) -> str:
    return shlex.join(list(command))


def last_attempt(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """TES keeps one log per attempt; the last one is what happened most recently."""
    logs = task.get("logs") or []
    return logs[-1] if logs else None


def executor_image(task: Mapping[str, Any], index: int) -> str:
    """The image of executor ``index`` (from 0), or "" when the view left executors out."""
    executors = task.get("executors") or []
    return str(executors[index].get("image", "")) if 0 <= index < len(executors) else ""


def task_table(tasks: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    # Ids are copied into other commands: never shorten them.
    table.add_column("ID", no_wrap=True, min_width=20)
    table.add_column("NAME", overflow="fold")
    table.add_column("STATE", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for task in tasks:
        table.add_row(
            Text(str(task.get("id", ""))),
            Text(str(task.get("name") or "")),
            state_text(task.get("state")),
            format_time(task.get("creation_time")),
        )
    return table


def _kv(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items())


def _summary(task: Mapping[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("id", Text(str(task.get("id", ""))))
    grid.add_row("state", state_text(task.get("state")))
    if task.get("name"):
        grid.add_row("name", Text(str(task["name"])))
    if task.get("description"):
        grid.add_row("description", Text(str(task["description"])))
    if task.get("creation_time"):
        grid.add_row("created", format_time(task["creation_time"]))
    if task.get("tags"):
        grid.add_row("tags", Text(_kv(task["tags"])))
    resources = task.get("resources") or {}
    shown = {k: v for k, v in resources.items() if k != "backend_parameters" and v is not None}
    shown.update(resources.get("backend_parameters") or {})
    if shown:
        grid.add_row("resources", Text(_kv(shown)))
    if task.get("volumes"):
        grid.add_row("volumes", Text(", ".join(task["volumes"])))
    return grid


def _executors(task: Mapping[str, Any]) -> Table | None:
    executors = task.get("executors") or []
    if not executors:
        return None
    table = Table(title="Executors", title_justify="left", show_edge=False, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("IMAGE", overflow="fold")
    table.add_column("COMMAND", overflow="fold")
    table.add_column("DETAILS", overflow="fold")
    for index, ex in enumerate(executors):
        details = []
        if ex.get("workdir"):
            details.append(f"workdir {ex['workdir']}")
        for stream in ("stdin", "stdout", "stderr"):
            if ex.get(stream):
                details.append(f"{stream} {ex[stream]}")
        if ex.get("env"):
            details.append(f"env {_kv(ex['env'])}")
        if ex.get("ignore_error"):
            details.append("ignore_error")
        table.add_row(
            str(index),
            Text(str(ex.get("image", ""))),
            Text(command_line(ex.get("command") or [])),
            Text("; ".join(details)),
        )
    return table


def _files(task: Mapping[str, Any]) -> Table | None:
    inputs = task.get("inputs") or []
    outputs = task.get("outputs") or []
    if not inputs and not outputs:
        return None
    table = Table(title="Files", title_justify="left", show_edge=False, header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("PATH", overflow="fold")
    table.add_column("URL", overflow="fold")
    for index, item in enumerate(inputs):
        content = item.get("content")
        source = (
            f"(inline, {len(content.encode())} bytes)"
            if content is not None
            else str(item.get("url", ""))
        )
        table.add_row(f"inputs[{index}]", Text(str(item.get("path", ""))), Text(source))
    for index, item in enumerate(outputs):
        table.add_row(
            f"outputs[{index}]", Text(str(item.get("path", ""))), Text(str(item.get("url", "")))
        )
    return table


def stream_panel(title: str, text: str | None, style: str) -> Panel | None:
    if not text:
        return None
    shown, hidden = tail(text)
    if hidden:
        title = f"{title} (last {TAIL_LINES} lines, {hidden} more above)"
    return Panel(Text(shown), title=title, title_align="left", border_style=style, expand=True)


def _attempt(task: Mapping[str, Any], attempt: Mapping[str, Any], number: int) -> Group:
    parts: list[RenderableType] = []
    when = format_time(attempt.get("start_time"))
    took = duration(attempt.get("start_time"), attempt.get("end_time"))
    header = f"[bold]Attempt {number}[/] started {when}" + (f", took {took}" if took else "")
    parts.append(Text.from_markup(header))
    for index, log in enumerate(attempt.get("logs") or []):
        image = executor_image(task, index)
        code = log.get("exit_code")
        code_style = "green" if code == 0 else "red"
        parts.append(
            Text.assemble(
                (f"executor {index}", "bold"),
                f" {image} · exit ",
                (str(code) if code is not None else "-", code_style),
            )
        )
        for panel in (
            stream_panel("stdout", log.get("stdout"), "dim"),
            stream_panel("stderr", log.get("stderr"), "red"),
        ):
            if panel is not None:
                parts.append(panel)
    outputs = attempt.get("outputs") or []
    if outputs:
        table = Table(title="Output files", title_justify="left", show_edge=False)
        table.add_column("PATH", overflow="fold")
        table.add_column("URL", overflow="fold")
        table.add_column("BYTES", justify="right", no_wrap=True)
        for item in outputs:
            table.add_row(
                Text(str(item.get("path", ""))),
                Text(str(item.get("url", ""))),
                str(item.get("size_bytes", "")),
            )
        parts.append(table)
    system_logs = attempt.get("system_logs") or []
    if system_logs:
        parts.append(Text("System logs", style="bold"))
        parts.extend(Text(f"  {line}", style="yellow") for line in system_logs)
    return Group(*parts)


def print_task(console: Console, task: Mapping[str, Any]) -> None:
    """The detailed view of ``task get``: as much of the task as the chosen view returned."""
    console.print(_summary(task))
    for section in (_executors(task), _files(task)):
        if section is not None:
            console.print()
            console.print(section)
    attempts = task.get("logs") or []
    if attempts:
        console.print()
        if len(attempts) > 1:
            console.print(f"[dim]{len(attempts)} attempts; showing the last one[/]")
        console.print(_attempt(task, attempts[-1], len(attempts)))


def print_attempt_logs(console: Console, task: Mapping[str, Any]) -> bool:
    """Every executor's stdout and stderr of the last attempt, in full, then the system logs.

    Returns False when the task has not started an attempt yet."""
    attempt = last_attempt(task)
    if attempt is None:
        return False
    for index, log in enumerate(attempt.get("logs") or []):
        image = executor_image(task, index)
        code = log.get("exit_code")
        console.rule(
            f"executor {index} · {escape(str(image))} · exit {code if code is not None else '-'}",
            align="left",
        )
        for stream in ("stdout", "stderr"):
            text = log.get(stream) or ""
            console.print(f"[bold]{stream}[/]" + ("" if text else " [dim](empty)[/]"))
            if text:
                # As the task wrote it: Rich would drop control characters such as "\r".
                console.file.write(text if text.endswith("\n") else text + "\n")
    system_logs = attempt.get("system_logs") or []
    if system_logs:
        console.rule("system logs", align="left")
        for line in system_logs:
            console.out(line, highlight=False)
    return True
