"""The web UI's task list with 100,000 tasks: how long GET /ui/tasks (the first page, 50 rows)
takes, for an admin (every owner's tasks) and for one user among ten (an owner filter), and a
later page reached through page tokens. Target: a median under 300 ms.

The tasks go straight into the store (one transaction per 5,000, the rows `SqlTaskStore.create`
writes), already ended so that the hub's scheduler leaves them alone. The hub then serves them
over loopback (uvicorn in a thread, SQLite in a scratch data dir); each request is timed from
the client, 20 times, after one warm-up request.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from toolferry.config import Settings
from toolferry.domain.ids import new_task_id
from toolferry.domain.task import Executor, TaskSpec
from toolferry.hub import serve_embedded
from toolferry.store import codec
from toolferry.store.db import Database
from toolferry.store.tables import task_events, tasks

USERS = [f"user{i}" for i in range(10)]
BATCH = 5000


def fill(data_dir: Path, count: int) -> None:
    """``count`` ended tasks, oldest first, spread over :data:`USERS`."""
    db = Database.connect(Settings(data_dir=data_dir).effective_database_url)
    spec = TaskSpec(
        executors=(Executor(image="toolferry-test/busybox:1", command=("sh", "-c", "true")),)
    )
    spec_json = codec.spec_to_json(spec)
    start = datetime.now(UTC) - timedelta(days=30)
    written = 0
    while written < count:
        task_rows, event_rows = [], []
        for i in range(written, min(count, written + BATCH)):
            task_id = new_task_id()
            created = start + timedelta(seconds=i)
            state = "EXECUTOR_ERROR" if i % 10 == 0 else "COMPLETE"
            task_rows.append(
                {
                    "id": task_id,
                    "owner": USERS[i % len(USERS)],
                    "name": f"bench-{i:06d}",
                    "state": state,
                    "creation_time": created,
                    "updated_at": created,
                    "version": 2,
                    "spec": spec_json,
                    "logs": [],
                    "notes": [],
                    "site": None,
                }
            )
            for seq, (kind_state, when) in enumerate(
                (("QUEUED", created), (state, created + timedelta(seconds=1))), start=1
            ):
                event_rows.append(
                    {
                        "task_id": task_id,
                        "seq": seq,
                        "kind": "state",
                        "time": when,
                        "data": {"state": kind_state},
                    }
                )
        with db.write() as conn:
            conn.execute(insert(tasks), task_rows)
            conn.execute(insert(task_events), event_rows)
        written += len(task_rows)
    db.close()


def timed(client: httpx.Client, url: str, token: str, rounds: int) -> tuple[float, str]:
    """Median milliseconds of ``rounds`` GETs of ``url`` (after one warm-up), and the page."""
    headers = {"Authorization": f"Bearer {token}"}
    page = client.get(url, headers=headers)
    page.raise_for_status()
    times = []
    for _ in range(rounds):
        begin = time.perf_counter()
        client.get(url, headers=headers).raise_for_status()
        times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times), page.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="toolferry-bench-web-") as tmp:
        data_dir = Path(tmp) / "data"
        begin = time.perf_counter()
        fill(data_dir, args.tasks)
        print(f"inserted {args.tasks} tasks in {time.perf_counter() - begin:.1f} s")
        with serve_embedded(Settings(data_dir=data_dir, auth="token")) as (hub, url):
            admin = hub.tokens.create("root", admin=True)[1]
            user = hub.tokens.create(USERS[3])[1]
            with httpx.Client(base_url=url, timeout=60) as client:
                ms, page = timed(client, "/ui/tasks", admin, args.rounds)
                rows = page.count("<tr>") - 1
                print(f"GET /ui/tasks, admin (all {args.tasks}): median {ms:.1f} ms, {rows} rows")
                ms, _ = timed(client, "/ui/tasks", user, args.rounds)
                print(f"GET /ui/tasks, one user of {len(USERS)}: median {ms:.1f} ms")
                ms, _ = timed(client, "/ui/tasks?state=EXECUTOR_ERROR", admin, args.rounds)
                print(f"GET /ui/tasks?state=EXECUTOR_ERROR, admin: median {ms:.1f} ms")
                token = re.search(r'page_token=([^"&]+)"', page)
                assert token is not None, "the first page has no next link"
                ms, _ = timed(client, f"/ui/tasks?page_token={token.group(1)}", admin, args.rounds)
                print(f"GET /ui/tasks second page, admin: median {ms:.1f} ms")


if __name__ == "__main__":
    main()
