"""The web UI's pure parts: paging links, the timeline, CSRF tokens, log tails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from toolferry.domain.events import Event
from toolferry.domain.states import State
from toolferry.domain.task import Executor, ExecutorLog, Task, TaskLog, TaskSpec
from toolferry.web import csrf, paging, timeline
from toolferry.web.live import log_tails, read_tail

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_first_page_has_no_first_link_and_keeps_filters_in_next() -> None:
    links = paging.links(
        "/ui/tasks", {"state": "RUNNING", "name": ""}, current_token=None, next_token="abc"
    )
    assert links == {"first": None, "next": "/ui/tasks?state=RUNNING&page_token=abc"}


def test_last_page_has_a_first_link_and_no_next() -> None:
    links = paging.links("/ui/tasks", {"name": "a b&c"}, current_token="abc", next_token=None)
    assert links == {"first": "/ui/tasks?name=a+b%26c", "next": None}


def test_page_link_without_anything_is_the_bare_path() -> None:
    assert paging.page_link("/ui/tasks", {"state": None}) == "/ui/tasks"


def _state(state: State, seconds: float, reason: str | None = None) -> Event:
    event = Event.state("t", state, reason)
    return Event(
        task_id="t", kind=event.kind, data=event.data, time=T0 + timedelta(seconds=seconds)
    )


def test_timeline_has_one_phase_per_state_each_ending_where_the_next_begins() -> None:
    events = [
        _state(State.QUEUED, 0),
        _state(State.INITIALIZING, 2),
        Event.system_log("t", "ignored: not a state"),
        _state(State.RUNNING, 3),
        _state(State.COMPLETE, 7.5),
    ]
    phases = timeline.build(events)
    assert [p.state for p in phases] == [
        State.QUEUED,
        State.INITIALIZING,
        State.RUNNING,
        State.COMPLETE,
    ]
    assert [p.seconds for p in phases] == [2.0, 1.0, 4.5, None]
    assert phases[-1].label == "ended: COMPLETE"
    assert phases[0].label == "queued"


def test_timeline_keeps_reasons_and_retries() -> None:
    events = [
        _state(State.QUEUED, 0),
        _state(State.INITIALIZING, 1),
        _state(State.QUEUED, 2, "the node was lost"),
        _state(State.INITIALIZING, 3),
    ]
    phases = timeline.build(events)
    assert [p.state for p in phases][-2:] == [State.QUEUED, State.INITIALIZING]
    assert phases[2].reason == "the node was lost"
    assert phases[-1].end is None


def test_csrf_token_is_bound_to_its_session_and_key() -> None:
    key, other_key = b"k" * 32, b"o" * 32
    session = csrf.new_session()
    token = csrf.token_for(key, session)
    assert csrf.check(key, session, token)
    assert not csrf.check(key, csrf.new_session(), token)
    assert not csrf.check(other_key, session, token)
    assert not csrf.check(key, None, token)
    assert not csrf.check(key, session, None)
    assert not csrf.check(key, session, "")


def test_read_tail_keeps_the_end(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"a" * 100 + b"end\n")
    assert read_tail(path, limit=4) == "end\n"
    assert read_tail(tmp_path / "missing") is None


def _task(tmp_path: Path, state: State, logs: tuple[ExecutorLog, ...]) -> Task:
    spec = TaskSpec(
        executors=(
            Executor(image="i", command=("a",)),
            Executor(image="i", command=("b",)),
        )
    )
    attempt = TaskLog(logs=logs, metadata={"work_dir": str(tmp_path / "work" / "t" / "1")})
    return Task(id="t", owner="u", spec=spec, creation_time=T0, state=state, logs=(attempt,))


def test_log_tails_read_a_running_executors_files_on_the_hubs_own_site(tmp_path: Path) -> None:
    meta = tmp_path / "work" / "t" / "1" / "meta"
    meta.mkdir(parents=True)
    (meta / "1.stdout").write_text("live line\n")
    recorded = (ExecutorLog(exit_code=0, stdout="done\n"),)
    task = _task(tmp_path, State.RUNNING, recorded)
    assert log_tails(task, tmp_path / "work") == {
        (0, "stdout"): "done\n",
        (1, "stdout"): "live line\n",
    }
    # A work dir outside the hub's own (another site's metadata) is never read.
    assert log_tails(task, tmp_path / "elsewhere") == {(0, "stdout"): "done\n"}
