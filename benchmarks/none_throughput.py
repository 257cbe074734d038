"""Throughput of no-op tasks on the none runtime vs xargs -P<cores> of the same commands.

Two baselines: the bare command (`true`), and the same bubblewrap sandbox command line the
none runtime runs for each task (what the raw tool costs on this host). toolferry's time runs
from the first POST /tasks until every task is COMPLETE, submitted by one HTTP client.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from common import hub_client

from toolferry.runtimes.base import ExecSpec
from toolferry.runtimes.none import NoneRuntime, bwrap_args


def sandbox_command(tmp: Path) -> list[str]:
    """The bwrap command line the none runtime builds for a no-op executor."""
    spec = ExecSpec(
        task_id="bench",
        index=0,
        image="none",
        command=("true",),
        stdout=tmp / "stdout",
        stderr=tmp / "stderr",
        scratch=tmp,
    )
    host_root = NoneRuntime().host_root()  # as the runtime sees it, /etc snapshot included
    return bwrap_args(spec, host_root=host_root, status_fd=2, exists=os.path.exists)


def xargs_rate(command: str, n: int, cores: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        f"seq {n} | xargs -P{cores} -I{{}} {command}", shell=True, check=True, capture_output=True
    )
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=500)
    args = parser.parse_args()
    n, cores = args.tasks, os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        sandboxed = shlex.join(sandbox_command(Path(tmp)))
        bare = xargs_rate("true", n, cores)
        boxed = xargs_rate(sandboxed, n, cores)
    task = {"executors": [{"image": "none", "command": ["true"]}]}
    with hub_client(runtime="none") as client:
        start = time.perf_counter()
        for _ in range(n):
            client.post("/tasks", json=task).raise_for_status()
        while True:
            page = client.get("/tasks", params={"state": "COMPLETE", "page_size": 2047}).json()
            if len(page["tasks"]) >= n:
                break
            time.sleep(0.01)
        ours = n / (time.perf_counter() - start)
    print(f"tasks: {n}, cores: {cores}")
    print(f"xargs -P{cores} true            {bare:8.0f} tasks/s")
    print(f"xargs -P{cores} <bwrap sandbox> {boxed:8.0f} tasks/s")
    print(f"toolferry (none runtime)     {ours:8.0f} tasks/s")
    print(f"ratio vs the same sandboxed commands: {ours / boxed:.3f}  (target >= 0.6)")
    print(f"ratio vs bare commands:               {ours / bare:.3f}")


if __name__ == "__main__":
    main()
