"""Real, unmodified TES clients against a real hub: py-tes 1.1.x (TES 1.1 at /ga4gh/tes/v1)
and py-tes 0.4.2 (TES 1.0 shape at /v1, run in its own venv since it cannot share one).

Both build strict attrs classes from every answer: a field or state they do not know fails.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import tes
from tests.integration.tes.tessupport import (
    TEST_IMAGE,
    RunningHub,
    containers_gone,
    file_url,
)

pytestmark = pytest.mark.integration


def test_pytes_is_1_1() -> None:
    import importlib.metadata

    assert importlib.metadata.version("py-tes").startswith("1.1.")


def _wait_state(client: tes.HTTPClient, task_id: str, states: set[str], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        task = client.get_task(task_id, view="MINIMAL")
        if task.state in states:
            return task
        assert time.monotonic() < deadline, f"{task_id} stayed {task.state}, expected {states}"
        time.sleep(0.05)


def test_pytes_1_1_service_info(docker_hub: RunningHub) -> None:
    info = tes.HTTPClient(docker_hub.url).get_service_info()
    assert isinstance(info, tes.ServiceInfo)
    assert info.type["artifact"] == "tes"
    assert info.name and info.id and info.version
    assert file_url(docker_hub.storage) in info.storage
    assert "runtime" in info.tes_resources_backend_parameters


def test_pytes_1_1_create_wait_get_list(docker_hub: RunningHub) -> None:
    client = tes.HTTPClient(docker_hub.url, timeout=10)
    name = f"pytes11-{uuid.uuid4().hex[:8]}"
    out = docker_hub.storage / name
    task = tes.Task(
        name=name,
        description="py-tes 1.1 round trip",
        tags={"client": "py-tes"},
        inputs=[tes.Input(path="/data/in.txt", content="hello from py-tes\n")],
        outputs=[tes.Output(path="/out/copy.txt", url=file_url(out / "copy.txt"))],
        resources=tes.Resources(cpu_cores=1, backend_parameters={"runtime": "docker"}),
        volumes=["/vol/A"],
        executors=[
            tes.Executor(
                image=TEST_IMAGE,
                command=["sh", "-c", "cat /data/in.txt; cp /data/in.txt /out/copy.txt; echo e >&2"],
                env={"X": "1"},
                workdir="/out",
            ),
            tes.Executor(image=TEST_IMAGE, command=["sh", "-c", "exit 2"], ignore_error=True),
        ],
    )
    task_id = client.create_task(task)
    assert isinstance(task_id, str) and task_id

    done = client.wait(task_id, timeout=20)
    assert done.state == "COMPLETE"

    full = client.get_task(task_id, view="FULL")
    assert isinstance(full, tes.Task)
    assert full.name == name and full.tags == {"client": "py-tes"}
    assert full.inputs[0].content == "hello from py-tes\n"
    (log,) = full.logs
    assert [e.exit_code for e in log.logs] == [0, 2]
    assert log.logs[0].stdout == "hello from py-tes\n" and log.logs[0].stderr == "e\n"
    assert log.start_time is not None and log.end_time is not None
    assert [(o.path, o.size_bytes) for o in log.outputs] == [("/out/copy.txt", 18)]
    assert isinstance(log.system_logs, list)
    assert (out / "copy.txt").read_text() == "hello from py-tes\n"

    basic = client.get_task(task_id, view="BASIC")
    assert basic.inputs[0].content is None
    assert basic.logs[0].logs[0].stdout is None and basic.logs[0].system_logs is None
    assert basic.executors[1].ignore_error is True

    minimal = client.get_task(task_id, view="MINIMAL")
    assert (minimal.id, minimal.state, minimal.executors) == (task_id, "COMPLETE", None)

    listed = client.list_tasks(view="BASIC")
    assert task_id in [t.id for t in listed.tasks]
    client.create_task(tes.Task(executors=[tes.Executor(image=TEST_IMAGE, command=["true"])]))
    first = client.list_tasks(view="MINIMAL", page_size=1)
    assert len(first.tasks) == 1 and first.next_page_token
    second = client.list_tasks(view="MINIMAL", page_size=1, page_token=first.next_page_token)
    assert second.tasks[0].id != first.tasks[0].id


def test_pytes_1_1_cancel(docker_hub: RunningHub) -> None:
    client = tes.HTTPClient(docker_hub.url)
    task_id = client.create_task(
        tes.Task(executors=[tes.Executor(image=TEST_IMAGE, command=["sleep", "30"])])
    )
    _wait_state(client, task_id, {"RUNNING"})
    assert client.cancel_task(task_id) is None
    assert _wait_state(client, task_id, {"CANCELED"}).state == "CANCELED"
    assert containers_gone(task_id)


def test_pytes_1_1_errors_surface_as_http_errors(docker_hub: RunningHub) -> None:
    import requests

    client = tes.HTTPClient(docker_hub.url)
    with pytest.raises(requests.HTTPError) as bad:
        client.create_task(tes.Task(executors=[tes.Executor(image=TEST_IMAGE, command=[])]))
    assert bad.value.response.status_code == 400
    with pytest.raises(requests.HTTPError) as missing:
        client.get_task("no-such-task")
    assert missing.value.response.status_code == 404


# -- py-tes 0.4.2, in its own interpreter --------------------------------------------------------

PYTES04_SCRIPT = r"""
import json
import sys
import time

import tes

url, out_dir, image = sys.argv[1:4]
client = tes.HTTPClient(url, timeout=10)
result = {}

info = client.get_service_info()
result["service_info"] = info.as_dict()

task = tes.Task(
    name="pytes04-round-trip",
    description="py-tes 0.4.2",
    tags={"client": "py-tes 0.4.2"},
    inputs=[tes.Input(path="/data/in.txt", content="hello from 0.4\n")],
    outputs=[tes.Output(path="/out/copy.txt", url="file://" + out_dir + "/copy.txt")],
    resources=tes.Resources(cpu_cores=1),
    volumes=["/vol/A"],
    executors=[
        tes.Executor(
            image=image,
            command=["sh", "-c", "cat /data/in.txt; cp /data/in.txt /out/copy.txt; echo err >&2"],
            env={"X": "1"},
        )
    ],
)
task_id = client.create_task(task)
result["id"] = task_id
# wait() swallows every error until its timeout: one get_task first shows the real one.
client.get_task(task_id, "MINIMAL")
result["wait"] = client.wait(task_id, timeout=20).state
for view in ("MINIMAL", "BASIC", "FULL"):
    result[view] = json.loads(client.get_task(task_id, view=view).as_json())

client.create_task(tes.Task(executors=[tes.Executor(image=image, command=["true"])]))
listed = client.list_tasks(view="BASIC")
result["list_ids"] = [t.id for t in listed.tasks]
result["list_full"] = [json.loads(t.as_json()) for t in client.list_tasks(view="FULL").tasks]
page = client.list_tasks(view="MINIMAL", page_size=1)
result["page1"] = [t.id for t in page.tasks]
result["page1_token"] = page.next_page_token
page2 = client.list_tasks(view="MINIMAL", page_size=1, page_token=page.next_page_token)
result["page2"] = [t.id for t in page2.tasks]

sleeper = client.create_task(
    tes.Task(executors=[tes.Executor(image=image, command=["sleep", "30"])])
)
result["sleeper"] = sleeper
deadline = time.time() + 10
while client.get_task(sleeper, "MINIMAL").state != "RUNNING" and time.time() < deadline:
    time.sleep(0.05)
result["sleeper_before_cancel"] = client.get_task(sleeper, "MINIMAL").state
client.cancel_task(sleeper)
result["sleeper_after_cancel"] = client.wait(sleeper, timeout=10).state
result["sleeper_full"] = json.loads(client.get_task(sleeper, "FULL").as_json())

try:
    client.get_task("no-such-task")
except Exception as exc:
    result["missing"] = getattr(getattr(exc, "response", None), "status_code", repr(exc))
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def pytes04_run(docker_hub: RunningHub, pytes04_python: Path) -> dict[str, Any]:
    out_dir = docker_hub.storage / f"pytes04-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [str(pytes04_python), "-c", PYTES04_SCRIPT, docker_hub.url, str(out_dir), TEST_IMAGE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"py-tes 0.4.2 failed:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["out_dir"] = out_dir
    return result


def test_pytes04_service_info(pytes04_run: dict[str, Any], docker_hub: RunningHub) -> None:
    info = pytes04_run["service_info"]
    assert info["name"] and file_url(docker_hub.storage) in info["storage"]


def test_pytes04_create_wait_and_views(pytes04_run: dict[str, Any]) -> None:
    task_id = pytes04_run["id"]
    assert pytes04_run["wait"] == "COMPLETE"
    assert pytes04_run["MINIMAL"] == {"id": task_id, "state": "COMPLETE"}
    full, basic = pytes04_run["FULL"], pytes04_run["BASIC"]
    assert full["name"] == "pytes04-round-trip" and full["tags"] == {"client": "py-tes 0.4.2"}
    assert full["inputs"][0]["content"] == "hello from 0.4\n"
    (log,) = full["logs"]
    (exe,) = log["logs"]
    assert (exe["exit_code"], exe["stdout"], exe["stderr"]) == (0, "hello from 0.4\n", "err\n")
    assert log["outputs"][0]["path"] == "/out/copy.txt" and log["outputs"][0]["size_bytes"] == 15
    assert "content" not in basic["inputs"][0]
    assert "stdout" not in basic["logs"][0]["logs"][0]
    assert "system_logs" not in basic["logs"][0]
    assert (pytes04_run["out_dir"] / "copy.txt").read_text() == "hello from 0.4\n"


def test_pytes04_list_and_pages(pytes04_run: dict[str, Any]) -> None:
    assert pytes04_run["id"] in pytes04_run["list_ids"]
    assert pytes04_run["id"] in [t["id"] for t in pytes04_run["list_full"]]
    assert len(pytes04_run["page1"]) == 1 and pytes04_run["page1_token"]
    assert len(pytes04_run["page2"]) == 1 and pytes04_run["page2"] != pytes04_run["page1"]


def test_pytes04_cancel(pytes04_run: dict[str, Any], docker_hub: RunningHub) -> None:
    assert pytes04_run["sleeper_before_cancel"] == "RUNNING"
    assert pytes04_run["sleeper_after_cancel"] == "CANCELED"
    final = docker_hub.api.wait(pytes04_run["sleeper"])
    assert final["state"] == "CANCELED"
    assert containers_gone(pytes04_run["sleeper"])


def test_pytes04_unknown_task_is_404(pytes04_run: dict[str, Any]) -> None:
    assert pytes04_run["missing"] == 404
