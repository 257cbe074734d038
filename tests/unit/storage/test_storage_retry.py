"""Retries with exponential backoff (storage/retry.py)."""

from __future__ import annotations

import pytest

from toolferry.storage.retry import RetriesExhausted, backoff_delays, retrying


class Flaky:
    """Fails with the given exceptions in turn, then returns "done"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def transient(exc: Exception) -> bool:
    return isinstance(exc, ConnectionError)


def test_backoff_doubles_from_the_first_delay() -> None:
    assert backoff_delays(5, first=0.5) == [0.5, 1.0, 2.0, 4.0]


def test_backoff_is_capped() -> None:
    assert backoff_delays(6, first=1, factor=3, cap=10) == [1, 3, 9, 10, 10]


def test_one_attempt_has_no_delay() -> None:
    assert backoff_delays(1, first=0.5) == []


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        backoff_delays(0, first=0.5)


def test_success_at_once_does_not_sleep() -> None:
    pauses: list[float] = []
    call = Flaky()
    assert retrying(call, delays=[1, 2], transient=transient, sleep=pauses.append) == "done"
    assert (call.calls, pauses) == (1, [])


def test_transient_failures_are_retried_after_each_delay() -> None:
    pauses: list[float] = []
    dropped: list[Exception] = []
    first, second = ConnectionResetError("reset"), ConnectionRefusedError("refused")
    call = Flaky(first, second)
    result = retrying(
        call,
        delays=[0.5, 1.0],
        transient=transient,
        sleep=pauses.append,
        before_retry=dropped.append,
    )
    assert result == "done"
    assert call.calls == 3
    assert pauses == [0.5, 1.0]
    assert dropped == [first, second]


def test_a_lasting_transient_failure_exhausts_the_attempts() -> None:
    pauses: list[float] = []
    last = ConnectionRefusedError("refused 3")
    call = Flaky(ConnectionRefusedError("1"), ConnectionRefusedError("2"), last)
    with pytest.raises(RetriesExhausted) as info:
        retrying(call, delays=[0.1, 0.2], transient=transient, sleep=pauses.append)
    assert info.value.last is last
    assert info.value.attempts == 3
    assert info.value.__cause__ is last
    assert pauses == [0.1, 0.2]  # no pause after the last attempt


def test_a_permanent_failure_is_raised_at_once_unchanged() -> None:
    pauses: list[float] = []
    error = FileNotFoundError("missing")
    call = Flaky(error)
    with pytest.raises(FileNotFoundError) as info:
        retrying(call, delays=[0.1, 0.2], transient=transient, sleep=pauses.append)
    assert info.value is error
    assert (call.calls, pauses) == (1, [])


def test_a_permanent_failure_after_a_transient_one_ends_the_retries() -> None:
    pauses: list[float] = []
    call = Flaky(ConnectionResetError("reset"), PermissionError("denied"))
    with pytest.raises(PermissionError):
        retrying(call, delays=[0.1, 0.2, 0.4], transient=transient, sleep=pauses.append)
    assert (call.calls, pauses) == (2, [0.1])


def test_no_delays_means_one_attempt() -> None:
    call = Flaky(ConnectionResetError("reset"))
    with pytest.raises(RetriesExhausted) as info:
        retrying(call, delays=[], transient=transient, sleep=lambda _: None)
    assert (info.value.attempts, call.calls) == (1, 1)


def test_an_interrupt_is_never_retried() -> None:
    def interrupted() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retrying(interrupted, delays=[0.1], transient=lambda _: True, sleep=lambda _: None)
