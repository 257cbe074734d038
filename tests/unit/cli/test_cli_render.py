"""Rendering of tasks: what a user sees, and that task text is never read as markup."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from tests.unit.cli.fake_tes import executor_log

from toolferry.cli.render import (
    STATE_STYLES,
    format_time,
    print_attempt_logs,
    print_task,
    tail,
    task_table,
)
from toolferry.domain.states import State


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=120, color_system=None), buffer


TASK: dict[str, Any] = {
    "id": "01hx0000000000000000",
    "state": "EXECUTOR_ERROR",
    "name": "[bold]not markup[/]",
    "creation_time": "2024-05-01T10:00:00Z",
    "tags": {"project": "p1"},
    "resources": {"cpu_cores": 2, "backend_parameters": {"runtime": "docker"}},
    "inputs": [
        {"path": "/in/a.txt", "url": "s3://bucket/a.txt"},
        {"path": "/in/b.txt", "content": "héllo"},
    ],
    "outputs": [{"path": "/out/r.txt", "url": "file:///srv/r.txt"}],
    "executors": [
        {"image": "busybox", "command": ["sh", "-c", "echo a b"], "workdir": "/in"},
        {"image": "alpine", "command": ["false"]},
    ],
    "logs": [
        {"start_time": "2024-05-01T10:00:00Z", "logs": [executor_log("first try\n")]},
        {
            "start_time": "2024-05-01T10:01:00Z",
            "end_time": "2024-05-01T10:01:03Z",
            "logs": [
                executor_log("a b\n"),
                executor_log("", "boom [red]x[/red]\n", exit_code=1),
            ],
            "outputs": [{"path": "/out/r.txt", "url": "file:///srv/r.txt", "size_bytes": "12"}],
            "system_logs": ["executor 1 exited with code 1"],
        },
    ],
}


def test_task_detail_shows_state_executors_files_and_the_last_attempt() -> None:
    console, buffer = _console()
    print_task(console, TASK)
    text = buffer.getvalue()
    for expected in (
        "01hx0000000000000000",
        "EXECUTOR_ERROR",
        "[bold]not markup[/]",
        "project=p1",
        "cpu_cores=2, runtime=docker",
        "sh -c 'echo a b'",  # shlex quoting, the way a shell would take it
        "workdir /in",
        "s3://bucket/a.txt",
        "(inline, 6 bytes)",
        "file:///srv/r.txt",
        "2 attempts; showing the last one",
        "Attempt 2",
        "took 3.00 s",
        "boom [red]x[/red]",
        "executor 1 exited with code 1",
    ):
        assert expected in text, expected
    assert "first try" not in text


def test_executors_inputs_and_outputs_are_numbered_from_0_as_the_hub_does() -> None:
    console, buffer = _console()
    print_task(console, TASK)
    lines = buffer.getvalue().splitlines()

    def line_with(*parts: str) -> str:
        return next(line for line in lines if all(p in line for p in parts))

    assert line_with("busybox", "sh -c").split()[0] == "0"
    assert line_with("alpine", "false").split()[0] == "1"
    assert line_with("s3://bucket/a.txt").split()[0] == "inputs[0]"
    assert line_with("(inline, 6 bytes)").split()[0] == "inputs[1]"
    assert line_with("/out/r.txt", "file:///srv/r.txt").split()[0] == "outputs[0]"
    assert "executor 0 busybox · exit 0" in lines
    assert "executor 1 alpine · exit 1" in lines


def test_every_state_has_a_style() -> None:
    assert set(STATE_STYLES) == set(State)


def test_minimal_view_renders_without_the_missing_fields() -> None:
    console, buffer = _console()
    print_task(console, {"id": "t1", "state": "QUEUED"})
    assert "QUEUED" in buffer.getvalue()


def test_long_logs_are_cut_to_their_tail() -> None:
    text = "".join(f"line {n}\n" for n in range(100))
    shown, hidden = tail(text, lines=3)
    assert shown == "line 97\nline 98\nline 99"
    assert hidden == 97
    task = {**TASK, "logs": [{"logs": [executor_log(text)]}]}
    console, buffer = _console()
    print_task(console, task)
    assert "80 more above" in buffer.getvalue()
    assert "line 99" in buffer.getvalue()
    assert "line 50" not in buffer.getvalue()


def test_task_table_keeps_whole_ids() -> None:
    console = Console(file=io.StringIO(), width=40, color_system=None)
    console.print(task_table([TASK]))
    assert isinstance(console.file, io.StringIO)
    assert "01hx0000000000000000" in console.file.getvalue()


def test_attempt_logs_print_full_streams_and_system_logs() -> None:
    console, buffer = _console()
    assert print_attempt_logs(console, TASK)
    text = buffer.getvalue()
    assert "executor 0 · busybox · exit 0" in text
    assert "executor 1 · alpine · exit 1" in text
    assert "a b" in text
    assert "boom [red]x[/red]" in text
    assert "system logs" in text
    assert not print_attempt_logs(console, {"id": "t", "state": "QUEUED"})


def test_format_time() -> None:
    assert format_time(None) == "-"
    assert format_time("not a time") == "not a time"
    assert len(format_time("2024-05-01T10:00:00Z")) == len("2024-05-01 10:00:00")
