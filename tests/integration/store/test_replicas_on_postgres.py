"""Two hub replicas on one PostgreSQL database share 100 queued tasks; one is killed (SIGKILL)
half-way. Every task completes, and every executor ran exactly once: the survivor adopts the
dead replica's running tasks (re-attaching to their containers) and runs what it left queued.

Each executor reports its run to an HTTP recorder in this test (host network), so a run twice
would be seen, not just a task ending twice (which the state machine forbids anyway).
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

TES = "/ga4gh/tes/v1"
TASKS = 100
HUB_SCRIPT = r"""
import json, sys
from toolferry.config import Settings
from toolferry.hub import serve_embedded

with serve_embedded(Settings(**json.loads(sys.argv[1]))) as (hub, url):
    print(url, hub.site.replica_id, flush=True)
    sys.stdin.readline()
"""


class Recorder(ThreadingHTTPServer):
    """Counts GET /ran/<mark> requests by mark."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    server.runs[self.path.removeprefix("/ran/")] += 1
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def count(self) -> int:
        with self.lock:
            return sum(self.runs.values())


@contextmanager
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def replica(
    settings: dict[str, Any], log: Path
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """A hub process; yields (process, url, replica id)."""
    with (
        log.open("ab") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", HUB_SCRIPT, json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as proc,
    ):
        assert proc.stdout is not None
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline().split() if ready else []
            assert len(line) == 2, f"the hub did not start: {log.read_text()[-3000:]}"
            yield proc, line[0], line[1]
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def test_killing_one_of_two_replicas_loses_and_repeats_nothing(
    tmp_path: Path, database_url: str, busybox_image: str
) -> None:
    def settings(name: str) -> dict[str, Any]:
        return {
            "data_dir": str(tmp_path / name),
            "database_url": database_url,
            "runtime": "docker",
            "allow_task_network": True,
            "capacity_cpus": 2,
            "default_cpu_cores": 0.25,  # eight executors at a time per replica
            "replica_lease_s": 3,
            "max_attempts": 3,
            "retry_backoff_s": 0.5,
        }

    with (
        recorder() as runs,
        replica(settings("a"), tmp_path / "a.log") as (_, url_a, id_a),
        replica(settings("b"), tmp_path / "b.log") as (proc_b, _url_b, id_b),
        httpx.Client(base_url=url_a, timeout=30) as client,
    ):
        port = runs.server_address[1]
        ids = []
        for n in range(TASKS):
            body = {
                "name": f"replicas-{n}",
                "executors": [
                    {
                        "image": busybox_image,
                        "command": [
                            "sh",
                            "-c",
                            f"wget -q -O- http://127.0.0.1:{port}/ran/{n}; sleep 2",
                        ],
                    }
                ],
                "resources": {"backend_parameters": {"network": "host"}},
            }
            answer = client.post(f"{TES}/tasks", json=body)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])

        # Wait until both replicas work, then kill B with tasks of its own running.
        def running_on_b() -> list[str]:
            listed = client.get(f"{TES}/tasks?view=BASIC&page_size=1000").json()["tasks"]
            return [
                t["id"]
                for t in listed
                if t["state"] == "RUNNING"
                and (t.get("logs") or [{}])[-1].get("metadata", {}).get("replica") == id_b
            ]

        deadline = time.monotonic() + 90
        while runs.count() < 20 or not (on_b := running_on_b()):
            assert time.monotonic() < deadline, "replica B never ran tasks"
            time.sleep(0.2)
        proc_b.send_signal(signal.SIGKILL)
        proc_b.wait()
        killed_at = datetime.now(UTC)

        deadline = time.monotonic() + 240
        while True:
            states = client.get(f"{TES}/tasks?view=MINIMAL&page_size=1000").json()["tasks"]
            if all(t["state"] not in ("QUEUED", "INITIALIZING", "RUNNING") for t in states):
                break
            assert time.monotonic() < deadline, Counter(t["state"] for t in states)
            time.sleep(0.5)
        tasks = {t: client.get(f"{TES}/tasks/{t}?view=FULL").json() for t in ids}

    assert Counter(t["state"] for t in tasks.values()) == {"COMPLETE": TASKS}
    # Every executor ran exactly once.
    assert runs.runs == Counter({str(n): 1 for n in range(TASKS)})
    # Both replicas ran tasks; B's running ones were adopted by A, not run again.
    replicas = Counter(t["logs"][0]["metadata"].get("replica") for t in tasks.values())
    assert replicas[id_a] > 0
    adopted = 0
    for task_id in on_b:
        logs = tasks[task_id]["logs"]
        assert len(logs) == 1, logs
        if datetime.fromisoformat(logs[0]["end_time"]) > killed_at:  # B did not finish it
            assert logs[0]["metadata"]["replica"] == id_a
            adopted += 1
    assert adopted > 0, "no task was running on B when it was killed"
    assert "is dead: adopting its tasks" in (tmp_path / "a.log").read_text()
