"""The HTTP edge with a fake runtime: status codes, error messages, views, auth, /v1 shape."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.fakes import FakeRuntime

from toolferry.config import Settings
from toolferry.hub import ConfigError, Hub, serve_embedded

TES = "/ga4gh/tes/v1"
TASK: dict[str, Any] = {
    "name": "hello",
    "inputs": [{"path": "/in/a.txt", "content": "secret-ish"}],
    "executors": [{"image": "img", "command": ["echo", "hi"]}],
    "tags": {"project": "p1"},
}


def wait_done(client: httpx.Client, task_id: str, prefix: str = TES) -> dict[str, Any]:
    for _ in range(200):
        task: dict[str, Any] = client.get(f"{prefix}/tasks/{task_id}?view=FULL").json()
        if task["state"] not in ("QUEUED", "INITIALIZING", "RUNNING"):
            return task
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} did not finish")


def count(client: httpx.Client) -> int:
    return len(client.get(f"{TES}/tasks?page_size=2047").json()["tasks"])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{not json", "malformed JSON"),
        ({}, "executors: field required"),
        ({"executors": []}, "executors: at least one executor"),
        ({"executors": [{"image": "i", "command": []}]}, "executors[0].command"),
        ({"executors": [{"image": "i"}]}, "executors[0].command: field required"),
        ({"executors": [{"image": "i", "command": "ls"}]}, "executors[0].command"),
        ({**TASK, "inputs": [{"path": "rel", "content": "x"}]}, "inputs[0].path"),
        ({**TASK, "inputs": [{"path": "/a/../b", "content": "x"}]}, "inputs[0].path"),
        (
            {**TASK, "inputs": [{"path": "/a", "content": "x", "url": "file:///etc/passwd"}]},
            "inputs[0]: set either 'url' or 'content'",
        ),
        (
            {**TASK, "inputs": [{"path": "/a", "url": "file:///etc/passwd"}]},
            "inputs[0].url",
        ),
        ({**TASK, "inputs": [{"path": "/a", "content": "x" * 2_000_000}]}, "inputs[0].content"),
        (
            {
                **TASK,
                "resources": {"backend_parameters": {"zz": "1"}, "backend_parameters_strict": True},
            },
            "resources.backend_parameters.zz",
        ),
        ({**TASK, "resources": {"cpu_cores": 64}}, "resources.cpu_cores: asks for 64 cores"),
        ({**TASK, "resources": {"backend_parameters": {"runtime": "vm"}}}, "runtime 'vm'"),
        ({**TASK, "outputs": [{"path": "/o/x", "url": "gs://b/o"}]}, "scheme 'gs'"),
        ({**TASK, "resources": {"ram_gb": "NaN"}}, "resources.ram_gb"),
        ({**TASK, "resources": {"ram_gb": "Infinity"}}, "resources.ram_gb"),
        ({**TASK, "resources": {"ram_gb": 0.001}}, "resources.ram_gb: must be at least 0.01"),
        (
            {**TASK, "executors": [{"image": "i", "command": ["echo"], "env": {"A": "x\u0000"}}]},
            "executors[0].env.A: must not contain a NUL character",
        ),
        (
            {**TASK, "executors": [{"image": "i", "command": ["echo", "x" * 200_000]}]},
            "executors[0].command[1]: is 200000 bytes",
        ),
        ({**TASK, "description": "a\u0000b"}, "description: must not contain a NUL"),
        (
            {**TASK, "outputs": [{"path": "/o.txt", "url": "http://127.0.0.1:9/o"}]},
            "outputs[0].path: a file directly under / cannot be mounted",
        ),
        (
            {
                **TASK,
                "outputs": [
                    {"path": "/d/a", "url": "http://127.0.0.1:9/same"},
                    {"path": "/d/b", "url": "http://127.0.0.1:9/same"},
                ],
            },
            "outputs: two outputs would both be uploaded to http://127.0.0.1:9/same",
        ),
        (
            {**TASK, "volumes": ["/in/a.txt"]},
            "inputs[0].path: /in/a.txt is also a volume or an output folder",
        ),
    ],
)
def test_bad_tasks_are_400_naming_the_field_and_store_nothing(
    client: httpx.Client, body: Any, needle: str
) -> None:
    before = count(client)
    if isinstance(body, str):
        response = client.post(
            f"{TES}/tasks", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = client.post(f"{TES}/tasks", json=body)
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]
    assert count(client) == before


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("view=EVERYTHING", "view: must be MINIMAL, BASIC or FULL"),
        ("state=DONE", "state: unknown state 'DONE'"),
        ("page_size=2048", "page_size: must be between 1 and 2047"),
        ("page_size=0", "page_size"),
        ("page_size=ten", "page_size"),
        ("page_token=forged", "page_token"),
        ("tag_value=x", "tag_value: more tag_value than tag_key"),
        ("tag_key=k&tag_value=v&tag_key=k&tag_value=", "tag_key: 'k' is given twice"),
    ],
)
def test_bad_list_queries_are_400(client: httpx.Client, query: str, needle: str) -> None:
    response = client.get(f"{TES}/tasks?{query}")
    assert response.status_code == 400
    assert needle in response.json()["detail"]


def test_views(client: httpx.Client) -> None:
    task_id = client.post(f"{TES}/tasks", json=TASK).json()["id"]
    wait_done(client, task_id)
    minimal = client.get(f"{TES}/tasks/{task_id}").json()
    assert minimal == {"id": task_id, "state": "COMPLETE"}
    basic = client.get(f"{TES}/tasks/{task_id}?view=BASIC").json()
    assert "content" not in basic["inputs"][0]
    assert "system_logs" not in basic["logs"][0]
    assert set(basic["logs"][0]["logs"][0]) == {"start_time", "end_time", "exit_code"}
    full = client.get(f"{TES}/tasks/{task_id}?view=FULL").json()
    assert full["inputs"][0]["content"] == "secret-ish"
    assert full["logs"][0]["logs"][0]["stdout"] == "stdout of 0\n"
    assert full["creation_time"].endswith("Z")
    listed = client.get(f"{TES}/tasks?view=BASIC").json()["tasks"]
    assert listed[0]["id"] == task_id and "content" not in listed[0]["inputs"][0]


def test_unknown_task_is_404(client: httpx.Client) -> None:
    assert client.get(f"{TES}/tasks/nope").status_code == 404
    assert client.post(f"{TES}/tasks/nope:cancel").status_code == 404


def test_unsupported_parameters_are_dropped_with_a_warning(client: httpx.Client) -> None:
    body = {**TASK, "resources": {"backend_parameters": {"VmSize": "big", "RUNTIME": "fake"}}}
    task_id = client.post(f"{TES}/tasks", json=body).json()["id"]
    task = wait_done(client, task_id)
    assert task["resources"]["backend_parameters"] == {"runtime": "fake"}
    assert "backend parameter 'VmSize' is not supported" in task["logs"][0]["system_logs"][0]


def test_cancel_of_a_queued_task(hub: Hub, client: httpx.Client) -> None:
    hub.scheduler.stop()  # keep it queued
    task_id = client.post(f"{TES}/tasks", json=TASK).json()["id"]
    assert client.post(f"{TES}/tasks/{task_id}:cancel").json() == {}
    task = client.get(f"{TES}/tasks/{task_id}?view=FULL").json()
    assert task["state"] == "CANCELED"
    assert task["logs"][0]["system_logs"] == ["canceled by the user"]
    assert client.post(f"{TES}/tasks/{task_id}:cancel").status_code == 200  # idempotent


def test_legacy_v1_shape(client: httpx.Client) -> None:
    body = {
        **TASK,
        "executors": [{"image": "img", "command": ["x"], "ignore_error": True}],
        "resources": {"cpu_cores": 1, "backend_parameters": {"runtime": "fake"}},
    }
    task_id = client.post("/v1/tasks", json=body).json()["id"]
    task = wait_done(client, task_id, prefix="/v1")
    assert "ignore_error" not in task["executors"][0]
    assert task["resources"] == {"cpu_cores": 1}
    info = client.get("/v1/tasks/service-info").json()
    assert set(info) == {"name", "doc", "storage"}
    assert client.get("/v1/service-info").json()["type"]["artifact"] == "tes"


def test_service_info(client: httpx.Client, hub: Hub) -> None:
    info = client.get(f"{TES}/service-info").json()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
    assert f"file://{hub.settings.storage_dir}" in info["storage"]
    assert info["tesResources_backend_parameters"] == [
        "backend",
        "encrypt_outputs",
        "max_attempts",
        "network",
        "runtime",
        "time_limit_initializing_s",
        "time_limit_queued_s",
        "time_limit_running_s",
    ]
    for key in ("id", "name", "organization", "version"):
        assert info[key]


def test_tokens_turn_auth_on_and_scope_tasks(hub: Hub, client: httpx.Client) -> None:
    _, alice = hub.tokens.create("alice")
    _, bob = hub.tokens.create("bob")
    _, admin = hub.tokens.create("root", admin=True)
    hub.authenticate._auto_cache = (0.0, False)  # skip the 1 s cache
    assert client.get(f"{TES}/tasks").status_code == 401
    assert client.get(f"{TES}/tasks", headers={"Authorization": "Bearer nope"}).status_code == 401

    def h(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    task_id = client.post(f"{TES}/tasks", json=TASK, headers=h(alice)).json()["id"]
    assert client.get(f"{TES}/tasks/{task_id}", headers=h(bob)).status_code == 404
    assert client.post(f"{TES}/tasks/{task_id}:cancel", headers=h(bob)).status_code == 404
    assert client.get(f"{TES}/tasks", headers=h(bob)).json()["tasks"] == []
    assert len(client.get(f"{TES}/tasks", headers=h(admin)).json()["tasks"]) == 1
    basic = client.get(f"{TES}/tasks/{task_id}", auth=("anyone", alice))
    assert basic.status_code == 200


def test_public_bind_needs_auth(hub: Hub) -> None:
    hub.check_bind("127.0.0.1")
    with pytest.raises(ConfigError, match="no token exists"):
        hub.check_bind("0.0.0.0")
    hub.tokens.create("alice")
    hub.check_bind("0.0.0.0")


def test_openapi_documents_both_prefixes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/ga4gh/tes/v1/tasks/{id}:cancel" in paths
    assert "/v1/tasks/service-info" in paths


def test_the_in_process_secret_acts_as_the_local_operator(hub: Hub, client: httpx.Client) -> None:
    hub.tokens.create("alice")
    hub.authenticate._auto_cache = (0.0, False)
    assert client.get(f"{TES}/tasks").status_code == 401
    headers = {"Authorization": f"Bearer {hub.local_secret}"}
    assert client.get(f"{TES}/tasks", headers=headers).status_code == 200


def test_a_wrong_method_is_405_listing_every_allowed_one(client: httpx.Client) -> None:
    response = client.request("DELETE", f"{TES}/tasks")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert "DELETE is not allowed here" in response.json()["detail"]


def test_one_hub_per_data_dir(hub: Hub, tmp_path: Path) -> None:
    import json
    import stat

    from toolferry.hub import HubBusy

    info = json.loads((tmp_path / "hub.json").read_text())
    assert info["secret"] == hub.local_secret and info["url"].startswith("http://127.0.0.1:")
    assert stat.S_IMODE((tmp_path / "hub.json").stat().st_mode) == 0o600
    # flock is per open file, so a second hub in this process is refused like another process.
    with pytest.raises(HubBusy, match="another hub"), serve_embedded(hub.settings):
        pass


def test_a_stopped_hub_frees_its_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    for _ in range(2):
        with serve_embedded(settings, runtimes={"fake": FakeRuntime()}):
            assert (tmp_path / "hub.json").exists()
        assert not (tmp_path / "hub.json").exists()


def test_revoking_the_last_token_keeps_a_public_hub_locked(hub: Hub, client: httpx.Client) -> None:
    record, _ = hub.tokens.create("alice")
    hub.check_bind("0.0.0.0")
    hub.tokens.revoke(record.id)
    hub.authenticate._auto_cache = (0.0, False)
    assert client.get(f"{TES}/tasks").status_code == 401


def test_an_empty_inline_input_is_an_empty_file(client: httpx.Client) -> None:
    body = {**TASK, "inputs": [{"path": "/in/empty", "content": ""}]}
    task_id = client.post(f"{TES}/tasks", json=body).json()["id"]
    assert wait_done(client, task_id)["state"] == "COMPLETE"


def test_paths_the_runtime_cannot_use_are_refused(client: httpx.Client) -> None:
    body = {**TASK, "volumes": ["/forbidden"]}
    response = client.post(f"{TES}/tasks", json=body)
    assert response.status_code == 400
    assert response.json()["detail"] == "volumes[0]: /forbidden is off limits (runtime fake)"


def test_limits_a_runtime_cannot_enforce_are_noted(client: httpx.Client) -> None:
    body = {**TASK, "resources": {"cpu_cores": 1, "ram_gb": 0.5}}
    task = wait_done(client, client.post(f"{TES}/tasks", json=body).json()["id"])
    notes = task["logs"][0]["system_logs"]
    assert "runtime fake does not limit cpu_cores; they are reserved for scheduling only" in notes
    assert "runtime fake does not limit ram_gb; it is reserved for scheduling only" in notes


def test_a_body_that_is_not_json_is_named(client: httpx.Client) -> None:
    response = client.post(f"{TES}/tasks", content="hello", headers={"content-type": "text/plain"})
    assert response.status_code == 400
    assert "must be a JSON object" in response.json()["detail"]


def test_every_get_route_answers_head_without_a_body(client: httpx.Client) -> None:
    for path in (f"{TES}/service-info", f"{TES}/tasks", "/oai?verb=Identify", "/healthz"):
        got, head = client.get(path), client.head(path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-length"] == str(len(got.content)), path
        assert head.headers["content-type"] == got.headers["content-type"], path


def test_revoking_every_token_does_not_switch_authentication_off(
    hub: Hub, client: httpx.Client
) -> None:
    record, secret = hub.tokens.create("alice")
    hub.authenticate._auto_cache = (0.0, False)  # as if the last check were long ago
    assert client.get(f"{TES}/tasks").status_code == 401
    assert hub.tokens.revoke(record.id)
    hub.authenticate._auto_cache = (0.0, False)
    assert client.get(f"{TES}/tasks").status_code == 401
    assert (
        client.get(f"{TES}/tasks", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )
