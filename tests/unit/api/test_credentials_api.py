"""The credentials API (/toolferry/v1/credentials): save, list, delete; 400s that echo no
secret, owners who see only their own, and no secret in any answer or log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.fakes import FakeRuntime

from toolferry.config import Settings
from toolferry.hub import Hub, serve_embedded
from toolferry.storage.base import Credential

CREDS = "/toolferry/v1/credentials"
SECRET = "Sup3r-S3cret-Value"
S3: dict[str, Any] = {"prefix": "s3://lab", "access_key": "AKIA1", "secret_key": SECRET}


class Recorder(logging.Handler):
    """Every log line, as it would be written, to check afterwards that no secret is in one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def no_secret_logged() -> Iterator[None]:
    recorder, root = Recorder(), logging.getLogger()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)
    assert recorder.lines, "nothing was logged: is the recorder attached?"
    assert not [line for line in recorder.lines if SECRET in line]


@contextmanager
def hub_at(data_dir: Path) -> Iterator[tuple[Hub, httpx.Client]]:
    settings = Settings(data_dir=data_dir, capacity_cpus=2)
    with (
        no_secret_logged(),
        serve_embedded(settings, runtimes={"fake": FakeRuntime()}) as (hub, url),
        httpx.Client(base_url=url) as client,
    ):
        yield hub, client


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Hub, httpx.Client]]:
    with hub_at(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, httpx.Client]]:
    """One hub for the tests that store nothing."""
    with hub_at(tmp_path_factory.mktemp("hub")) as pair:
        yield pair


@pytest.fixture
def hub(served: tuple[Hub, httpx.Client]) -> Hub:
    return served[0]


@pytest.fixture
def client(served: tuple[Hub, httpx.Client]) -> httpx.Client:
    return served[1]


def no_secret(response: httpx.Response) -> httpx.Response:
    assert SECRET not in response.text, response.text
    assert SECRET not in str(response.headers)
    return response


def test_save_list_replace_delete(hub: Hub, client: httpx.Client) -> None:
    created = no_secret(client.put(f"{CREDS}/lab", json=S3))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body == {
        "name": "lab",
        "prefix": "s3://lab/",
        "username": None,
        "access_key": "AKIA1",
        "secrets": ["secret_key"],
        "headers": [],
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
    }
    listed = no_secret(client.get(CREDS))
    assert listed.status_code == 200 and listed.json() == {"credentials": [body]}
    # The embedded hub's caller is its local operator.
    assert hub.user_credentials.credentials_of("local") == [
        Credential(prefix="s3://lab/", access_key="AKIA1", secret_key=SECRET)
    ]

    replaced = no_secret(
        client.put(
            f"{CREDS}/lab",
            json={
                "prefix": "https://dav.example.org/x/",
                "token": SECRET,
                "headers": {"X-K": SECRET},
            },
        )
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created_at"] == body["created_at"]
    assert replaced.json()["updated_at"] != body["updated_at"]
    assert (replaced.json()["secrets"], replaced.json()["headers"]) == (["token"], ["X-K"])

    assert client.delete(f"{CREDS}/lab").status_code == 204
    gone = client.delete(f"{CREDS}/lab")
    assert gone.status_code == 404 and gone.json() == {
        "detail": "no storage credential named 'lab'"
    }
    assert client.get(CREDS).json() == {"credentials": []}


@pytest.mark.parametrize(
    ("name", "body", "needle"),
    [
        ("a%2Fb", S3, "name:"),
        ("-x", S3, "name:"),
        ("x" * 65, S3, "name:"),
        ("lab", {**S3, "prefix": "lab"}, "prefix: must be a URL with a scheme and a host"),
        ("lab", {**S3, "prefix": f"https://u:{SECRET}@h/"}, "prefix: must not hold a user"),
        ("lab", {**S3, "prefix": ""}, "prefix:"),
        ("lab", {"prefix": "s3://lab/"}, "give at least"),
        ("lab", {**S3, "secret_key": None}, "secret_key: access_key and secret_key go together"),
        ("lab", {**S3, "secret_key": ""}, "secret_key: must not be empty"),
        ("lab", {**S3, "secret_key": SECRET * 1000}, "secret_key: must be at most 16384"),
        ("lab", {**S3, "secret_key": SECRET + "\n"}, "secret_key: must not contain control"),
        ("lab", {**S3, "secret_key": [SECRET]}, "secret_key: Input should be a valid string"),
        ("lab", {**S3, "secret_key": {"v": SECRET}}, "secret_key: Input should be a valid"),
        ("lab", {**S3, "secretkey": SECRET}, "secretkey: Extra inputs are not permitted"),
        ("lab", {**S3, "headers": {"Bad Name": SECRET}}, "headers: a header name"),
        ("lab", {**S3, "headers": {"X-K": 5}}, "headers.X-K: Input should be a valid string"),
        ("lab", {**S3, "headers": [SECRET]}, "headers: Input should be a valid dictionary"),
        ("lab", [S3], "the request body must be a JSON object"),
        ("lab", SECRET, "the request body must be a JSON object"),
    ],
)
def test_a_bad_request_is_a_400_that_names_the_field_and_echoes_no_secret(
    shared: tuple[Hub, httpx.Client], name: str, body: Any, needle: str
) -> None:
    client = shared[1]
    response = no_secret(client.put(f"{CREDS}/{name}", json=body))
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]
    assert client.get(CREDS).json() == {"credentials": []}


@pytest.mark.parametrize(
    "raw",
    [
        '{"prefix": "s3://lab/", "secret_key": "' + SECRET + '", }',
        '{"prefix": "s3://lab/", "secret_key": "' + SECRET + '"',
        '{"secret_key": ' + SECRET + "}",
        '{"secret_key": "' + SECRET + '\x01"}',
    ],
)
def test_malformed_json_is_a_400_that_echoes_no_secret(
    shared: tuple[Hub, httpx.Client], raw: str
) -> None:
    client = shared[1]
    response = no_secret(
        client.put(f"{CREDS}/lab", content=raw, headers={"Content-Type": "application/json"})
    )
    assert response.status_code == 400, response.text
    assert "malformed JSON" in response.json()["detail"]


def test_users_see_and_change_only_their_own(hub: Hub, client: httpx.Client) -> None:
    _, alice = hub.tokens.create("alice")
    _, bob = hub.tokens.create("bob")
    _, root = hub.tokens.create("root", admin=True)

    def as_(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    assert client.get(CREDS).status_code == 401
    assert client.put(f"{CREDS}/lab", json=S3).status_code == 401
    assert client.delete(f"{CREDS}/lab").status_code == 401
    assert client.put(f"{CREDS}/lab", json=S3, headers=as_(alice)).status_code == 201
    for other in (bob, root):  # admins too: a secret is its owner's alone
        assert client.get(CREDS, headers=as_(other)).json() == {"credentials": []}
        assert client.delete(f"{CREDS}/lab", headers=as_(other)).status_code == 404
    # Bob's "lab" is another credential.
    bobs = {"prefix": "s3://lab/", "username": "bob", "password": "bobs-pw"}
    assert client.put(f"{CREDS}/lab", json=bobs, headers=as_(bob)).status_code == 201
    assert [c["username"] for c in client.get(CREDS, headers=as_(bob)).json()["credentials"]] == [
        "bob"
    ]
    assert [
        c["access_key"] for c in client.get(CREDS, headers=as_(alice)).json()["credentials"]
    ] == ["AKIA1"]
    assert [c.secret_key for c in hub.user_credentials.credentials_of("alice")] == [SECRET]
    assert [c.password for c in hub.user_credentials.credentials_of("bob")] == ["bobs-pw"]


def test_a_name_path_takes_only_put_and_delete(shared: tuple[Hub, httpx.Client]) -> None:
    client = shared[1]
    response = client.get(f"{CREDS}/lab")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, PUT"
    assert client.post(CREDS, json=S3).status_code == 405


def test_an_unusable_key_is_a_503_saying_why_and_the_hub_still_starts(tmp_path: Path) -> None:
    (tmp_path / "credentials.key").write_text("not a key\n")
    with hub_at(tmp_path) as (_, client):
        assert client.get(CREDS).json() == {"credentials": []}
        response = no_secret(client.put(f"{CREDS}/lab", json=S3))
        assert response.status_code == 503
        assert "credentials.key is no Fernet key" in response.json()["detail"]


def test_the_openapi_documents_the_routes_and_hides_the_secrets(
    shared: tuple[Hub, httpx.Client],
) -> None:
    client = shared[1]
    spec = client.get("/openapi.json").json()
    put = spec["paths"][f"{CREDS}/{{name}}"]["put"]
    assert put["tags"] == ["credentials"]
    assert set(put["responses"]) == {"200", "201", "400", "401", "503"}
    assert set(spec["paths"][f"{CREDS}/{{name}}"]["delete"]["responses"]) == {
        "204",
        "400",
        "401",
        "404",
    }
    schema = spec["components"]["schemas"]["CredentialIn"]
    assert schema["additionalProperties"] is False
    for field in ("password", "token", "secret_key", "session_token"):
        (string, _null) = schema["properties"][field]["anyOf"]
        assert string["writeOnly"] is True, field
        assert schema["properties"][field]["description"]
    assert schema["properties"]["headers"]["additionalProperties"]["writeOnly"] is True
    out = spec["components"]["schemas"]["CredentialOut"]["properties"]
    assert not {"password", "token", "secret_key", "session_token"} & set(out)
