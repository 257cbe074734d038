"""GAAIN's investigator story from the CLI, with a data steward: an investigator submits an
analysis against a dataset at a partner site; the site's steward approves it (or rejects
another, with a reason the investigator reads); it runs there and the result comes back; the
site's hash-chained audit log, as the hub holds it and as the site keeps it, verifies intact,
and a tampered copy does not."""

from __future__ import annotations

import json
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

pytestmark = pytest.mark.integration

TOOLFERRY = str(Path(sys.executable).with_name("toolferry"))
IMAGE = "toolferry-test/busybox:1"


@dataclass
class Story:
    root: Path
    url: str
    tokens: dict[str, str]

    def env(self, user: str) -> dict[str, str]:
        return {
            **os.environ,
            "TOOLFERRY_URL": self.url,
            "TOOLFERRY_TOKEN": self.tokens[user],
            "TOOLFERRY_DATA_DIR": str(self.root / f"cli-{user}"),
        }

    def cli(self, user: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [TOOLFERRY, *args], env=self.env(user), capture_output=True, text=True, timeout=120
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def popen(self, user: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [TOOLFERRY, *args],
            env=self.env(user),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def listed(self, user: str, what: str, count: int) -> list[dict[str, Any]]:
        """``toolferry WHAT list --json`` as ``user`` once it lists ``count`` items."""
        deadline = time.monotonic() + 60
        while True:
            items: list[dict[str, Any]] = json.loads(self.cli(user, what, "list", "--json").stdout)
            if len(items) >= count:
                return items
            assert time.monotonic() < deadline, f"nothing came to `{what} list` of {user}"
            time.sleep(0.3)

    def held(self, user: str, count: int) -> list[dict[str, Any]]:
        return self.listed(user, "outputs", count)

    def waiting(self, user: str, count: int) -> list[dict[str, Any]]:
        return self.listed(user, "approvals", count)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, busybox_image: str) -> Iterator[Story]:
    root = tmp_path_factory.mktemp("steward")
    hub_env = {**os.environ, "TOOLFERRY_DATA_DIR": str(root / "hub")}
    tokens = {}
    for user, admin in (("admin", True), ("alice", False), ("carol", False)):
        args = [TOOLFERRY, "token", "create", "--user", user, *(["--admin"] if admin else [])]
        tokens[user] = subprocess.run(
            args, env=hub_env, capture_output=True, text=True, check=True
        ).stdout.strip()
    site_token = subprocess.run(
        [TOOLFERRY, "site", "add", "partner-c", "-d", "memory clinic"],
        env=hub_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    data = root / "data" / "adni"
    data.mkdir(parents=True)
    (data / "scores.csv").write_text("id,score\n1,3\n2,5\n")
    config = root / "partner-c.toml"
    config.write_text(
        f"""
name = "partner-c"
data_dir = "{root / "agent"}"
[[datasets]]
name = "adni"
description = "ADNI scores"
path = "{data}"
users = ["alice"]
[policy]
require_approval = true
output_review = true
max_output_bytes = 1000
stewards = ["carol"]
[settings]
runtime = "docker"
"""
    )
    port = _port()
    url = f"http://127.0.0.1:{port}"
    logs = [(root / "hub.log").open("ab"), (root / "agent.log").open("ab")]
    hub = subprocess.Popen(
        [TOOLFERRY, "server", "--port", str(port)], env=hub_env, stdout=logs[0], stderr=logs[0]
    )
    agent = subprocess.Popen(
        [TOOLFERRY, "agent", "--hub", url, "--token", site_token, "--config", str(config)],
        stdout=logs[1],
        stderr=logs[1],
    )
    try:
        deadline = time.monotonic() + 60
        headers = {"authorization": f"Bearer {tokens['admin']}"}
        while True:
            try:
                sites = httpx.get(f"{url}/api/v1/sites", headers=headers).json()
                if sites and sites[0]["online"]:
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            assert time.monotonic() < deadline, (root / "agent.log").read_text()[-2000:]
            time.sleep(0.2)
        yield Story(root=root, url=url, tokens=tokens)
    finally:
        for proc in (agent, hub):
            proc.send_signal(signal.SIGTERM)
        for proc in (agent, hub):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for handle in logs:
            handle.close()


def run_args(name: str) -> list[str]:
    return [
        "run",
        "--name",
        name,
        "-i",
        "/data/scores.csv=dataset://partner-c/adni/scores.csv",
        IMAGE,
        "--",
        "wc",
        "-l",
        "/data/scores.csv",
    ]


def test_the_steward_approves_and_the_result_comes_back(story: Story) -> None:
    # A local file goes with the task and the result file comes back to this machine, both
    # through the hub's file store (the site reaches them only because its task names them).
    notes = story.root / "notes.txt"
    notes.write_text("analysed at the partner\n")
    result = story.root / "result" / "counts.txt"
    # The investigator publishes the analysis in the catalogue and runs that entry.
    story.cli("alice", "env", "push", IMAGE, "--name", "alice/count")
    investigator = story.popen(
        "alice",
        "run",
        "--name",
        "approved-study",
        "-i",
        "/data/scores.csv=dataset://partner-c/adni/scores.csv",
        "-i",
        f"/in/notes.txt={notes}",
        "-o",
        f"/out/counts.txt={result}",
        "catalogue:alice/count:1",
        "--",
        "sh",
        "-c",
        "wc -l /data/scores.csv | tee /out/counts.txt; cat /in/notes.txt >> /out/counts.txt",
    )
    (item,) = [i for i in story.waiting("carol", 1) if i["owner"] == "alice"]
    assert item["site"] == "partner-c"
    assert item["inputs"][0] == "dataset://partner-c/adni/scores.csv"
    assert item["inputs"][1].startswith("hub://")
    assert item["images"][0] != "catalogue:alice/count:1"  # pinned at submission
    assert story.cli("alice", "approvals", "list", "--json").stdout.strip() == "[]"  # not hers
    story.cli("carol", "approvals", "approve", item["id"])
    # The outputs wait in the site's airlock until carol looked at them.
    (held,) = story.held("carol", 1)
    assert held["id"] == item["id"]
    # The output file, and what the executor printed (which leaves with it, once released).
    assert {f["path"]: f["size"] for f in held["files"]} == {
        "0/counts.txt": 43,
        "executor 0 stdout": 19,
    }
    assert not result.exists()
    assert story.cli("alice", "task", "get", item["id"], "--json", check=True).stdout.count(
        '"RUNNING"'
    )
    story.cli("carol", "outputs", "release", item["id"])
    stdout, stderr = investigator.communicate(timeout=120)
    assert investigator.returncode == 0, stderr
    assert stdout == "3 /data/scores.csv\n"
    assert result.read_text() == "3 /data/scores.csv\nanalysed at the partner\n"
    task = json.loads(story.cli("alice", "task", "get", item["id"], "--json").stdout)
    assert task["logs"][-1]["metadata"]["environment:executors[0]"].startswith(
        "alice/count:1@sha256:"
    )


def test_a_rejected_task_ends_with_the_stewards_reason(story: Story) -> None:
    investigator = story.popen("alice", *run_args("rejected-study"))
    (item,) = story.waiting("carol", 1)
    refused = story.cli("carol", "approvals", "reject", item["id"], check=False)
    assert refused.returncode != 0 and "reason" in refused.stderr  # a reason is required
    story.cli("carol", "approvals", "reject", item["id"], "--reason", "no ethics approval")
    _, stderr = investigator.communicate(timeout=120)
    assert investigator.returncode != 0
    task = json.loads(story.cli("alice", "task", "get", item["id"], "--json").stdout)
    assert task["state"] == "CANCELED"
    reason = " ".join(task["logs"][-1]["system_logs"]) if task.get("logs") else ""
    assert "rejected by carol" in reason and "no ethics approval" in reason, (task, stderr)


def test_outputs_the_steward_keeps_never_leave_the_site(story: Story) -> None:
    result = story.root / "kept.txt"
    investigator = story.popen(
        "alice",
        "run",
        "-i",
        "/data/scores.csv=dataset://partner-c/adni/scores.csv",
        "-o",
        f"/out/copy.csv={result}",
        IMAGE,
        "--",
        "cp",
        "/data/scores.csv",
        "/out/copy.csv",
    )
    (item,) = story.waiting("carol", 1)
    story.cli("carol", "approvals", "approve", item["id"])
    (held,) = story.held("carol", 1)
    story.cli("carol", "outputs", "reject", held["id"], "--reason", "row-level data")
    _, stderr = investigator.communicate(timeout=120)
    assert investigator.returncode != 0
    assert not result.exists()
    task = json.loads(story.cli("alice", "task", "get", held["id"], "--json").stdout)
    assert task["state"] == "SYSTEM_ERROR"
    reason = " ".join(task["logs"][-1]["system_logs"])
    assert "kept at site partner-c by carol: row-level data" in reason, (reason, stderr)


def test_a_cancel_while_outputs_wait_for_review_keeps_them_at_the_site(story: Story) -> None:
    result = story.root / "never.txt"
    investigator = story.popen(
        "alice",
        "run",
        "-i",
        "/data/scores.csv=dataset://partner-c/adni/scores.csv",
        "-o",
        f"/out/n.txt={result}",
        IMAGE,
        "--",
        "sh",
        "-c",
        "wc -l /data/scores.csv > /out/n.txt",
    )
    (item,) = story.waiting("carol", 1)
    story.cli("carol", "approvals", "approve", item["id"])
    story.held("carol", 1)
    story.cli("alice", "task", "cancel", item["id"])
    investigator.communicate(timeout=120)
    task = json.loads(story.cli("alice", "task", "get", item["id"], "--json").stdout)
    assert task["state"] == "CANCELED"
    assert "never left the site" in " ".join(task["logs"][-1]["system_logs"])
    assert not result.exists()
    assert story.cli("carol", "outputs", "list", "--json").stdout.strip() == "[]"


def test_the_audit_log_verifies_and_tampering_shows(story: Story) -> None:
    log = story.root / "agent" / "audit.log"
    deadline = time.monotonic() + 30
    while True:  # the agent ships its records with its next forwarding round
        held = story.cli("carol", "audit", "verify", "--site", "partner-c")
        if "records at the hub" in held.stdout and "(0 records" not in held.stdout:
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert "intact" in held.stdout
    kinds = [json.loads(line)["kind"] for line in log.read_text().splitlines()]
    for kind in (
        "approval",
        "task_start",
        "data_access",
        "task_end",
        "output_release",
        "output_reject",
    ):
        assert kind in kinds, kinds
    assert "intact" in story.cli("carol", "audit", "verify", str(log)).stdout
    tampered = story.root / "tampered.log"
    lines = log.read_text().splitlines()
    edited = next(i for i, line in enumerate(lines) if '"alice"' in line)
    lines[edited] = lines[edited].replace('"alice"', '"mallory"')
    tampered.write_text("\n".join(lines) + "\n")
    checked = story.cli("carol", "audit", "verify", str(tampered), check=False)
    assert checked.returncode == 1
    assert "edited" in checked.stderr
    assert story.cli("alice", "audit", "verify", "--site", "partner-c", check=False).returncode != 0
