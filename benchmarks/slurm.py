"""The slurm backend vs Slurm itself.

`--mode wall` (default): per-task wall time of one no-op container task through toolferry's TES
API on the slurm backend (the worker is an sbatch job that runs the executor with the docker
runtime) vs `sbatch --wait` of a job that runs the same container with `docker run --rm`.
Interleaved runs, medians. toolferry's time runs from POST /tasks until a client polling every
20 ms sees COMPLETE.

`--mode throughput`: N no-op tasks (`true` on the none runtime, so the engine is not what is
measured) submitted at once through toolferry vs N `sbatch --wrap` jobs running the same
sandboxed command, until all ended; tasks per second.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from common import hub_client, wait

IMAGE = "toolferry-test/busybox:1"


def squeue_empty(name: str) -> bool:
    out = subprocess.run(
        ["squeue", "--noheader", "--me", f"--name={name}", "--format=%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return not out.strip()


def job_active(job_id: str) -> bool:
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--format=%T"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return out in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")


def wall(runs: int) -> None:
    task = {
        "executors": [{"image": IMAGE, "command": ["true"]}],
        "resources": {"backend_parameters": {"backend": "slurm"}},
    }
    raw_cmd = [
        "sbatch",
        "--wait",
        "--quiet",
        "--output=/dev/null",
        "--job-name=bench-raw",
        "--wrap",
        f"docker run --rm --network none {IMAGE} true",
    ]
    ours: list[float] = []
    raw: list[float] = []
    polled: list[float] = []
    with hub_client(runtime="docker") as client:
        wait(client, client.post("/tasks", json=task).json()["id"])  # warm up both paths
        subprocess.run(raw_cmd, check=True)
        for _ in range(runs):
            start = time.perf_counter()
            done = wait(client, client.post("/tasks", json=task).json()["id"], poll=0.02)
            ours.append(time.perf_counter() - start)
            assert done["state"] == "COMPLETE", done
            start = time.perf_counter()
            subprocess.run(raw_cmd, check=True)
            raw.append(time.perf_counter() - start)
            # sbatch, then squeue every 20 ms until the job is no longer pending or running.
            start = time.perf_counter()
            job = subprocess.run(
                [raw_cmd[0], "--parsable", *raw_cmd[3:]],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            while job_active(job):
                time.sleep(0.02)
            polled.append(time.perf_counter() - start)
    t_ours, t_raw, t_polled = (statistics.median(x) for x in (ours, raw, polled))
    print(f"runs: {runs} (interleaved), image {IMAGE}, docker runtime in the job")
    print(f"toolferry (slurm)      median {t_ours * 1000:7.1f} ms  (min {min(ours) * 1000:.1f})")
    print(f"sbatch --wait          median {t_raw * 1000:7.1f} ms  (min {min(raw) * 1000:.1f})")
    print(
        f"sbatch + squeue/20 ms  median {t_polled * 1000:7.1f} ms  (min {min(polled) * 1000:.1f})"
    )
    print(f"ratio toolferry/sbatch --wait: {t_ours / t_raw:.3f}  (target <= 1.10)")
    print(f"ratio toolferry/sbatch + squeue polling: {t_ours / t_polled:.3f}")


def throughput(tasks: int) -> None:
    task = {
        "executors": [{"image": IMAGE, "command": ["true"]}],
        "resources": {"backend_parameters": {"backend": "slurm", "runtime": "none"}},
    }
    with hub_client(runtime="none", batch_poll_s="0.5") as client:
        wait(client, client.post("/tasks", json=task).json()["id"])
        start = time.perf_counter()
        ids = [client.post("/tasks", json=task).json()["id"] for _ in range(tasks)]
        states = [wait(client, i, poll=0.05)["state"] for i in ids]
        t_ours = time.perf_counter() - start
    assert set(states) == {"COMPLETE"}, states
    bwrap = "bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev true"
    start = time.perf_counter()
    for _ in range(tasks):
        subprocess.run(
            [
                "sbatch",
                "--quiet",
                "--output=/dev/null",
                "--job-name=bench-raw-many",
                "--wrap",
                bwrap,
            ],
            check=True,
        )
    while not squeue_empty("bench-raw-many"):
        time.sleep(0.05)
    t_raw = time.perf_counter() - start
    print(
        f"{tasks} no-op tasks on the slurm backend (none runtime) vs {tasks} sbatch jobs of the same sandboxed command"
    )
    print(f"toolferry (slurm)  {t_ours:6.1f} s  {tasks / t_ours:6.2f} tasks/s")
    print(f"sbatch, squeue     {t_raw:6.1f} s  {tasks / t_raw:6.2f} jobs/s")
    print(f"ratio of rates toolferry/raw: {t_raw / t_ours:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("wall", "throughput"), default="wall")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    if args.mode == "wall":
        wall(args.runs)
    else:
        throughput(args.tasks)


if __name__ == "__main__":
    main()
