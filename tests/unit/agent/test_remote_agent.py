"""A data site's agent (toolferry.agent.remote) against a real embedded hub (fake runtime):
taking tasks once, refusing by policy, forwarding events exactly once across a lost answer,
the outbox on disk, and a refused token.

The agent builds its own core hub by runtime discovery (it takes no injected runtimes), so its
site uses the ``none`` runtime (bubblewrap). Its core is not started except where the loops are
under test: tasks are taken and their events are appended to its store by hand, so nothing
runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.fakes import FakeRuntime

from toolferry.agent.remote import Agent, HubLink
from toolferry.agent.site_config import site_config_from_dict
from toolferry.config import Settings
from toolferry.domain.errors import NotFound
from toolferry.domain.events import Event, now
from toolferry.domain.states import State
from toolferry.domain.task import Executor, Input, Resources, Task, TaskSpec
from toolferry.hub import Hub, serve_embedded
from toolferry.security.identity import Identity

EVENTS = "/api/v1/agent/events"
ALICE = Identity(user="alice")


class Wire(httpx.BaseTransport):
    """Real HTTP to the hub, with what happens while events are on their way: the next
    ``lose`` answers to /api/v1/agent/events are lost (the hub got the request, the agent
    hears a dropped connection), and ``meanwhile`` runs once the hub has taken a batch, before
    its answer is back (the site goes on working during the round trip)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = 0
        self.meanwhile: Callable[[], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path != EVENTS:
            return response
        if self.meanwhile is not None:
            self.meanwhile()
        if self.lose:
            self.lose -= 1
            response.read()
            response.close()
            raise httpx.ReadError("the connection dropped", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


@dataclass
class Federation:
    hub: Hub
    url: str
    root: Path
    token: str
    agents: list[Agent] = field(default_factory=list)

    def agent(
        self,
        *,
        policy: dict[str, Any] | None = None,
        users: list[str] | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        name: str = "agent",
    ) -> Agent:
        data = self.root / "data" / "adni"
        data.mkdir(parents=True, exist_ok=True)
        config = site_config_from_dict(
            {
                "name": "site-a",
                "data_dir": str(self.root / name),
                "datasets": [
                    {
                        "name": "adni",
                        "description": "scores",
                        "path": str(data),
                        "users": ["*"] if users is None else users,
                    }
                ],
                "policy": policy or {},
                "settings": {"runtime": "none", "capacity_cpus": 2, "backends": []},
            }
        )
        link = HubLink(self.url, token or self.token, transport=transport)
        agent = Agent(config, link, heartbeat_s=0.2, poll_wait_s=1)
        self.agents.append(agent)
        return agent

    def submit(self, resources: Resources | None = None, owner: Identity = ALICE) -> Task:
        spec = TaskSpec(
            executors=(Executor(image="img", command=("wc", "-l", "/data/scores.csv")),),
            inputs=(Input(path="/data/scores.csv", url="dataset://site-a/adni/scores.csv"),),
            resources=resources,
        )
        return self.hub.tasks.submit(spec, owner)


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    settings = Settings(data_dir=tmp_path / "hub", capacity_cpus=2, groups={"lab": ["alice"]})
    with serve_embedded(settings, runtimes={"fake": FakeRuntime()}) as (hub, url):
        _, token = hub.sites.enrol("site-a")
        federation = Federation(hub=hub, url=url, root=tmp_path, token=token)
        try:
            yield federation
        finally:
            for agent in federation.agents:
                agent.stop()


def handed_out(agent: Agent) -> list[dict[str, Any]]:
    """What the hub hands this agent now (as its poll loop would ask)."""
    docs: list[dict[str, Any]] = agent.link.call(
        "/api/v1/agent/poll", {"confirm": [], "wait_s": 0}
    )["tasks"]
    return docs


def take_all(agent: Agent) -> list[str]:
    docs = handed_out(agent)
    for doc in docs:
        agent.take(doc)
    return [str(d["id"]) for d in docs]


def run_at_site(agent: Agent, task_id: str, *states: State) -> None:
    for state in states:
        agent.core.store.append(Event.state(task_id, state))


def same_events(fed: Federation, agent: Agent, task_id: str) -> None:
    """The hub holds exactly the agent's events, each once, numbered alike."""
    hub = [(e.seq, e.kind, e.data, e.time) for e in fed.hub.store.events(task_id)]
    site = [(e.seq, e.kind, e.data, e.time) for e in agent.core.store.events(task_id)]
    assert [seq for seq, *_ in hub] == list(range(1, len(hub) + 1))
    assert hub == site


def until(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- taking tasks ------------------------------------------------------------------------------


def test_take_stores_the_task_as_the_site_runs_it(fed: Federation) -> None:
    agent = fed.agent()
    task = fed.submit()
    assert take_all(agent) == [task.id]

    local = agent.core.store.get(task.id)
    assert (local.owner, local.state, local.version) == ("alice", State.QUEUED, 1)
    assert local.creation_time == fed.hub.store.get(task.id).creation_time
    (read,) = local.spec.inputs
    assert (read.url, read.streamable) == ("dataset://site-a/adni/scores.csv", True)
    assert local.spec.backend_parameter("site") is None
    assert fed.hub.store.get(task.id).spec.backend_parameter("site") == "site-a"


def test_other_backend_parameters_survive_the_site_parameter(fed: Federation) -> None:
    agent = fed.agent()
    task = fed.submit(Resources(backend_parameters={"site": "site-a", "max_attempts": "2"}))
    take_all(agent)
    resources = agent.core.store.get(task.id).spec.resources
    # network=none is set for every task that reads a dataset, whatever it asked.
    assert resources is not None
    assert resources.backend_parameters == {"max_attempts": "2", "network": "none"}


def test_a_second_hand_out_of_a_task_is_a_no_op(fed: Federation) -> None:
    agent = fed.agent()
    task = fed.submit()
    (doc,) = handed_out(agent)
    agent.take(doc)
    run_at_site(agent, task.id, State.INITIALIZING)
    fed.hub.sites.redeliver_after = timedelta(0)  # unconfirmed: the hub hands it out again
    time.sleep(0.01)
    (again,) = handed_out(agent)
    assert again["id"] == task.id
    agent.take(again)
    assert [e.seq for e in agent.core.store.events(task.id)] == [1, 2]
    assert agent.core.store.get(task.id).state is State.INITIALIZING
    assert agent.outbox.pending() == {task.id: 1}


def test_a_task_the_policy_forbids_is_refused_at_the_hub_naming_the_fields(
    fed: Federation,
) -> None:
    agent = fed.agent(policy={"max_cpu_cores": 1}, users=["bob"])
    task = fed.submit(Resources(cpu_cores=2))
    take_all(agent)

    ended = fed.hub.store.get(task.id)
    assert ended.state is State.SYSTEM_ERROR
    (reason,) = ended.notes
    assert reason.startswith("refused by site site-a: ")
    assert "resources.cpu_cores" in reason and "inputs[0].url" in reason
    with pytest.raises(NotFound):
        agent.core.store.get(task.id)
    assert task.id not in agent.outbox.pending()
    assert handed_out(agent) == []


def test_a_task_the_site_cannot_run_is_refused_naming_the_field(fed: Federation) -> None:
    agent = fed.agent()
    task = fed.submit(Resources(backend_parameters={"site": "site-a", "runtime": "nope"}))
    take_all(agent)
    ended = fed.hub.store.get(task.id)
    assert ended.state is State.SYSTEM_ERROR
    assert "resources.backend_parameters.runtime" in ended.notes[0]
    with pytest.raises(NotFound):
        agent.core.store.get(task.id)


def test_the_hub_is_told_of_the_site_but_never_of_a_datasets_path(fed: Federation) -> None:
    agent = fed.agent()
    report = agent.report()
    assert report["datasets"] == [{"name": "adni", "description": "scores"}]
    assert str(fed.root / "data") not in str(report)
    agent.link.call("/api/v1/agent/heartbeat", report)
    site = fed.hub.sites.sites.get("site-a")
    assert site.info["datasets"] == [{"name": "adni", "description": "scores"}]
    assert fed.hub.sites.online(site)


# -- events back -------------------------------------------------------------------------------


def test_forward_sends_only_what_the_hub_lacks(fed: Federation) -> None:
    agent = fed.agent()
    task = fed.submit()
    take_all(agent)
    assert agent.forward() == 0  # the hub has the QUEUED it made itself

    run_at_site(agent, task.id, State.INITIALIZING, State.RUNNING)
    assert agent.forward() == 2
    assert fed.hub.store.get(task.id).state is State.RUNNING
    assert agent.forward() == 0
    agent.core.store.append(Event.executor_finished(task.id, 0, 0, started=now(), stdout="4\n"))
    assert agent.forward() == 1
    same_events(fed, agent, task.id)
    assert fed.hub.store.get(task.id).logs[0].logs[0].stdout == "4\n"


def test_after_a_lost_answer_forward_resends_without_duplicating(fed: Federation) -> None:
    lossy = Wire()
    agent = fed.agent(transport=lossy)
    task = fed.submit()
    take_all(agent)
    run_at_site(agent, task.id, State.INITIALIZING, State.RUNNING)
    assert agent.forward() == 2

    run_at_site(agent, task.id, State.COMPLETE)
    lossy.lose = 1
    with pytest.raises(httpx.ReadError):
        agent.forward()
    assert fed.hub.store.get(task.id).state is State.COMPLETE  # the hub got it
    assert agent.outbox.pending() == {task.id: 3}  # the agent does not know

    assert agent.forward() == 1  # sent again; the hub keeps one copy
    same_events(fed, agent, task.id)
    assert fed.hub.store.get(task.id).version == 4


def test_an_event_that_lands_while_forward_waits_for_the_hub_is_sent_next_time(
    fed: Federation,
) -> None:
    """The task ends at the site (CANCELED after CANCELING, COMPLETE after the last upload)
    while the previous events are on their way to the hub: its last event must still go."""
    wire = Wire()
    agent = fed.agent(transport=wire)
    task = fed.submit()
    take_all(agent)
    run_at_site(agent, task.id, State.INITIALIZING)
    wire.meanwhile = lambda: run_at_site(agent, task.id, State.RUNNING, State.COMPLETE)
    assert agent.forward() == 1
    wire.meanwhile = None

    agent.forward()
    hub_state = fed.hub.store.get(task.id).state
    assert hub_state is State.COMPLETE, (
        f"the hub is left {hub_state} for good: the outbox ({agent.outbox.pending()}) forgot "
        "the task before sending its last events"
    )
    same_events(fed, agent, task.id)


def test_the_outbox_survives_a_new_outbox_on_the_same_file(fed: Federation) -> None:
    agent = fed.agent()
    task = fed.submit()
    take_all(agent)
    reopened = type(agent.outbox)(agent.outbox.path)
    assert reopened.pending() == {task.id: 1}

    run_at_site(agent, task.id, State.INITIALIZING, State.RUNNING)
    agent.forward()
    assert type(agent.outbox)(agent.outbox.path).pending() == {task.id: 3}


def test_the_outbox_forgets_a_task_that_ended_once_the_hub_has_it_all(fed: Federation) -> None:
    agent = fed.agent()
    ended, running = fed.submit(), fed.submit()
    take_all(agent)
    run_at_site(agent, ended.id, State.INITIALIZING, State.RUNNING, State.COMPLETE)
    run_at_site(agent, running.id, State.INITIALIZING, State.RUNNING)
    assert agent.forward() == 5
    assert agent.outbox.pending() == {running.id: 3}
    assert type(agent.outbox)(agent.outbox.path).pending() == {running.id: 3}
    same_events(fed, agent, ended.id)


def test_an_agent_restarted_on_its_data_dir_resends_nothing_twice(fed: Federation) -> None:
    first = fed.agent()
    task = fed.submit()
    take_all(first)
    run_at_site(first, task.id, State.INITIALIZING)
    first.forward()
    run_at_site(first, task.id, State.RUNNING, State.COMPLETE)
    first.stop()
    fed.agents.remove(first)

    again = fed.agent()  # same data_dir: same store and outbox
    assert again.outbox.pending() == {task.id: 2}
    assert again.forward() == 2
    same_events(fed, again, task.id)
    assert again.outbox.pending() == {}


# -- a refused token ---------------------------------------------------------------------------


def test_a_refused_token_stops_the_agents_loops(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    agent = fed.agent(token="tfs_not-the-token")
    # Something to forward, so that the forward loop calls the hub too.
    spec = TaskSpec(executors=(Executor(image="img", command=("true",)),))
    waiting = agent.core.store.create(Task(id="t-1", owner="alice", spec=spec, creation_time=now()))
    agent.core.store.append(Event.state(waiting.id, State.CANCELED, "canceled by the user"))
    agent.outbox.track(waiting.id, 1)

    with caplog.at_level(logging.CRITICAL, logger="toolferry.agent.remote"):
        agent.start()
        loops = [t for t in threading.enumerate() if t.name.startswith("agent-")]
        assert sorted(t.name for t in loops) == ["agent-forward", "agent-heartbeat", "agent-poll"]
        until(lambda: not any(t.is_alive() for t in loops))
    stopped = [
        r.getMessage() for r in caplog.records if "refused this agent's token" in r.getMessage()
    ]
    assert sorted(m.rsplit(" ", 1)[-1] for m in stopped) == ["forward", "heartbeat", "poll"]
    assert fed.hub.sites.sites.get("site-a").seen_at is None


def test_a_wrong_token_is_a_permission_error(fed: Federation) -> None:
    link = HubLink(fed.url, "tfs_wrong")
    try:
        with pytest.raises(PermissionError, match="enrol the site again"):
            link.call("/api/v1/agent/heartbeat", {})
    finally:
        link.close()
