"""Where the CLI writes: results on stdout, progress, warnings and errors on stderr.

Keeping them apart lets ``id=$(toolferry task submit t.json)`` and
``toolferry run img -- cmd > out.txt`` capture exactly the result.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["CliError", "err", "error", "out", "print_json", "warn", "write_raw"]


class CliError(Exception):
    """An expected failure: shown as one red line, then the command exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# Consoles are made per call, not at import: Rich decides colour and width when a console is
# created, and the streams (a terminal, a pipe, a test runner's buffer) can differ per command.
def out() -> Console:
    return Console(highlight=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    # soft_wrap: one logical line, wrapped by the terminal, never broken by Rich.
    err().print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def error(message: str) -> None:
    err().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colour, no wrapping) so that it pipes into jq unchanged."""
    out().out(json.dumps(value, indent=2, ensure_ascii=False), highlight=False)


def write_raw(text: str, *, stderr: bool = False) -> None:
    """Text a task produced, byte for byte: Rich would drop control characters such as the
    ``\\r`` of progress bars, and Click's echo would drop colour codes."""
    stream = sys.stderr if stderr else sys.stdout
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()
