"""The swarm backend vs Docker Swarm itself: per-task wall time of one no-op container.

toolferry: POST /tasks with `backend=swarm` until a client polling every 20 ms sees COMPLETE
(the worker in the hub runs the executor as a Swarm service and removes it afterwards).
Raw: `docker service create --detach --restart-condition none` of the same image and command,
then `docker service ps` every 20 ms until its task is Complete, then `docker service rm` —
what a script driving Swarm by hand does (`--detach=false` never returns for a task that
completes: the CLI waits for a running replica). Interleaved runs, medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid

from common import hub_client, wait

IMAGE = "toolferry-test/busybox:1"


def raw_service() -> float:
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    subprocess.run(
        [
            "docker",
            "service",
            "create",
            "--quiet",
            "--detach",
            "--no-resolve-image",
            "--restart-condition",
            "none",
            "--name",
            name,
            IMAGE,
            "true",
        ],
        check=True,
        capture_output=True,
    )
    while True:
        state = subprocess.run(
            ["docker", "service", "ps", "--format", "{{.CurrentState}}", name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        if state.startswith(("Complete", "Failed", "Rejected")):
            break
        time.sleep(0.02)
    subprocess.run(["docker", "service", "rm", name], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    task = {
        "executors": [{"image": IMAGE, "command": ["true"]}],
        "resources": {"backend_parameters": {"backend": "swarm"}},
    }
    ours: list[float] = []
    raw: list[float] = []
    with hub_client(runtime="docker") as client:
        wait(client, client.post("/tasks", json=task).json()["id"])  # warm up both paths
        raw_service()
        for _ in range(args.runs):
            start = time.perf_counter()
            done = wait(client, client.post("/tasks", json=task).json()["id"], poll=0.02)
            ours.append(time.perf_counter() - start)
            assert done["state"] == "COMPLETE", done
            raw.append(raw_service())
    t_ours, t_raw = statistics.median(ours), statistics.median(raw)
    print(f"runs: {args.runs} (interleaved), image {IMAGE}")
    print(
        f"toolferry (swarm)             median {t_ours * 1000:7.1f} ms  (min {min(ours) * 1000:.1f})"
    )
    print(
        f"docker service create + wait  median {t_raw * 1000:7.1f} ms  (min {min(raw) * 1000:.1f})"
    )
    print(f"ratio toolferry/raw: {t_ours / t_raw:.3f}")


if __name__ == "__main__":
    main()
