"""Waiting for a task in front of a user: a spinner with the live state, one line per change; and
the exit status that the commands which wait report for the state a task ended in.

All of the output goes to stderr, so a command's stdout still carries only its result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.text import Text

from toolferry.cli.client import TesClient
from toolferry.cli.output import err
from toolferry.cli.render import state_text
from toolferry.domain.states import State

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_STATUS_HELP",
    "exit_code_for",
    "wait_live",
]

# The one table for `run`, `task submit --wait` and `task wait`. 1 means the user's command
# failed, 2 that the task did not get to run it to the end or toolferry failed, so that scripts
# can tell "my tool failed" from "toolferry failed".
# Keyed by State, which are strs: a state name from the API looks its code up as it is.
EXIT_CODES: Mapping[str, int] = {
    State.COMPLETE: 0,
    State.EXECUTOR_ERROR: 1,
    State.SYSTEM_ERROR: 2,
    State.CANCELED: 2,
    State.PREEMPTED: 2,
}
# Any other outcome: an error (CliError, ClientError), a wait that timed out, an unknown state.
EXIT_ERROR = 2
# Ctrl-C: 128 + SIGINT, what a shell reports for a job stopped by it.
EXIT_INTERRUPTED = 130

EXIT_STATUS_HELP = (
    "**Exit status**: 0 the task ended COMPLETE; 1 EXECUTOR_ERROR (a command failed); "
    "2 any other end state (SYSTEM_ERROR, CANCELED, PREEMPTED) or an error; "
    "130 interrupted (Ctrl-C)."
)


def exit_code_for(state: str | None) -> int:
    """The exit status for a task that ended in ``state`` (a TES state name)."""
    return EXIT_CODES.get(state or "", EXIT_ERROR)


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
