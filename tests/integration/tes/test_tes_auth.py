"""Who may do what over the TES API once tokens exist: 401 without a valid token, users see
only their own tasks (others' are 404, as if they did not exist), admins see everything.
Both auth modes that enforce tokens are covered: ``token`` and ``auto`` with a token created.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import requests
import tes
from tests.integration.tes.tessupport import (
    LEGACY_PREFIX,
    TES_PREFIX,
    TEST_IMAGE,
    RunningHub,
    TesApi,
    error_detail,
    running_hub,
    sh,
)

from toolferry.config import Settings

pytestmark = pytest.mark.integration


@dataclass
class AuthHub:
    running: RunningHub
    alice: TesApi
    bob: TesApi
    admin: TesApi
    secrets: dict[str, str]


@pytest.fixture(scope="module", params=["token", "auto"])
def auth_hub(
    request: pytest.FixtureRequest, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthHub]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("tes-auth") / "data", runtime="docker", auth=request.param
    )
    with running_hub(settings) as running:
        secrets = {}
        for user, admin in (("alice", False), ("bob", False), ("root", True)):
            _, secrets[user] = running.hub.tokens.create(user, admin=admin)
        yield AuthHub(
            running=running,
            alice=running.client(secrets["alice"]),
            bob=running.client(secrets["bob"]),
            admin=running.client(secrets["root"]),
            secrets=secrets,
        )


ROUTES = [
    ("GET", "/tasks"),
    ("POST", "/tasks"),
    ("GET", "/tasks/some-id"),
    ("POST", "/tasks/some-id:cancel"),
]


def _call(hub: AuthHub, prefix: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    body = {"executors": [sh("true")]} if method == "POST" and path == "/tasks" else None
    with httpx.Client(base_url=hub.running.url) as raw:
        return raw.request(method, prefix + path, json=body, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", [TES_PREFIX, LEGACY_PREFIX])
@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer", "Basic " + base64.b64encode(b"alice:wrong").decode(), "Token abc"],
    ids=["none", "wrong-bearer", "empty-bearer", "wrong-basic", "unknown-scheme"],
)  # fmt: skip
def test_requests_without_a_valid_token_are_401(
    auth_hub: AuthHub, prefix: str, method: str, path: str, authorization: str | None
) -> None:
    before = auth_hub.admin.count()
    headers = {"Authorization": authorization} if authorization else {}
    response = _call(auth_hub, prefix, method, path, headers=headers)
    error_detail(response, 401)
    assert "www-authenticate" in response.headers, "RFC 9110: a 401 carries a challenge"
    assert auth_hub.admin.count() == before, "nothing may be stored"


def test_revoked_token_is_401(auth_hub: AuthHub) -> None:
    record, secret = auth_hub.running.hub.tokens.create("carol")
    api = auth_hub.running.client(secret)
    api.list()
    auth_hub.running.hub.tokens.revoke(record.id)
    error_detail(api.request("GET", "/tasks"), 401)


def test_users_see_and_cancel_only_their_own_tasks(auth_hub: AuthHub) -> None:
    name = f"own-{uuid.uuid4().hex[:8]}"
    mine = auth_hub.alice.create({"name": name, "executors": [sh("sleep 30")]})
    theirs = auth_hub.bob.create({"name": name, "executors": [sh("true")]})
    auth_hub.alice.wait(mine, until=frozenset({"RUNNING"}))

    # Bob cannot tell alice's task exists: 404 for every operation on it.
    for view in (None, "MINIMAL", "BASIC", "FULL"):
        params = {"view": view} if view else {}
        assert mine in error_detail(
            auth_hub.bob.request("GET", f"/tasks/{mine}", params=params), 404
        )
    error_detail(auth_hub.bob.request("POST", f"/tasks/{mine}:cancel"), 404)
    assert auth_hub.alice.get(mine)["state"] == "RUNNING", "bob's cancel changed nothing"

    assert [t["id"] for t in auth_hub.alice.all_tasks(name_prefix=name)] == [mine]
    assert [t["id"] for t in auth_hub.bob.all_tasks(name_prefix=name)] == [theirs]
    assert {t["id"] for t in auth_hub.admin.all_tasks(name_prefix=name)} == {mine, theirs}
    for state in ("RUNNING", "QUEUED", "COMPLETE"):
        listed = {t["id"] for t in auth_hub.bob.all_tasks(state=state)}
        assert mine not in listed

    # The admin sees and may cancel anyone's task.
    assert auth_hub.admin.get(mine, "FULL")["name"] == name
    auth_hub.admin.cancel(mine)
    assert auth_hub.alice.wait(mine)["state"] == "CANCELED"


def test_http_basic_with_the_token_as_password(auth_hub: AuthHub) -> None:
    with httpx.Client(
        base_url=auth_hub.running.url, auth=("alice", auth_hub.secrets["alice"])
    ) as c:
        response = c.get(f"{TES_PREFIX}/tasks")
        assert response.status_code == 200, response.text
    # A real client that only speaks Basic: py-tes 1.1 with user and password.
    client = tes.HTTPClient(auth_hub.running.url, user="alice", password=auth_hub.secrets["alice"])
    task_id = client.create_task(
        tes.Task(name="basic-auth", executors=[tes.Executor(image=TEST_IMAGE, command=["true"])])
    )
    assert client.wait(task_id, timeout=20).state == "COMPLETE"
    assert task_id in [t["id"] for t in auth_hub.alice.all_tasks()]
    assert task_id not in [t["id"] for t in auth_hub.bob.all_tasks()]


def test_pytes_with_a_bearer_token(auth_hub: AuthHub) -> None:
    client = tes.HTTPClient(auth_hub.running.url, token=auth_hub.secrets["bob"])
    task_id = client.create_task(
        tes.Task(executors=[tes.Executor(image=TEST_IMAGE, command=["true"])])
    )
    assert client.get_task(task_id, "MINIMAL").id == task_id
    anonymous = tes.HTTPClient(auth_hub.running.url)
    with pytest.raises(requests.HTTPError) as refused:
        anonymous.get_task(task_id)
    assert refused.value.response.status_code == 401


def test_a_hub_file_space_is_usable_only_by_its_owner(auth_hub: AuthHub) -> None:
    created = auth_hub.alice.http.post("/toolferry/v1/files")
    assert created.status_code == 201, created.text
    space = created.json()["id"]
    put = auth_hub.alice.http.put(f"/toolferry/v1/files/{space}/in.txt", content=b"alice's\n")
    assert put.status_code == 201, put.text
    task = {
        "inputs": [{"path": "/in/x", "url": f"hub://{space}/in.txt"}],
        "outputs": [{"path": "/in/x", "url": f"hub://{space}/copy.txt"}],
        "executors": [sh("cat /in/x")],
    }
    before = auth_hub.bob.count()
    refused = auth_hub.bob.request("POST", "/tasks", json=task)
    assert "no such file space" in error_detail(refused, 400)
    assert auth_hub.bob.count() == before  # nothing stored
    done = auth_hub.alice.run(task)
    assert done["state"] == "COMPLETE", done
    assert done["logs"][0]["logs"][0]["stdout"] == "alice's\n"
    copy = auth_hub.alice.http.get(f"/toolferry/v1/files/{space}/copy.txt")
    assert copy.content == b"alice's\n"
    assert auth_hub.bob.http.get(f"/toolferry/v1/files/{space}/copy.txt").status_code == 404
