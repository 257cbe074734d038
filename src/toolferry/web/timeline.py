"""A task's timeline: how long each phase of each attempt took, from its state events
(QUEUED → INITIALIZING, which stages inputs → RUNNING, which runs executors and stages
outputs → an end state)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from toolferry.domain.events import Event, EventKind
from toolferry.domain.states import State

# What a person calls each state's phase.
PHASES: dict[State, str] = {
    State.QUEUED: "queued",
    State.INITIALIZING: "initializing (staging inputs)",
    State.RUNNING: "running (executors, then staging outputs)",
    State.PAUSED: "paused",
    State.CANCELING: "canceling",
}


@dataclass(frozen=True, kw_only=True)
class Phase:
    state: State
    label: str
    start: datetime
    end: datetime | None  # None: still in it (or it is the end state)
    reason: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()


def build(events: Iterable[Event]) -> list[Phase]:
    """One phase per state change, in order; a phase ends where the next begins. The end state
    is a phase of its own, with no end."""
    phases: list[Phase] = []
    for event in events:
        if event.kind is not EventKind.STATE:
            continue
        state = State(event.data["state"])
        if phases:
            last = phases[-1]
            phases[-1] = Phase(
                state=last.state,
                label=last.label,
                start=last.start,
                end=event.time,
                reason=last.reason,
            )
        label = "ended: " + str(state) if state.terminal else PHASES.get(state, str(state))
        phases.append(
            Phase(
                state=state,
                label=label,
                start=event.time,
                end=None,
                reason=str(event.data.get("reason", "")),
            )
        )
    return phases
