"""Per-task wall time of a no-op container: toolferry (TES API, docker runtime) vs docker run.

Runs are interleaved (toolferry, docker, toolferry, ...) so drift on the machine hits both
alike. toolferry's time runs from sending POST /tasks until the hub recorded COMPLETE (the end
of the task's log, same clock): a client that polls sees it one poll later, and polling fast
enough to see it at once would itself load the hub, so the client here polls every 50 ms.
`--seen` measures until the client's poll (every 2 ms) sees COMPLETE instead.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from datetime import datetime

from common import hub_client, wait

IMAGE = "toolferry-test/busybox:1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--seen", action="store_true", help="stop the clock when a poll sees it")
    args = parser.parse_args()
    task = {"executors": [{"image": args.image, "command": ["true"]}]}
    raw_cmd = ["docker", "run", "--rm", "--network", "none", args.image, "true"]
    ours: list[float] = []
    raw: list[float] = []
    with hub_client(runtime="docker") as client:
        wait(client, client.post("/tasks", json=task).json()["id"])  # warm up both paths
        subprocess.run(raw_cmd, check=True)
        for _ in range(args.runs):
            sent, start = time.time(), time.perf_counter()
            task_id = client.post("/tasks", json=task).json()["id"]
            done = wait(client, task_id, poll=0.002 if args.seen else 0.05)
            seen = time.perf_counter() - start
            assert done["state"] == "COMPLETE", done
            if args.seen:
                ours.append(seen)
            else:
                end = client.get(f"/tasks/{task_id}", params={"view": "BASIC"}).json()
                recorded = datetime.fromisoformat(end["logs"][-1]["end_time"]).timestamp()
                ours.append(recorded - sent)
            start = time.perf_counter()
            subprocess.run(raw_cmd, check=True)
            raw.append(time.perf_counter() - start)
    t_ours, t_raw = statistics.median(ours), statistics.median(raw)
    print(f"runs: {args.runs} (interleaved), image {args.image}")
    print(f"toolferry  median {t_ours * 1000:7.1f} ms  (min {min(ours) * 1000:.1f})")
    print(f"docker run median {t_raw * 1000:7.1f} ms  (min {min(raw) * 1000:.1f})")
    print(f"ratio toolferry/docker run: {t_ours / t_raw:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
