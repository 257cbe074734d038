"""A hub and two data-site agents as separate processes with separate data directories, on
loopback: tasks go to the site of their dataset and run there (the data is mounted, never
copied), sites refuse what their policy does not allow, cancels reach the site, and a hub
killed mid-task and restarted loses and repeats nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.federation.linkcut import Link

pytestmark = pytest.mark.integration

TOOLFERRY = str(Path(sys.executable).with_name("toolferry"))
TES = "/ga4gh/tes/v1"
IMAGE = "toolferry-test/busybox:1"
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}
DIGEST = "sha256:" + "ab" * 32  # an image site B allows; busybox is not it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Federation:
    root: Path
    url: str
    port: int
    hub: subprocess.Popen[bytes]
    agents: dict[str, subprocess.Popen[bytes]]
    client: httpx.Client
    logs: list[Any]
    link: Link | None = None  # partner-a's agent reaches the hub through it

    def log(self, name: str) -> Any:
        handle = (self.root / name).open("ab")
        self.logs.append(handle)
        return handle

    def env(self) -> dict[str, str]:
        return {**os.environ, "TOOLFERRY_DATA_DIR": str(self.root / "hub")}

    def start_hub(self) -> None:
        log = self.log("hub.log")
        self.hub = subprocess.Popen(
            [TOOLFERRY, "server", "--port", str(self.port)],
            env={**self.env(), "TOOLFERRY_SITE_OFFLINE_S": "5"},
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.hub.poll() is None, (self.root / "hub.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.1)

    def submit(self, body: dict[str, Any]) -> str:
        answer = self.client.post(f"{TES}/tasks", json=body)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    def wait(
        self, task_id: str, states: set[str] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                task: dict[str, Any] = self.client.get(f"{TES}/tasks/{task_id}?view=FULL").json()
                if task["state"] in (states or TERMINAL):
                    return task
            except httpx.TransportError:
                pass  # the hub is restarting
            assert time.monotonic() < deadline, (
                f"task {task_id} did not get to {states or TERMINAL}"
            )
            time.sleep(0.1)


def site_toml(root: Path, name: str, dataset: str, policy: str) -> Path:
    data = root / f"data-{name}" / dataset
    data.mkdir(parents=True)
    (data / "scores.csv").write_text("id,score\n1,3\n2,5\n3,8\n")
    path = root / f"{name}.toml"
    path.write_text(
        f"""
name = "{name}"
data_dir = "{root / f"agent-{name}"}"
[[datasets]]
name = "{dataset}"
description = "scores of {name}"
path = "{data}"
users = ["*"]
[policy]
{policy}
[settings]
runtime = "docker"
"""
    )
    return path


@pytest.fixture(scope="module")
def federation(
    tmp_path_factory: pytest.TempPathFactory, busybox_image: str
) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("federation")
    port = free_port()
    fed = Federation(
        root=root,
        url=f"http://127.0.0.1:{port}",
        port=port,
        hub=None,  # type: ignore[arg-type]
        agents={},
        client=httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30),
        logs=[],
    )
    fed.start_hub()
    configs = {
        "partner-a": site_toml(root, "partner-a", "adni", "max_cpu_cores = 2"),
        "partner-b": site_toml(
            root, "partner-b", "ukb", f'allowed_images = ["{DIGEST}"]\nallowed_users = ["alice"]'
        ),
    }
    fed.link = Link(port)
    for name, config in configs.items():
        hub_url = f"http://127.0.0.1:{fed.link.port}" if name == "partner-a" else fed.url
        token = subprocess.run(
            [TOOLFERRY, "site", "add", name],
            env=fed.env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        log = fed.log(f"agent-{name}.log")
        fed.agents[name] = subprocess.Popen(
            [TOOLFERRY, "agent", "--hub", hub_url, "--token", token, "--config", str(config)],
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 60
    while not all(s["online"] for s in fed.client.get("/api/v1/sites").json()):
        assert time.monotonic() < deadline, "the agents did not come online"
        time.sleep(0.2)
    try:
        yield fed
    finally:
        for proc in [*fed.agents.values(), fed.hub]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*fed.agents.values(), fed.hub]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        fed.client.close()
        fed.link.close()
        for handle in fed.logs:
            handle.close()


def count_lines(site: str, dataset: str) -> dict[str, Any]:
    return {
        "inputs": [{"path": "/data/scores.csv", "url": f"dataset://{site}/{dataset}/scores.csv"}],
        "executors": [{"image": IMAGE, "command": ["wc", "-l", "/data/scores.csv"]}],
    }


def test_sites_list_their_datasets_metadata_only(federation: Federation) -> None:
    sites = {s["name"]: s for s in federation.client.get("/api/v1/sites").json()}
    assert sites["partner-a"]["datasets"] == [
        {"name": "adni", "description": "scores of partner-a"}
    ]
    assert "path" not in str(sites["partner-a"]["datasets"])
    assert sites["partner-b"]["online"] is True
    assert sites["partner-a"]["classification"]["hardware"]["cpu_cores"] > 0


def test_a_task_runs_at_the_site_of_its_dataset(federation: Federation) -> None:
    task = federation.wait(federation.submit(count_lines("partner-a", "adni")))
    assert task["state"] == "COMPLETE", task
    log = task["logs"][-1]
    assert log["logs"][0]["stdout"] == "4 /data/scores.csv\n"
    assert log["metadata"]["work_dir"].startswith(str(federation.root / "agent-partner-a"))
    # Nothing of the dataset reached the hub's data directory.
    hub_files = [p.name for p in (federation.root / "hub").rglob("scores.csv")]
    assert hub_files == []


def test_an_unknown_dataset_is_refused_at_submission(federation: Federation) -> None:
    answer = federation.client.post(f"{TES}/tasks", json=count_lines("partner-a", "nope"))
    assert answer.status_code == 400
    assert "site partner-a has no dataset 'nope'" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (count_lines("partner-b", "ukb"), "executors[0].image"),
        (count_lines("partner-b", "ukb"), "owner: user local may not run tasks at site partner-b"),
        (
            {
                **count_lines("partner-a", "adni"),
                "resources": {"backend_parameters": {"network": "host"}},
            },
            "resources.backend_parameters.network",
        ),
        (
            {**count_lines("partner-a", "adni"), "resources": {"cpu_cores": 4}},
            "resources.cpu_cores",
        ),
    ],
)
def test_sites_refuse_what_their_policy_does_not_allow(
    federation: Federation, body: dict[str, Any], needle: str
) -> None:
    task = federation.wait(federation.submit(body))
    assert task["state"] == "SYSTEM_ERROR"
    reason = " ".join(task["logs"][-1]["system_logs"])
    assert "refused by site" in reason and needle in reason, reason


def test_a_cancel_reaches_the_site(federation: Federation) -> None:
    body = count_lines("partner-a", "adni")
    body["executors"] = [{"image": IMAGE, "command": ["sleep", "300"]}]
    task_id = federation.submit(body)
    federation.wait(task_id, {"RUNNING"})
    assert federation.client.post(f"{TES}/tasks/{task_id}:cancel").status_code == 200
    assert federation.wait(task_id)["state"] == "CANCELED"


def test_a_hub_killed_mid_task_loses_and_repeats_nothing(federation: Federation) -> None:
    body = count_lines("partner-a", "adni")
    body["executors"] = [
        {"image": IMAGE, "command": ["sh", "-c", "sleep 4; wc -l /data/scores.csv"]}
    ]
    task_id = federation.submit(body)
    federation.wait(task_id, {"RUNNING"})
    federation.hub.send_signal(signal.SIGKILL)
    federation.hub.wait()
    time.sleep(5)  # the task ends at the site while the hub is down
    federation.start_hub()
    task = federation.wait(task_id, timeout=60)
    assert task["state"] == "COMPLETE", task
    assert len(task["logs"]) == 1
    assert task["logs"][0]["logs"][0]["stdout"] == "4 /data/scores.csv\n"


def test_a_cut_link_loses_and_duplicates_nothing(federation: Federation) -> None:
    assert federation.link is not None
    body = count_lines("partner-a", "adni")
    body["executors"] = [
        {"image": IMAGE, "command": ["sh", "-c", "sleep 2; wc -l /data/scores.csv"]}
    ]
    before = [federation.submit(body) for _ in range(4)]
    federation.wait(before[0], {"RUNNING"})
    federation.link.cut()
    try:
        during = [federation.submit(body) for _ in range(3)]  # wait at the hub meanwhile
        deadline = time.monotonic() + 30
        while True:  # the hub notices the silence
            site = federation.client.get("/api/v1/sites/partner-a").json()
            if not site["online"]:
                break
            assert time.monotonic() < deadline, "the site never went offline"
            time.sleep(0.5)
        assert {federation.client.get(f"{TES}/tasks/{t}").json()["state"] for t in during} == {
            "QUEUED"
        }
    finally:
        federation.link.restore()
    for task_id in before + during:
        task = federation.wait(task_id, timeout=90)
        assert task["state"] == "COMPLETE", task
        assert len(task["logs"]) == 1, task["logs"]
        assert [e["stdout"] for e in task["logs"][0]["logs"]] == ["4 /data/scores.csv\n"]
    assert federation.client.get("/api/v1/sites/partner-a").json()["online"] is True


def test_results_sealed_to_the_owner_pass_the_hub_only_encrypted(
    federation: Federation, tmp_path: Path
) -> None:
    env = {**os.environ, "TOOLFERRY_URL": federation.url, "TOOLFERRY_DATA_DIR": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TOOLFERRY, *args], env=env, capture_output=True, text=True, check=False
        )

    assert cli("keys", "create").returncode == 0
    space = federation.client.post("/toolferry/v1/files").json()["id"]
    body = count_lines("partner-a", "adni")
    body["executors"] = [
        {"image": IMAGE, "command": ["sh", "-c", "wc -l /data/scores.csv > /out/count.txt"]}
    ]
    body["outputs"] = [{"path": "/out/count.txt", "url": f"hub://{space}/count.txt"}]
    body["resources"] = {"backend_parameters": {"encrypt_outputs": "true"}}
    task = federation.wait(federation.submit(body))
    assert task["state"] == "COMPLETE", task
    assert task["logs"][-1]["outputs"][0]["url"] == f"hub://{space}/count.txt"
    sealed = federation.client.get(f"/toolferry/v1/files/{space}/count.txt").content
    assert sealed.startswith(b"toolferry-sealed-1\n")
    assert b"scores.csv" not in sealed  # the hub holds it encrypted only
    copy = tmp_path / "count.txt"
    copy.write_bytes(sealed)
    opened = cli("keys", "decrypt", str(copy))
    assert opened.returncode == 0, opened.stderr
    assert copy.read_text() == "4 /data/scores.csv\n"
    # The hub's own site does not seal: it says so at submission.
    local = {
        "executors": [{"image": IMAGE, "command": ["true"]}],
        **{"resources": body["resources"]},
    }
    refused = federation.client.post(f"{TES}/tasks", json=local)
    assert refused.status_code == 400
    assert "only a data site seals outputs" in refused.json()["detail"]
