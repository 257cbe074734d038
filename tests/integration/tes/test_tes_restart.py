"""Hub restarts: tasks queued or running when the hub stops are carried on by the next hub.

The first hub runs in a child process (``serve_embedded`` there, left normally, then the
process ends), because in this process the stopped hub's worker threads would live on and keep
working on the same tasks, which a real restart does not allow. The second hub runs here.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import services
from tests.integration.tes.tessupport import (
    HubFactory,
    TesApi,
    containers_gone,
    file_url,
    processes_with,
    sh,
    task_containers,
    wait_for,
)

pytestmark = pytest.mark.integration

HUB_SCRIPT = r"""
import json, os, sys
from toolferry.config import Settings
from toolferry.hub import serve_embedded

with serve_embedded(Settings(**json.loads(sys.argv[1]))) as (hub, url):
    print(url, flush=True)
    sys.stdin.readline()  # the test says when to stop
print("stopped", flush=True)
os._exit(0)  # the process ends, and every thread of the old hub with it
"""


@contextmanager
def hub_process(settings: dict[str, Any], log: Path) -> Iterator[TesApi]:
    """A hub in a child process; leaving the block stops it (the serve_embedded context
    ends) and waits for the process to exit."""
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
        assert proc.stdin is not None and proc.stdout is not None
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            url = proc.stdout.readline().strip() if ready else ""
            assert url.startswith("http://"), f"the hub did not start: {log.read_text()[-2000:]}"
            api = TesApi(url)
            try:
                yield api
            finally:
                api.close()
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _settings(data_dir: Path, **fields: Any) -> dict[str, Any]:
    return {"data_dir": str(data_dir), **fields}


def test_queued_task_runs_after_a_restart(
    start_hub: HubFactory, busybox_image: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    out = data / "storage" / "queued.txt"
    with hub_process(
        _settings(data, runtime="docker", capacity_cpus=1), tmp_path / "hub1.log"
    ) as api:
        blocker = api.create({"executors": [sh("sleep 30")]})
        api.wait(blocker, until=frozenset({"RUNNING"}))
        queued = api.create(
            {
                "outputs": [{"path": "/out/q", "url": file_url(out)}],
                "executors": [sh("echo ran after the restart > /out/q")],
            }
        )
        time.sleep(0.3)
        assert api.get(queued)["state"] == "QUEUED"
    # More room after the restart: the queued task fits next to the re-attached blocker.
    second = start_hub(data_dir=data, runtime="docker", capacity_cpus=2)
    task = second.api.wait(queued, timeout=20)
    assert task["state"] == "COMPLETE", task
    assert out.read_text() == "ran after the restart\n"
    assert second.api.get(blocker)["state"] == "RUNNING", "the blocker was re-attached"


def _restart_running(
    start_hub: HubFactory, tmp_path: Path, runtime: str, is_running: Any
) -> tuple[TesApi, str, Path]:
    data = tmp_path / "data"
    out = data / "storage" / "x"
    with hub_process(_settings(data, runtime=runtime), tmp_path / "hub1.log") as api:
        task_id = api.create(
            {
                "outputs": [{"path": "/out/x", "url": file_url(out)}],
                "executors": [sh("sleep 3; echo done > /out/x")],
            }
        )
        api.wait(task_id, until=frozenset({"RUNNING"}))
        wait_for(lambda: is_running(task_id), "the executor to start")
    assert is_running(task_id), "the executor must outlive the hub for this test"
    second = start_hub(data_dir=data, runtime=runtime)
    return second.api, task_id, out


def _assert_finished_once(api: TesApi, task_id: str, out: Path) -> None:
    """The re-attached task completed in its one attempt and uploaded its output."""
    task = api.wait(task_id, timeout=20)
    assert task["state"] == "COMPLETE", task
    assert out.read_text() == "done\n"
    (log,) = task["logs"]
    assert [e["exit_code"] for e in log["logs"]] == [0]
    assert log["outputs"] == [{"url": file_url(out), "path": "/out/x", "size_bytes": "5"}]


def test_running_docker_task_is_reattached_after_a_restart(
    start_hub: HubFactory, busybox_image: str, tmp_path: Path
) -> None:
    def is_running(task_id: str) -> bool:
        return task_containers(task_id).get(f"toolferry-{task_id}-0") == "running"

    api, task_id, out = _restart_running(start_hub, tmp_path, "docker", is_running)
    _assert_finished_once(api, task_id, out)
    assert containers_gone(task_id), "the container is removed once its end was read"


def test_running_none_runtime_task_is_reattached_after_a_restart(
    start_hub: HubFactory, bwrap: str, tmp_path: Path
) -> None:
    def is_running(task_id: str) -> bool:
        # The sandbox's processes carry the task's work dir (…/work/<task id>/…) in their
        # arguments; the hub process does not know the task id.
        return bool(processes_with(task_id))

    api, task_id, out = _restart_running(start_hub, tmp_path, "none", is_running)
    _assert_finished_once(api, task_id, out)


def test_container_removed_while_the_hub_was_down_is_a_system_error(
    start_hub: HubFactory, busybox_image: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with hub_process(_settings(data, runtime="docker"), tmp_path / "hub1.log") as api:
        task_id = api.create({"executors": [sh("sleep 30")]})
        name = f"toolferry-{task_id}-0"
        wait_for(lambda: task_containers(task_id).get(name) == "running", "the container")
    removed = services.docker("rm", "-f", name)
    assert removed.returncode == 0, removed.stderr
    second = start_hub(data_dir=data, runtime="docker")
    task = second.api.wait(task_id, timeout=10)
    assert task["state"] == "SYSTEM_ERROR", task
    lines = [line for log in task["logs"] for line in log.get("system_logs", [])]
    causes = ("disappeared", "removed", "no longer exists", "gone")
    assert any(any(c in line for c in causes) for line in lines), lines
    assert task["logs"][-1].get("end_time"), "an ended attempt has an end_time"


def test_a_restart_sweeps_containers_of_ended_tasks(busybox_image: str, tmp_path: Path) -> None:
    """A container a killed hub never removed (its task had ended) goes at the next start;
    containers of tasks this hub does not know are left alone."""
    data = tmp_path / "data"
    with hub_process(_settings(data, runtime="docker"), tmp_path / "hub1.log") as api:
        task_id = api.create({"executors": [sh("true")]})
        assert api.wait(task_id)["state"] == "COMPLETE"
    # What a killed hub leaves: an exited container labelled with the ended task (and one of
    # a task this hub never had).
    names = {"leftover": task_id, "stranger": "not-ours-000"}
    for name, label in names.items():
        created = services.docker(
            "create", "--name", f"tf-test-{name}-{task_id}", "--label",
            f"toolferry.task={label}", busybox_image, "true",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    try:
        with hub_process(_settings(data, runtime="docker"), tmp_path / "hub2.log") as again:
            assert again.get(task_id)["state"] == "COMPLETE"
            assert containers_gone(task_id)
        assert services.docker("inspect", f"tf-test-stranger-{task_id}").returncode == 0
    finally:
        services.docker("rm", "-f", *(f"tf-test-{name}-{task_id}" for name in names))


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15])
def test_a_hub_killed_between_executors_never_runs_one_twice(
    busybox_image: str, tmp_path: Path, delay: float
) -> None:
    """SIGKILL right after executor 0 ends (while executor 1 is being started): after the
    restart each executor has run exactly once and is recorded once."""
    data = tmp_path / "data"
    log = data / "storage" / "log.txt"
    settings = _settings(data, runtime="docker")
    with (tmp_path / "hub1.log").open("ab") as hub_log:
        proc = subprocess.Popen(
            [sys.executable, "-c", HUB_SCRIPT, json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=hub_log,
            text=True,
        )
    try:
        assert proc.stdout is not None
        api = TesApi(proc.stdout.readline().strip())
        task_id = api.create(
            {
                "volumes": ["/w"],
                "outputs": [{"path": "/w/log", "url": file_url(log)}],
                "executors": [sh("echo e0 >> /w/log"), sh("echo e1 >> /w/log; sleep 1")],
            }
        )
        watch = ["docker", "events", "--filter", f"label=toolferry.task={task_id}",
                 "--filter", "event=die", "--format", "{{.Actor.Attributes.name}}"]  # fmt: skip
        with subprocess.Popen(watch, stdout=subprocess.PIPE, text=True) as events:
            assert events.stdout is not None
            for line in events.stdout:
                if line.strip().endswith("-0"):
                    break
            time.sleep(delay)
            proc.kill()
            events.kill()
        api.close()
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
    with hub_process(settings, tmp_path / "hub2.log") as again:
        task = again.wait(task_id, timeout=30)
        assert task["state"] == "COMPLETE", task
        assert [e["exit_code"] for e in again.get(task_id, "FULL")["logs"][-1]["logs"]] == [0, 0]
    assert log.read_text().split() == ["e0", "e1"]
