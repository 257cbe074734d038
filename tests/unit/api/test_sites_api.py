"""/api/v1/sites (enrolment by admins, the list users see) and the agent protocol
(/api/v1/agent/heartbeat|poll|events) over HTTP, on an embedded hub with token auth and the
fake runtime."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.fakes import FakeRuntime

from toolferry.config import Settings
from toolferry.domain.events import now
from toolferry.hub import Hub, serve_embedded

TES = "/ga4gh/tes/v1"
SITES = "/api/v1/sites"
AGENT = "/api/v1/agent"
DATASET_TASK: dict[str, Any] = {
    "name": "count",
    "inputs": [{"path": "/data/scores.csv", "url": "dataset://site-a/adni/scores.csv"}],
    "executors": [{"image": "img", "command": ["wc", "-l", "/data/scores.csv"]}],
}
HEARTBEAT: dict[str, Any] = {
    "capacity": {"local": {"cpu_cores": 2, "ram_gb": 4}},
    "classification": {"name": "local"},
    # An agent should send metadata only; the hub lists nothing else even when it does not.
    "datasets": [{"name": "adni", "description": "scores", "path": "/secret/adni"}],
    "policy": {"require_approval": False},
    "version": "test",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Federation:
    """An embedded hub (auth on) with an admin, a user in group "lab", and site-a enrolled."""

    def __init__(self, hub: Hub, client: httpx.Client, runtime: FakeRuntime) -> None:
        self.hub = hub
        self.client = client
        self.runtime = runtime
        self.admin = hub.tokens.create("root", admin=True)[1]
        self.alice = hub.tokens.create("alice")[1]
        answer = client.post(SITES, json={"name": "site-a"}, headers=bearer(self.admin))
        assert answer.status_code == 200, answer.text
        self.site = str(answer.json()["token"])

    def agent(self, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        return self.client.post(f"{AGENT}/{path}", json=body, headers=bearer(token or self.site))

    def submit(self, body: dict[str, Any]) -> str:
        answer = self.client.post(f"{TES}/tasks", json=body, headers=bearer(self.alice))
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    def task(self, task_id: str) -> dict[str, Any]:
        answer = self.client.get(f"{TES}/tasks/{task_id}?view=FULL", headers=bearer(self.alice))
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    runtime = FakeRuntime()
    settings = Settings(
        data_dir=tmp_path, capacity_cpus=2, auth="token", groups={"lab": ["alice", "bob"]}
    )
    with (
        serve_embedded(settings, runtimes={"fake": runtime}) as (hub, url),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Federation(hub, client, runtime)


# -- enrolment and the list --------------------------------------------------------------------


def test_only_an_admin_enrols_a_site(fed: Federation) -> None:
    answer = fed.client.post(SITES, json={"name": "site-b"}, headers=bearer(fed.alice))
    assert answer.status_code == 403, answer.text
    assert "administrators" in answer.json()["detail"]
    assert fed.client.post(SITES, json={"name": "site-b"}).status_code == 401
    assert [s["name"] for s in fed.client.get(SITES, headers=bearer(fed.alice)).json()] == [
        "site-a"
    ]


def test_enrolment_returns_the_token_once(fed: Federation) -> None:
    answer = fed.client.post(
        SITES, json={"name": "site-b", "description": "partner B"}, headers=bearer(fed.admin)
    )
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert answer.json()["name"] == "site-b" and token.startswith("tfs_")
    listed = fed.client.get(SITES, headers=bearer(fed.admin))
    one = fed.client.get(f"{SITES}/site-b", headers=bearer(fed.admin))
    assert token not in listed.text and token not in one.text
    assert one.json()["description"] == "partner B"
    assert fed.agent("heartbeat", {}, token=token).json()["site"] == "site-b"


@pytest.mark.parametrize(
    ("name", "status", "needle"),
    [("site-a", 409, "exists already"), ("Site_B", 400, "is not a name")],
)
def test_a_taken_or_bad_name_is_refused(
    fed: Federation, name: str, status: int, needle: str
) -> None:
    answer = fed.client.post(SITES, json={"name": name}, headers=bearer(fed.admin))
    assert answer.status_code == status, answer.text
    assert needle in answer.json()["detail"]


def test_an_unknown_site_is_a_404(fed: Federation) -> None:
    assert fed.client.get(f"{SITES}/site-z", headers=bearer(fed.alice)).status_code == 404


# -- the agent's token ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["heartbeat", "poll", "events"])
def test_agent_calls_need_the_sites_token(fed: Federation, path: str) -> None:
    body: dict[str, Any] = {"tasks": []} if path == "events" else {}
    if path == "poll":
        body["wait_s"] = 0
    bare = fed.client.post(f"{AGENT}/{path}", json=body)
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"].startswith("Bearer")
    assert fed.agent(path, body, token=fed.site + "x").status_code == 401
    assert fed.agent(path, body, token=fed.alice).status_code == 401  # a user's token
    assert fed.agent(path, body).status_code == 200


def test_a_sites_token_is_no_users_token(fed: Federation) -> None:
    assert fed.client.get(f"{TES}/tasks", headers=bearer(fed.site)).status_code == 401


# -- heartbeat -----------------------------------------------------------------------------------


def test_a_heartbeat_brings_the_site_online_with_dataset_metadata_only(fed: Federation) -> None:
    (before,) = fed.client.get(SITES, headers=bearer(fed.alice)).json()
    assert (before["online"], before["seen_at"], before["datasets"]) == (False, None, [])

    answer = fed.agent("heartbeat", HEARTBEAT)
    assert answer.status_code == 200
    assert answer.json() == {"site": "site-a", "offline_after_s": 30.0}

    (site,) = fed.client.get(SITES, headers=bearer(fed.alice)).json()
    assert site["online"] is True and site["seen_at"] is not None
    assert site["datasets"] == [{"name": "adni", "description": "scores"}]
    assert "/secret/adni" not in fed.client.get(f"{SITES}/site-a", headers=bearer(fed.alice)).text
    assert site["capacity"] == HEARTBEAT["capacity"]
    assert site["classification"] == {"name": "local"}


# -- routing at submission -------------------------------------------------------------------------


def test_a_dataset_task_is_routed_to_its_site_and_not_run_by_the_hubs_own(
    fed: Federation,
) -> None:
    routed = fed.submit(DATASET_TASK)
    plain = fed.submit({"executors": [{"image": "img", "command": ["true"]}]})
    deadline = time.monotonic() + 20
    while fed.task(plain)["state"] != "COMPLETE":  # the hub's own site is at work
        assert time.monotonic() < deadline, fed.task(plain)
        time.sleep(0.02)
    task = fed.task(routed)
    assert task["state"] == "QUEUED"
    assert task["resources"]["backend_parameters"]["site"] == "site-a"
    assert [spec.task_id for spec in fed.runtime.started] == [plain]


def test_an_unknown_dataset_is_refused_once_the_site_reported_its_datasets(
    fed: Federation,
) -> None:
    body = {**DATASET_TASK, "inputs": [{"path": "/d", "url": "dataset://site-a/nope/x"}]}
    before = fed.submit(body)  # not heard from yet: its agent decides
    assert fed.task(before)["resources"]["backend_parameters"]["site"] == "site-a"
    fed.agent("heartbeat", HEARTBEAT)
    answer = fed.client.post(f"{TES}/tasks", json=body, headers=bearer(fed.alice))
    assert answer.status_code == 400
    assert "inputs[0].url" in answer.json()["detail"]
    assert "site site-a has no dataset 'nope'; it has: adni" in answer.json()["detail"]


def test_a_task_for_an_unknown_site_is_refused(fed: Federation) -> None:
    body = {**DATASET_TASK, "inputs": [{"path": "/d", "url": "dataset://site-z/adni/x"}]}
    answer = fed.client.post(f"{TES}/tasks", json=body, headers=bearer(fed.alice))
    assert answer.status_code == 400
    assert "no site 'site-z' is enrolled" in answer.json()["detail"]


# -- poll ----------------------------------------------------------------------------------------


def test_poll_hands_out_the_task_with_owner_groups_spec_and_images(fed: Federation) -> None:
    task_id = fed.submit(DATASET_TASK)
    answer = fed.agent("poll", {"confirm": [], "wait_s": 5})
    assert answer.status_code == 200
    (doc,) = answer.json()["tasks"]
    assert doc["id"] == task_id
    assert (doc["owner"], doc["groups"], doc["images"]) == ("alice", ["lab"], {})
    assert doc["spec"]["inputs"][0]["url"] == "dataset://site-a/adni/scores.csv"
    assert doc["spec"]["resources"]["backend_parameters"] == {"site": "site-a"}
    assert doc["spec"]["executors"][0]["command"] == ["wc", "-l", "/data/scores.csv"]
    assert doc["creation_time"] == fed.task(task_id)["creation_time"].replace("Z", "+00:00")
    assert answer.json()["cancel"] == []
    # Confirmed: never handed out again.
    again = fed.agent("poll", {"confirm": [task_id], "wait_s": 0})
    assert again.json()["tasks"] == []


def test_poll_refuses_a_wait_beyond_a_minute(fed: Federation) -> None:
    assert fed.agent("poll", {"wait_s": 61}).status_code in (400, 422)


def test_a_cancel_after_hand_out_reaches_the_agent_through_poll(fed: Federation) -> None:
    task_id = fed.submit(DATASET_TASK)
    fed.agent("poll", {"wait_s": 0})
    canceled = fed.client.post(f"{TES}/tasks/{task_id}:cancel", headers=bearer(fed.alice))
    assert canceled.status_code == 200
    assert fed.task(task_id)["state"] == "QUEUED"
    assert fed.agent("poll", {"confirm": [task_id], "wait_s": 0}).json()["cancel"] == [task_id]


# -- events --------------------------------------------------------------------------------------


def test_events_posted_twice_are_appended_once(fed: Federation) -> None:
    task_id = fed.submit(DATASET_TASK)
    fed.agent("poll", {"wait_s": 0})
    at = now().isoformat()
    body = {
        "tasks": [
            {
                "task_id": task_id,
                "first_seq": 2,
                "events": [
                    {"kind": "state", "time": at, "data": {"state": "INITIALIZING"}},
                    {"kind": "state", "time": at, "data": {"state": "RUNNING"}},
                    {
                        "kind": "executor_finished",
                        "time": at,
                        "data": {"index": 0, "exit_code": 0, "start_time": at, "stdout": "4\n"},
                    },
                    {"kind": "state", "time": at, "data": {"state": "COMPLETE"}},
                ],
            }
        ]
    }
    first = fed.agent("events", body)
    second = fed.agent("events", body)
    assert first.json() == second.json() == {"versions": {task_id: 5}}
    assert [e.seq for e in fed.hub.store.events(task_id)] == [1, 2, 3, 4, 5]
    task = fed.task(task_id)
    assert task["state"] == "COMPLETE"
    assert len(task["logs"]) == 1 and task["logs"][0]["logs"][0]["stdout"] == "4\n"


def test_events_of_another_sites_task_are_ignored(fed: Federation) -> None:
    other = fed.client.post(SITES, json={"name": "site-b"}, headers=bearer(fed.admin))
    task_id = fed.submit(DATASET_TASK)
    event = {"kind": "state", "time": now().isoformat(), "data": {"state": "CANCELED"}}
    body = {"tasks": [{"task_id": task_id, "first_seq": 2, "events": [event]}]}
    assert fed.agent("events", body, token=other.json()["token"]).json() == {"versions": {}}
    assert fed.task(task_id)["state"] == "QUEUED"


# -- found by review: each was a hole ---------------------------------------------------------


def test_a_site_task_may_not_name_another_users_hub_files(fed: Federation) -> None:
    space = fed.hub.files.create_space("bob")
    fed.hub.files.write(space, "secret.txt", iter([b"bob's"]))
    body = {
        "inputs": [{"path": "/in/s", "url": f"hub://{space}/secret.txt"}],
        "executors": [{"image": "i", "command": ["true"]}],
        "resources": {"backend_parameters": {"site": "site-a"}},
    }
    answer = fed.client.post(f"{TES}/tasks", json=body, headers=bearer(fed.alice))
    assert answer.status_code == 400, answer.text
    assert "inputs[0].url" in answer.json()["detail"]


def test_backend_parameters_that_differ_only_in_case_are_refused(fed: Federation) -> None:
    body = {
        "executors": [{"image": "i", "command": ["true"]}],
        "resources": {
            "backend_parameters": {"site": "site-a", "network": "none", "NETWORK": "host"}
        },
    }
    answer = fed.client.post(f"{TES}/tasks", json=body, headers=bearer(fed.alice))
    assert answer.status_code == 400
    assert "given twice" in answer.json()["detail"]


def test_malformed_agent_reports_are_400s_not_500s(fed: Federation) -> None:
    assert fed.agent("heartbeat", {"policy": {"stewards": 5}}).status_code == 400
    assert fed.agent("heartbeat", {"datasets": [{"name": {"x": 1}}]}).status_code == 400
    bad_batches = [
        {"tasks": [{"task_id": "x", "first_seq": 0, "events": []}]},
        {
            "tasks": [
                {
                    "task_id": "x",
                    "first_seq": 2,
                    "events": [{"kind": "nope", "time": "2026-01-01T00:00:00Z"}],
                }
            ]
        },
        {
            "tasks": [
                {
                    "task_id": "x",
                    "first_seq": 2,
                    "events": [{"kind": "state", "time": "2026-01-01T00:00:00"}],
                }
            ]
        },
        {"tasks": [{"first_seq": 2, "events": []}]},
    ]
    for body in bad_batches:
        assert fed.agent("events", body).status_code == 400, body
    assert fed.agent("audit", {"records": [{"seq": "x"}]}).status_code == 400
    # The steward listings still work for everyone.
    assert fed.client.get("/api/v1/approvals", headers=bearer(fed.alice)).status_code == 200


def test_a_state_event_without_a_state_is_refused_without_harm(fed: Federation) -> None:
    task_id = fed.submit(
        {
            "executors": [{"image": "i", "command": ["true"]}],
            "resources": {"backend_parameters": {"site": "site-a"}},
        }
    )
    bad = {"kind": "state", "time": "2026-01-01T00:00:00Z", "data": {}}
    answer = fed.agent("events", {"tasks": [{"task_id": task_id, "first_seq": 2, "events": [bad]}]})
    assert answer.status_code == 200
    assert answer.json()["versions"] == {task_id: 1}
    assert fed.task(task_id)["state"] == "QUEUED"
