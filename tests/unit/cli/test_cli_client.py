"""TesClient over httpx.MockTransport: request shapes, paging, waiting and error messages."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from tests.unit.cli.fake_tes import BASE_URL, FakeTes

from toolferry.cli.client import ClientError, TesClient, WaitTimeout


def test_create_posts_the_document_with_the_bearer_token() -> None:
    fake = FakeTes()
    with fake.client(token="s3cret") as client:
        task_id = client.create({"executors": [{"image": "i", "command": ["true"]}]})
    request = fake.requests[0]
    assert task_id == "task0000000000000001"
    assert request.url == f"{BASE_URL}/ga4gh/tes/v1/tasks"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert json.loads(request.content) == {"executors": [{"image": "i", "command": ["true"]}]}


def test_no_token_sends_no_authorization_header() -> None:
    fake = FakeTes()
    with fake.client() as client:
        client.service_info()
    assert "authorization" not in fake.requests[0].headers
    assert fake.requests[0].url.path == "/ga4gh/tes/v1/service-info"


def test_get_asks_for_the_view() -> None:
    fake = FakeTes()
    fake.add({"id": "t1", "state": "QUEUED"})
    with fake.client() as client:
        assert client.get("t1", view="BASIC")["id"] == "t1"
    assert fake.requests[0].url.params["view"] == "BASIC"


def test_list_zips_tag_keys_and_values() -> None:
    fake = FakeTes()
    with fake.client() as client:
        client.list(
            view="BASIC",
            name_prefix="exp",
            state="RUNNING",
            tags={"project": "p1", "any": ""},
            page_size=10,
            page_token="20",
        )
    params = fake.requests[0].url.params
    assert params.get_list("tag_key") == ["project", "any"]
    assert params.get_list("tag_value") == ["p1", ""]
    assert params["name_prefix"] == "exp"
    assert params["state"] == "RUNNING"
    assert params["page_size"] == "10"
    assert params["page_token"] == "20"
    assert params["view"] == "BASIC"


def test_iter_tasks_follows_every_page() -> None:
    fake = FakeTes()
    for n in range(5):
        fake.add({"id": f"t{n}", "state": "QUEUED"})
    with fake.client() as client:
        ids = [t["id"] for t in client.iter_tasks(page_size=2)]
    assert ids == ["t0", "t1", "t2", "t3", "t4"]
    assert [r.url.params.get("page_token") for r in fake.requests] == [None, "2", "4"]


def test_cancel_posts_to_the_cancel_path() -> None:
    fake = FakeTes()
    fake.add({"id": "t1", "state": "QUEUED"})
    with fake.client() as client:
        client.cancel("t1")
    assert fake.requests[0].method == "POST"
    assert fake.requests[0].url.path == "/ga4gh/tes/v1/tasks/t1:cancel"


def test_wait_reports_each_state_and_returns_the_full_task() -> None:
    fake = FakeTes(final_state="EXECUTOR_ERROR", polls_before_end=2)
    seen: list[str] = []
    with fake.client() as client:
        task_id = client.create({"executors": []})
        task = client.wait(task_id, poll=0.001, on_state=seen.append)
    assert seen == ["RUNNING", "EXECUTOR_ERROR"]
    assert task["state"] == "EXECUTOR_ERROR"
    assert task["logs"]  # the FULL view
    assert fake.requests[-1].url.params["view"] == "FULL"


def test_wait_gives_up_after_the_timeout() -> None:
    fake = FakeTes(polls_before_end=10**6)
    with fake.client() as client:
        task_id = client.create({"executors": []})
        with pytest.raises(WaitTimeout) as caught:
            client.wait(task_id, poll=0.01, timeout=0.05)
    assert caught.value.state == "RUNNING"
    assert "still RUNNING after 0.05 s" in str(caught.value)


def test_http_error_carries_status_and_the_servers_detail() -> None:
    fake = FakeTes(fail=(400, {"detail": "executors: at least one is required"}))
    with fake.client() as client, pytest.raises(ClientError) as caught:
        client.create({})
    assert caught.value.status == 400
    assert caught.value.message == "executors: at least one is required"
    assert str(caught.value) == "HTTP 400: executors: at least one is required"


def test_validation_error_details_are_joined_into_one_line() -> None:
    detail = [
        {"loc": ["body", "executors", 0, "image"], "msg": "Field required"},
        {"loc": ["query", "view"], "msg": "Input should be 'MINIMAL'"},
    ]
    fake = FakeTes(fail=(422, {"detail": detail}))
    with fake.client() as client, pytest.raises(ClientError) as caught:
        client.create({})
    assert caught.value.message == (
        "executors.0.image: Field required; query.view: Input should be 'MINIMAL'"
    )


def test_a_non_json_error_page_is_shown_as_text() -> None:
    fake = FakeTes(fail=(502, "<html>Bad Gateway</html>"))
    with fake.client() as client, pytest.raises(ClientError) as caught:
        client.get("t1")
    assert caught.value.status == 502
    assert "Bad Gateway" in caught.value.message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_names_the_url_and_what_to_do() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with TesClient(url, None, timeout=5) as client, pytest.raises(ClientError) as caught:
        client.service_info()
    assert caught.value.status is None
    assert f"nothing answered at {url}" in caught.value.message
    assert "TOOLFERRY_URL" in caught.value.message
    assert "toolferry server" in caught.value.message


def test_a_timeout_says_how_long_it_waited() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    transport = httpx.MockTransport(slow)
    with (
        TesClient(BASE_URL, None, timeout=3, transport=transport) as client,
        pytest.raises(ClientError) as caught,
    ):
        client.get("t1")
    assert caught.value.message == f"{BASE_URL} did not answer within 3 s"


def test_base_url_may_end_with_a_slash() -> None:
    fake = FakeTes()
    with TesClient(BASE_URL + "/", None, transport=httpx.MockTransport(fake.handle)) as client:
        client.service_info()
    assert str(fake.requests[0].url) == f"{BASE_URL}/ga4gh/tes/v1/service-info"
