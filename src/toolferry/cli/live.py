"""Waiting for a task in front of a user: a spinner with the live state, one line per change.

All of it goes to stderr, so a command's stdout still carries only its result.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

from toolferry.cli.client import TesClient
from toolferry.cli.output import err
from toolferry.cli.render import state_text

__all__ = ["EXIT_CODES", "exit_code_for", "wait_live"]

# `toolferry run` and `task submit --wait`: 1 means the user's command failed, 2 that the task
# did not get to run it to the end (so scripts can tell "my tool failed" from "toolferry failed").
EXIT_CODES = {"COMPLETE": 0, "EXECUTOR_ERROR": 1}


def exit_code_for(state: str | None) -> int:
    return EXIT_CODES.get(state or "", 2)


def wait_live(
    client: TesClient,
    task_id: str,
    timeout: float | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Wait for ``task_id`` to end, showing its state; return it in the FULL view."""
    console = err()
    started = time.monotonic()
    who = label or task_id

    with console.status(Text(f"{who}: waiting"), spinner="dots") as status:

        def on_state(state: str) -> None:
            elapsed = time.monotonic() - started
            status.update(Text.assemble(f"{who}: ", state_text(state)))
            console.print(
                Text.assemble(("  " + f"{elapsed:6.1f} s ", "dim"), f"{who} ", state_text(state))
            )

        return client.wait(task_id, timeout=timeout, on_state=on_state)
