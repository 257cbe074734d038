"""A whole hub on PostgreSQL: tasks submitted over TES complete (fake runtime), and a restarted
hub on the same database finds them as they ended."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from tests.unit.fakes import FakeRuntime

from toolferry.config import Settings
from toolferry.hub import serve_embedded

TES = "/ga4gh/tes/v1"


def task(n: int) -> dict[str, Any]:
    return {
        "name": f"pg-{n}",
        "inputs": [{"path": "/in/a.txt", "content": f"input {n} ✓"}],
        "executors": [{"image": "img", "command": ["echo", str(n)]}],
        "tags": {"batch": "postgres", "n": str(n)},
        "resources": {"cpu_cores": 1},
    }


def wait_done(client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found: dict[str, Any] = client.get(f"{TES}/tasks/{task_id}?view=FULL").json()
        if found["state"] not in ("QUEUED", "INITIALIZING", "RUNNING"):
            return found
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not finish within 30 s")


def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(data_dir=data_dir, capacity_cpus=2, database_url=database_url)


def test_a_hub_on_postgres_runs_tasks_and_a_restarted_hub_finds_them(
    tmp_path: Path, database_url: str
) -> None:
    with (
        serve_embedded(settings(tmp_path, database_url), runtimes={"fake": FakeRuntime()}) as (
            hub,
            url,
        ),
        httpx.Client(base_url=url) as client,
    ):
        assert hub.db.engine.dialect.name == "postgresql"
        ids = []
        for n in range(6):
            answer = client.post(f"{TES}/tasks", json=task(n))
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])
        done = {task_id: wait_done(client, task_id) for task_id in ids}
    assert {t["state"] for t in done.values()} == {"COMPLETE"}
    first = done[ids[0]]
    assert first["logs"][-1]["logs"][0]["exit_code"] == 0
    assert first["logs"][-1]["logs"][0]["stdout"] == "stdout of 0\n"
    # The tasks are in PostgreSQL, and nowhere else.
    assert not (tmp_path / "toolferry.db").exists()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT id, state FROM tasks ORDER BY id").fetchall()
        (events,) = conn.execute("SELECT count(*) FROM task_events").fetchone() or (0,)
    assert rows == [(task_id, "COMPLETE") for task_id in sorted(ids)]
    assert events >= 6 * 4  # queued, initializing, running, the executor, complete

    with (
        serve_embedded(settings(tmp_path, database_url), runtimes={"fake": FakeRuntime()}) as (
            _,
            url,
        ),
        httpx.Client(base_url=url) as client,
    ):
        listed = client.get(f"{TES}/tasks?view=MINIMAL&tag_key=batch&tag_value=postgres").json()
        assert sorted(t["id"] for t in listed["tasks"]) == sorted(ids)
        assert {t["state"] for t in listed["tasks"]} == {"COMPLETE"}
        for task_id in ids:
            assert client.get(f"{TES}/tasks/{task_id}?view=FULL").json() == done[task_id]
        # ... and goes on working on the same database.
        answer = client.post(f"{TES}/tasks", json=task(6))
        assert wait_done(client, answer.json()["id"])["state"] == "COMPLETE"
        named = client.get(f"{TES}/tasks?name_prefix=pg-&view=MINIMAL").json()["tasks"]
        assert len(named) == 7
