import pytest

from toolferry.domain.errors import InvalidTransition
from toolferry.domain.states import ACTIVE, TERMINAL, State, can_transition, validate_transition


def test_all_eleven_tes_states_exist() -> None:
    assert [s.value for s in State] == [
        "UNKNOWN",
        "QUEUED",
        "INITIALIZING",
        "RUNNING",
        "PAUSED",
        "COMPLETE",
        "EXECUTOR_ERROR",
        "SYSTEM_ERROR",
        "CANCELED",
        "PREEMPTED",
        "CANCELING",
    ]


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("target", list(State))
def test_terminal_states_are_final(terminal: State, target: State) -> None:
    assert not can_transition(terminal, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.UNKNOWN, State.QUEUED),
        (State.QUEUED, State.INITIALIZING),
        (State.QUEUED, State.CANCELED),
        (State.INITIALIZING, State.RUNNING),
        (State.INITIALIZING, State.SYSTEM_ERROR),
        (State.RUNNING, State.COMPLETE),
        (State.RUNNING, State.EXECUTOR_ERROR),
        (State.RUNNING, State.CANCELING),
        (State.RUNNING, State.PREEMPTED),
        (State.CANCELING, State.CANCELED),
    ],
)
def test_the_normal_life_of_a_task_is_allowed(current: State, target: State) -> None:
    validate_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.QUEUED, State.RUNNING),
        (State.QUEUED, State.COMPLETE),
        (State.QUEUED, State.CANCELING),
        (State.INITIALIZING, State.COMPLETE),
        (State.CANCELING, State.RUNNING),
        (State.CANCELING, State.COMPLETE),
        (State.UNKNOWN, State.RUNNING),
    ],
)
def test_shortcuts_are_refused(current: State, target: State) -> None:
    with pytest.raises(InvalidTransition, match=f"from {current} to {target}"):
        validate_transition(current, target)


def test_active_and_terminal_are_disjoint() -> None:
    assert not ACTIVE & TERMINAL
    assert State.RUNNING.active and not State.RUNNING.terminal
    assert State.CANCELED.terminal
