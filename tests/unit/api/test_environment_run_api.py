"""Tasks made from a version's tool interface (POST .../versions/{v}:run)."""

from __future__ import annotations

from typing import Any

import httpx

ENVS = "/api/v1/environments"
TES = "/ga4gh/tes/v1"
DIGEST = "sha256:" + "a" * 64


def entry(**changes: Any) -> dict[str, Any]:
    return {
        "name": "lab/count",
        "kind": "oci-image",
        "digest": DIGEST,
        "classification": {
            "title": "Counter",
            "content_type": "oci",
            "location": f"127.0.0.1:5000/lab/count@{DIGEST}",
            "minimal_hardware": {"cpu_cores": 1, "ram_gb": 0.5},
        },
        "interface": {
            "command": ["wc", "-{mode}", "{text}"],
            "inputs": [{"name": "text", "path": "/data/text.txt"}],
            "outputs": [{"name": "out", "path": "/out/count.txt", "default_url": "hub://x/y"}],
            "parameters": [{"name": "mode", "default": "l"}],
        },
        **changes,
    }


def test_a_task_is_made_from_the_interface(client: httpx.Client) -> None:
    assert client.post(ENVS, json=entry()).status_code == 201
    dry = client.post(
        f"{ENVS}/lab/count/versions/1:run",
        json={"bindings": {"text": "https://example.org/t.txt", "mode": "w"}, "dry_run": True},
    )
    assert dry.status_code == 200, dry.text
    task = dry.json()["task"]
    assert task["executors"] == [
        {"image": "catalogue:lab/count:1", "command": ["wc", "-w", "/data/text.txt"], "env": {}}
    ]
    assert task["inputs"][0]["url"] == "https://example.org/t.txt"
    assert task["resources"] == {"cpu_cores": 1, "ram_gb": 0.5}
    assert "id" not in dry.json()


def test_missing_bindings_and_missing_interfaces_are_400s(client: httpx.Client) -> None:
    assert client.post(ENVS, json=entry()).status_code == 201
    missing = client.post(f"{ENVS}/lab/count/versions/1:run", json={})
    assert missing.status_code == 400 and "missing: text" in missing.json()["detail"]
    unknown = client.post(f"{ENVS}/lab/count/versions/1:run", json={"bindings": {"nope": "1"}})
    assert unknown.status_code == 400 and "unknown names: nope" in unknown.json()["detail"]
    bare = entry(name="lab/bare")
    del bare["interface"]
    assert client.post(ENVS, json=bare).status_code == 201
    none = client.post(f"{ENVS}/lab/bare/versions/1:run", json={})
    assert none.status_code == 400 and "no tool interface" in none.json()["detail"]
    assert client.post(f"{ENVS}/lab/nothing/versions/1:run", json={}).status_code == 404


def test_a_run_is_submitted_pinned_to_the_entry(client: httpx.Client) -> None:
    assert client.post(ENVS, json=entry()).status_code == 201
    space = client.post("/toolferry/v1/files").json()["id"]
    assert client.put(f"/toolferry/v1/files/{space}/t.txt", content=b"a b\n").status_code == 201
    answer = client.post(
        f"{ENVS}/lab/count/versions/1:run",
        json={
            "bindings": {"text": f"hub://{space}/t.txt", "out": f"hub://{space}/count.txt"},
            "name": "count",
        },
    )
    assert answer.status_code == 200, answer.text
    task = client.get(f"{TES}/tasks/{answer.json()['id']}?view=FULL").json()
    assert task["name"] == "count"
    assert task["executors"][0]["image"] == f"127.0.0.1:5000/lab/count@{DIGEST}"
    assert task["logs"][0]["metadata"]["environment:executors[0]"] == f"lab/count:1@{DIGEST}"
