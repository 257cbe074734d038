"""/api/v1/agent/files: a site's agent reads and writes the hub's file store only where its
own tasks, not ended, name hub:// inputs and outputs."""

from __future__ import annotations

import httpx

from toolferry.domain.task import Executor, FileType, Input, Output, Resources, TaskSpec
from toolferry.hub import Hub
from toolferry.security.identity import LOCAL


def setup_task(hub: Hub) -> tuple[str, str, str]:
    """(site token, space, task id) of a task at site-x with a hub:// input and output."""
    _, token = hub.sites.enrol("site-x")
    space = hub.files.create_space("local")
    hub.files.write(space, "in/notes.txt", iter([b"hello\n"]))
    hub.files.write(space, "in/secret.txt", iter([b"not for the site\n"]))
    spec = TaskSpec(
        executors=(Executor(image="i", command=("true",)),),
        inputs=(Input(path="/in/n.txt", url=f"hub://{space}/in/notes.txt"),),
        outputs=(
            Output(path="/out/r", url=f"hub://{space}/out/r", type=FileType.DIRECTORY),
            Output(path="/out/one.txt", url=f"hub://{space}/out/one.txt"),
        ),
        resources=Resources(backend_parameters={"site": "site-x"}),
    )
    return token, space, hub.tasks.submit(spec, LOCAL).id


def agent(url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{url}/api/v1/agent/files", headers={"authorization": f"Bearer {token}"}
    )


def test_the_agent_reads_its_tasks_inputs_and_nothing_else(
    served: tuple[Hub, str],
) -> None:
    hub, url = served
    token, space, _ = setup_task(hub)
    with agent(url, token) as client:
        got = client.get(f"/{space}/in/notes.txt")
        assert (got.status_code, got.content) == (200, b"hello\n")
        refused = client.get(f"/{space}/in/secret.txt")
        assert refused.status_code == 404
        assert "no input of this site's tasks" in refused.json()["detail"]
    with agent(url, "tfs_wrong") as client:
        assert client.get(f"/{space}/in/notes.txt").status_code == 401


def test_the_agent_writes_where_its_tasks_send_outputs(served: tuple[Hub, str]) -> None:
    hub, url = served
    token, space, task_id = setup_task(hub)
    with agent(url, token) as client:
        written = client.put(f"/{space}/out/r/result.txt", content=b"42\n")
        assert written.status_code == 201, written.text
        assert hub.files.path_in(space, "out/r/result.txt").read_bytes() == b"42\n"
        assert client.put(f"/{space}/in/notes.txt", content=b"x").status_code == 404
        assert client.put(f"/{space}/out/one.txt", content=b"1").status_code == 201
        # A FILE output is that file only, not a folder to write below.
        assert client.put(f"/{space}/out/one.txt/x", content=b"x").status_code == 404
        assert client.put(f"/{space}/out/r/../../in/x", content=b"x").status_code in (400, 404)
        hub.tasks.cancel(task_id, LOCAL)  # ended at the hub (never handed out)
        assert client.put(f"/{space}/out/r/late.txt", content=b"x").status_code == 404
        assert client.get(f"/{space}/in/notes.txt").status_code == 404
