"""The hub's side of data sites (SiteService): which site a task must run at, routing at
submission, cancels before and after hand-out, the long-polled hand-out and the agent's events
(on a real SQLite store; the HTTP layer is in tests/unit/api/test_sites_api.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from toolferry.domain.errors import InvalidTask
from toolferry.domain.events import now
from toolferry.domain.ids import new_task_id
from toolferry.domain.limits import TimeLimits
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Input, Output, Resources, Task, TaskSpec
from toolferry.scheduler.sites import SiteService, site_of
from toolferry.security.identity import LOCAL
from toolferry.store.db import Database
from toolferry.store.keys import SqlKeyStore
from toolferry.store.sites import SqlSiteStore
from toolferry.store.sql import SqlTaskStore

PARAM = "resources.backend_parameters.site"
BASE = TaskSpec(executors=(Executor(image="img", command=("true",)),))


def spec(
    *urls: str, site: str | None = None, outputs: tuple[Output, ...] = (), **params: str
) -> TaskSpec:
    """A task reading ``urls`` (at /in/0, /in/1...), with backend parameter ``site``."""
    if site is not None:
        params["site"] = site
    return replace(
        BASE,
        inputs=tuple(Input(path=f"/in/{i}", url=url) for i, url in enumerate(urls)),
        outputs=outputs,
        resources=Resources(backend_parameters=params) if params else None,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield database
    database.close()


@pytest.fixture
def tasks(db: Database) -> SqlTaskStore:
    return SqlTaskStore(db)


@pytest.fixture
def service(db: Database, tasks: SqlTaskStore) -> SiteService:
    return SiteService(SqlSiteStore(db, tasks), tasks, SqlKeyStore(db))


@pytest.fixture
def enrolled(service: SiteService) -> SiteService:
    """site-a (no heartbeat yet) and site-b are enrolled."""
    service.enrol("site-a")
    service.enrol("site-b")
    return service


def queue(service: SiteService, task_spec: TaskSpec, owner: str = "alice") -> Task:
    """Submit as the hub does: route, then store."""
    routed = service.route(task_spec, LOCAL) or task_spec
    task = Task(id=new_task_id(), owner=owner, spec=routed, creation_time=now())
    return service.tasks.create(task)


def batch(task_id: str, first_seq: int, *states: State) -> dict[str, Any]:
    """A batch of state events as the agent sends it."""
    return {
        "task_id": task_id,
        "first_seq": first_seq,
        "events": [
            {"kind": "state", "time": now().isoformat(), "data": {"state": str(s)}} for s in states
        ],
    }


# -- site_of -----------------------------------------------------------------------------------


def test_the_hubs_own_tasks_name_no_site() -> None:
    assert site_of(spec("https://example.org/x")) is None
    assert site_of(BASE) is None


def test_dataset_inputs_name_the_site() -> None:
    assert site_of(spec("dataset://site-a/adni/x.csv", "dataset://site-a/ukb/")) == "site-a"


def test_an_inline_input_is_no_dataset_read() -> None:
    inline = replace(
        BASE, inputs=(Input(path="/in", url="dataset://site-b/adni/x", content="text"),)
    )
    assert site_of(inline) is None


def test_the_site_parameter_names_the_site() -> None:
    assert site_of(spec(site="site-b")) == "site-b"


def test_a_site_parameter_agreeing_with_the_datasets_is_fine() -> None:
    assert site_of(spec("dataset://site-a/adni/x", site="site-a")) == "site-a"


def test_a_site_parameter_disagreeing_with_a_dataset_names_both_fields() -> None:
    with pytest.raises(InvalidTask) as caught:
        site_of(spec("https://example.org/x", "dataset://site-a/adni/x", site="site-b"))
    assert caught.value.field == PARAM
    assert f"{PARAM} → site-b" in caught.value.message
    assert "inputs[1].url → site-a" in caught.value.message


def test_datasets_at_two_sites_name_both_inputs() -> None:
    with pytest.raises(InvalidTask) as caught:
        site_of(spec("dataset://site-a/adni/x", "dataset://site-b/ukb/y"))
    assert caught.value.field == "inputs[0].url"
    assert "inputs[1].url → site-b" in caught.value.message


def test_a_dataset_output_is_refused() -> None:
    out = (Output(path="/out/r", url="dataset://site-a/adni/r"),)
    with pytest.raises(InvalidTask) as caught:
        site_of(spec("dataset://site-a/adni/x", outputs=out))
    assert caught.value.field == "outputs[0].url"


def test_a_malformed_dataset_url_names_its_input() -> None:
    with pytest.raises(InvalidTask) as caught:
        site_of(spec("https://example.org/x", "dataset://site-a"))
    assert caught.value.field == "inputs[1].url"


# -- route -------------------------------------------------------------------------------------


def test_a_task_for_no_site_is_not_routed(enrolled: SiteService) -> None:
    assert enrolled.route(spec("https://example.org/x"), LOCAL) is None


def test_an_unknown_site_is_refused_naming_the_site_parameter(enrolled: SiteService) -> None:
    with pytest.raises(InvalidTask) as caught:
        enrolled.route(spec(site="site-z"), LOCAL)
    assert caught.value.field == PARAM
    assert "site-z" in caught.value.message


def test_the_routed_spec_carries_the_site_and_keeps_other_parameters(
    enrolled: SiteService,
) -> None:
    asked = spec("dataset://site-a/adni/x.csv", runtime="docker")
    routed = enrolled.route(asked, LOCAL)
    assert routed is not None
    assert routed.resources is not None
    assert routed.resources.backend_parameters == {"runtime": "docker", "site": "site-a"}
    assert routed.inputs == asked.inputs and routed.executors == asked.executors


def test_before_any_heartbeat_datasets_are_not_checked(enrolled: SiteService) -> None:
    routed = enrolled.route(spec("dataset://site-a/whatever/x"), LOCAL)
    assert routed is not None and routed.backend_parameter("site") == "site-a"


def test_an_unknown_dataset_is_refused_naming_the_input_and_the_datasets_there(
    enrolled: SiteService,
) -> None:
    enrolled.heartbeat(
        "site-a", {"datasets": [{"name": "ukb"}, {"name": "adni", "description": "scores"}]}
    )
    assert enrolled.route(spec("dataset://site-a/adni/x"), LOCAL) is not None
    with pytest.raises(InvalidTask) as caught:
        enrolled.route(spec("dataset://site-a/adni/x", "dataset://site-a/nope/y"), LOCAL)
    assert caught.value.field == "inputs[1].url"
    assert "site-a has no dataset 'nope'" in caught.value.message
    assert caught.value.message.endswith("it has: adni, ukb")


def test_a_site_that_reported_no_datasets_says_so(enrolled: SiteService) -> None:
    enrolled.heartbeat("site-b", {"datasets": []})
    with pytest.raises(InvalidTask, match="it has: none"):
        enrolled.route(spec("dataset://site-b/adni/x"), LOCAL)


# -- enrolment ---------------------------------------------------------------------------------


def test_an_enrolment_token_authenticates_its_site_and_is_kept_only_as_a_hash(
    service: SiteService,
) -> None:
    record, token = service.enrol("site-a", "partner A")
    assert record.name == "site-a" and token.startswith("tfs_")
    found = service.authenticate(token)
    assert found is not None and found.name == "site-a"
    assert service.authenticate(token + "x") is None
    assert service.sites.by_token(token) is None  # the store holds the hash, not the token


def test_a_bad_site_name_is_not_enrolled(service: SiteService) -> None:
    with pytest.raises(InvalidTask, match="lower case only"):
        service.enrol("Site-A")
    assert service.sites.all() == []


def test_a_site_is_online_once_heard_from_within_offline_after(enrolled: SiteService) -> None:
    assert not enrolled.online(enrolled.sites.get("site-a"))
    enrolled.heartbeat("site-a", {})
    assert enrolled.online(enrolled.sites.get("site-a"))
    enrolled.offline_after = timedelta(0)
    time.sleep(0.01)
    assert not enrolled.online(enrolled.sites.get("site-a"))


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_leaves_the_hubs_own_tasks_to_its_site(enrolled: SiteService) -> None:
    task = queue(enrolled, spec("https://example.org/x"))
    assert enrolled.cancel(task) is None
    assert enrolled.tasks.get(task.id).state is State.QUEUED


def test_a_cancel_before_hand_out_ends_the_task_at_once(enrolled: SiteService) -> None:
    task = queue(enrolled, spec(site="site-a"))
    canceled = enrolled.cancel(task)
    assert canceled is not None and canceled.state is State.CANCELED
    handout = enrolled.poll("site-a", confirm=[], wait_s=0)
    assert (handout.tasks, handout.cancel) == ([], [])


def test_a_cancel_after_hand_out_is_a_request_that_poll_returns(enrolled: SiteService) -> None:
    task = queue(enrolled, spec(site="site-a"))
    assert [t.id for t in enrolled.poll("site-a", confirm=[], wait_s=0).tasks] == [task.id]
    answer = enrolled.cancel(task)
    assert answer is not None and answer.state is State.QUEUED  # the agent ends it
    handout = enrolled.poll("site-a", confirm=[task.id], wait_s=0)
    assert (handout.tasks, handout.cancel) == ([], [task.id])
    assert enrolled.poll("site-b", confirm=[], wait_s=0).cancel == []
    # The agent's CANCELED arrives: nothing left to ask.
    enrolled.receive("site-a", [batch(task.id, 2, State.CANCELED)])
    assert enrolled.poll("site-a", confirm=[], wait_s=0).cancel == []


def test_a_cancel_of_an_ended_task_changes_nothing(enrolled: SiteService) -> None:
    task = queue(enrolled, spec(site="site-a"))
    enrolled.poll("site-a", confirm=[], wait_s=0)
    ended = enrolled.receive("site-a", [batch(task.id, 2, State.SYSTEM_ERROR)])
    answer = enrolled.cancel(enrolled.tasks.get(task.id))
    assert answer is not None and answer.state is State.SYSTEM_ERROR
    assert answer.version == ended[task.id]
    assert enrolled.poll("site-a", confirm=[], wait_s=0).cancel == []


def test_a_cancel_racing_the_hand_out_becomes_a_request_to_the_agent(
    enrolled: SiteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's poll lands just before the cancel withholds the task: the agent now holds
    it, so only a request can stop it. (The hand-out's docstring: "a cancel at the hub either
    ends it first or becomes a request to the agent".)"""
    task = queue(enrolled, spec(site="site-a"))
    withhold = enrolled.sites.withhold
    handed: list[str] = []

    def polled_then_withhold(task_id: str, site: str) -> bool:
        handed.extend(t.id for t in enrolled.poll("site-a", confirm=[], wait_s=0).tasks)
        return withhold(task_id, site)

    monkeypatch.setattr(enrolled.sites, "withhold", polled_then_withhold)
    enrolled.cancel(task)

    assert handed == [task.id]  # the agent has it and will run it
    hub_state = enrolled.tasks.get(task.id).state
    cancels = enrolled.poll("site-a", confirm=[task.id], wait_s=0).cancel
    assert cancels == [task.id], (
        f"the hub shows the task {hub_state} while its agent holds it, and never asks the "
        "agent to cancel it"
    )


# -- poll --------------------------------------------------------------------------------------


def test_poll_hands_out_each_task_once_and_again_only_if_unconfirmed(
    enrolled: SiteService,
) -> None:
    kept, lost = queue(enrolled, spec(site="site-a")), queue(enrolled, spec(site="site-a"))
    first = enrolled.poll("site-a", confirm=[], wait_s=0)
    assert sorted(t.id for t in first.tasks) == sorted([kept.id, lost.id])
    enrolled.redeliver_after = timedelta(0)
    time.sleep(0.01)
    again = enrolled.poll("site-a", confirm=[kept.id], wait_s=0)
    assert [t.id for t in again.tasks] == [lost.id]


def test_poll_with_nothing_to_do_waits_wait_s(enrolled: SiteService) -> None:
    queue(enrolled, spec(site="site-b"))
    enrolled.poll("site-b", confirm=[], wait_s=0)
    started = time.monotonic()
    handout = enrolled.poll("site-a", confirm=[], wait_s=0.5)
    assert time.monotonic() - started >= 0.45
    assert (handout.tasks, handout.cancel) == ([], [])


def test_poll_returns_as_soon_as_a_task_for_the_site_is_queued(enrolled: SiteService) -> None:
    queued: list[Task] = []

    def submit_later() -> None:
        time.sleep(0.3)
        queued.append(queue(enrolled, spec(site="site-b")))  # another site's: keep waiting
        time.sleep(0.3)
        queued.append(queue(enrolled, spec("dataset://site-a/adni/x")))

    submitter = threading.Thread(target=submit_later)
    started = time.monotonic()
    submitter.start()
    handout = enrolled.poll("site-a", confirm=[], wait_s=30)
    waited = time.monotonic() - started
    submitter.join()
    assert [t.id for t in handout.tasks] == [queued[1].id]
    assert 0.5 <= waited < 5, waited


# -- receive -----------------------------------------------------------------------------------


def test_receive_appends_what_the_hub_lacks_and_answers_each_version(
    enrolled: SiteService,
) -> None:
    one, two = queue(enrolled, spec(site="site-a")), queue(enrolled, spec(site="site-a"))
    enrolled.poll("site-a", confirm=[], wait_s=0)
    sent = [batch(one.id, 2, State.INITIALIZING, State.RUNNING), batch(two.id, 2, State.CANCELED)]
    assert enrolled.receive("site-a", sent) == {one.id: 3, two.id: 2}
    assert enrolled.receive("site-a", sent) == {one.id: 3, two.id: 2}  # sent twice
    assert [e.seq for e in enrolled.tasks.events(one.id)] == [1, 2, 3]
    assert enrolled.tasks.get(one.id).state is State.RUNNING
    assert enrolled.tasks.get(two.id).state is State.CANCELED


def test_receive_answers_the_hubs_version_for_a_gap_and_keeps_it(enrolled: SiteService) -> None:
    task = queue(enrolled, spec(site="site-a"))
    enrolled.poll("site-a", confirm=[], wait_s=0)
    assert enrolled.receive("site-a", [batch(task.id, 3, State.RUNNING)]) == {task.id: 1}
    assert [e.seq for e in enrolled.tasks.events(task.id)] == [1]


def test_receive_answers_the_hubs_version_for_an_illegal_event(enrolled: SiteService) -> None:
    task = queue(enrolled, spec(site="site-a"))
    assert enrolled.receive("site-a", [batch(task.id, 2, State.COMPLETE)]) == {task.id: 1}
    assert enrolled.tasks.get(task.id).state is State.QUEUED


def test_receive_ignores_tasks_of_other_sites_and_unknown_tasks(enrolled: SiteService) -> None:
    theirs = queue(enrolled, spec(site="site-b"))
    own = queue(enrolled, spec("https://example.org/x"))
    mine = queue(enrolled, spec(site="site-a"))
    sent = [
        batch(theirs.id, 2, State.CANCELED),
        batch(own.id, 2, State.CANCELED),
        batch("no-such-task", 2, State.CANCELED),
        batch(mine.id, 2, State.INITIALIZING),
    ]
    assert enrolled.receive("site-a", sent) == {mine.id: 2}
    assert enrolled.tasks.get(theirs.id).state is State.QUEUED
    assert enrolled.tasks.get(own.id).state is State.QUEUED


def test_receive_of_an_empty_batch_answers_the_version(enrolled: SiteService) -> None:
    task = queue(enrolled, spec(site="site-a"))
    assert enrolled.receive("site-a", [batch(task.id, 2)]) == {task.id: 1}


def test_events_received_keep_their_kind_data_and_time(enrolled: SiteService) -> None:
    task = queue(enrolled, spec(site="site-a"))
    at = now() - timedelta(minutes=3)
    sent = {
        "task_id": task.id,
        "first_seq": 2,
        "events": [
            {"kind": "state", "time": at.isoformat(), "data": {"state": "INITIALIZING"}},
            {"kind": "metadata", "time": at.isoformat(), "data": {"work_dir": "/site/w"}},
        ],
    }
    enrolled.receive("site-a", [sent])
    events = enrolled.tasks.events(task.id)
    assert [(e.kind, e.data, e.time) for e in events[1:]] == [
        ("state", {"state": "INITIALIZING"}, at),
        ("metadata", {"work_dir": "/site/w"}, at),
    ]
    assert enrolled.tasks.get(task.id).logs[0].metadata == {"work_dir": "/site/w"}


def test_the_hub_writes_no_events_of_its_own_to_a_handed_out_task(
    enrolled: SiteService,
) -> None:
    task = queue(enrolled, spec(site="site-a"))
    enrolled.poll("site-a", confirm=[task.id], wait_s=0)
    enrolled.cancel(enrolled.tasks.get(task.id))
    assert [e.seq for e in enrolled.tasks.events(task.id)] == [1]
    assert enrolled.receive("site-a", [batch(task.id, 2, State.CANCELED)]) == {task.id: 2}
    assert enrolled.tasks.events(task.id)[1].data == {"state": "CANCELED"}


def test_a_task_waiting_too_long_for_its_offline_site_ends_with_the_reason(
    enrolled: SiteService,
) -> None:
    waiting = queue(enrolled, spec(site="site-a", time_limit_queued_s="0.05"))
    handed = queue(enrolled, spec(site="site-b", time_limit_queued_s="0.05"))
    patient = queue(enrolled, spec(site="site-a"))
    assert [t.id for t in enrolled.poll("site-b", confirm=[], wait_s=0).tasks] == [handed.id]
    time.sleep(0.1)
    assert enrolled.end_overdue(TimeLimits()) == 1
    ended = enrolled.tasks.get(waiting.id)
    assert ended.state is State.SYSTEM_ERROR
    reason = " ".join(ended.notes)  # it never had an attempt: the reason is a task note
    assert "QUEUED for more than" in reason and "site site-a is offline" in reason, ended
    # One its agent holds is the agent's to end; one with no limit waits on.
    assert enrolled.tasks.get(handed.id).state is State.QUEUED
    assert enrolled.tasks.get(patient.id).state is State.QUEUED
    assert enrolled.poll("site-a", confirm=[], wait_s=0).tasks[0].id == patient.id
