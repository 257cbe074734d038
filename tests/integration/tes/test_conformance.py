"""TES 1.1.0 to the letter, against a real hub: every operation, view, filter and field.

Tests quote the spec where it says what they check; the spec is ``tes-1.1.0.openapi.yaml`` next to this file.
Every JSON answer is also validated against the spec's schemas by ``TesApi``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from tests.helpers import services
from tests.integration.tes.tessupport import (
    TERMINAL_STATES,
    HubFactory,
    RunningHub,
    TesApi,
    containers_gone,
    error_detail,
    file_url,
    processes_with,
    sh,
    task_containers,
    wait_for,
)

pytestmark = pytest.mark.integration

ALL_STATES = [
    "UNKNOWN", "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE",
    "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED", "CANCELING",
]  # fmt: skip


def uniq(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def without_basic_exclusions(task: dict[str, Any]) -> dict[str, Any]:
    """The FULL view minus what the spec leaves out of BASIC: executor log stdout/stderr,
    input content and task log system_logs."""
    doc = json.loads(json.dumps(task))
    for inp in doc.get("inputs", []):
        inp.pop("content", None)
    for log in doc.get("logs", []):
        log.pop("system_logs", None)
        for exe in log.get("logs", []):
            exe.pop("stdout", None)
            exe.pop("stderr", None)
    return doc


def contains(actual: Any, expected: Any) -> bool:
    """``expected`` is a sub-document of ``actual`` (dicts by key, lists item by item)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


# -- a task that uses every field, run once for the view tests ---------------------------------


@pytest.fixture(scope="module")
def rich(docker_hub: RunningHub) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(id, submitted document, FULL view once ended) of a task that sets every tesTask field."""
    name = uniq("rich")
    document = {
        "name": name,
        "description": "a task that sets every field",
        "inputs": [
            {
                "name": "greeting",
                "description": "inline content",
                "path": "/data/in.txt",
                "content": "hello tes\n",
                "type": "FILE",
            }
        ],
        "outputs": [
            {
                "name": "result",
                "description": "a copy of the input",
                "path": "/out/result.txt",
                "url": file_url(docker_hub.storage / name / "result.txt"),
                "type": "FILE",
            }
        ],
        "resources": {
            "cpu_cores": 1,
            "ram_gb": 0.25,
            "disk_gb": 1.0,
            "preemptible": False,
            "zones": ["local"],
            "backend_parameters": {"VmSize": "Standard_D64_v3"},
            "backend_parameters_strict": False,
        },
        "executors": [
            sh(
                "cat /data/in.txt > /out/result.txt; echo to-stdout; echo to-stderr >&2",
                workdir="/out",
                env={"GREETING": "hi"},
            )
        ],
        "volumes": ["/vol/A"],
        "tags": {"purpose": "views", "empty": ""},
    }
    task_id = docker_hub.api.create(document)
    full = docker_hub.api.wait(task_id)
    assert full["state"] == "COMPLETE", full
    return task_id, document, full


def test_create_returns_the_id_only(docker_hub: RunningHub) -> None:
    response = docker_hub.api.request("POST", "/tasks", json={"executors": [sh("true")]})
    assert response.status_code == 200, response.text
    body = response.json()
    # tesCreateTaskResponse: {id}; TesApi also validates it against the schema.
    assert set(body) == {"id"} and isinstance(body["id"], str) and body["id"], body
    docker_hub.api.wait(body["id"])


def test_minimal_view_is_id_and_state_only(docker_hub: RunningHub, rich: Any) -> None:
    task_id, _, _ = rich
    assert docker_hub.api.get(task_id, "MINIMAL") == {"id": task_id, "state": "COMPLETE"}


def test_default_view_is_minimal(docker_hub: RunningHub, rich: Any) -> None:
    task_id, _, _ = rich
    assert docker_hub.api.get(task_id) == {"id": task_id, "state": "COMPLETE"}


def test_basic_view_is_full_minus_stdout_stderr_content_and_system_logs(
    docker_hub: RunningHub, rich: Any
) -> None:
    task_id, _, full = rich
    basic = docker_hub.api.get(task_id, "BASIC")
    assert basic == without_basic_exclusions(full)
    assert "content" not in basic["inputs"][0]
    for log in basic["logs"]:
        assert "system_logs" not in log
        for exe in log["logs"]:
            assert "stdout" not in exe and "stderr" not in exe


def test_basic_view_keeps_every_submitted_field(docker_hub: RunningHub, rich: Any) -> None:
    """The server 'uses [the submitted task] as a basis and adds additional fields'."""
    task_id, document, _ = rich
    basic = docker_hub.api.get(task_id, "BASIC")
    expected = json.loads(json.dumps(document))
    expected["inputs"][0].pop("content")
    # Unsupported backend parameters are neither stored nor returned (checked below).
    expected["resources"].pop("backend_parameters")
    assert contains(basic, expected), json.dumps(basic, indent=1)
    for field in ("id", "state", "creation_time", "logs"):
        assert field in basic
    log = basic["logs"][0]
    assert [set(e) >= {"exit_code", "start_time", "end_time"} for e in log["logs"]] == [True]
    assert log["outputs"] == [
        {
            "url": document["outputs"][0]["url"],
            "path": "/out/result.txt",
            "size_bytes": str(len("hello tes\n")),
        }
    ]


def test_full_view_has_everything(docker_hub: RunningHub, rich: Any) -> None:
    task_id, document, full = rich
    assert docker_hub.api.get(task_id, "FULL") == full
    assert full["inputs"][0]["content"] == document["inputs"][0]["content"]
    executor_log = full["logs"][0]["logs"][0]
    assert executor_log["stdout"] == "to-stdout\n"
    assert executor_log["stderr"] == "to-stderr\n"
    assert isinstance(full["logs"][0]["system_logs"], list)


def test_unsupported_backend_parameter_not_strict_is_dropped_with_a_warning(
    docker_hub: RunningHub, rich: Any
) -> None:
    """'Backends shall log system warnings if a key is passed that is unsupported. Backends
    shall not store or return unsupported keys if included in a task.'"""
    task_id, _, full = rich
    for view in ("BASIC", "FULL"):
        params = docker_hub.api.get(task_id, view)["resources"].get("backend_parameters") or {}
        assert "VmSize" not in params and "vmsize" not in params, params
    warnings = [line for log in full["logs"] for line in log.get("system_logs", [])]
    assert any("VmSize" in line for line in warnings), warnings


def test_list_default_view_is_minimal(docker_hub: RunningHub, rich: Any) -> None:
    task_id, document, _ = rich
    page = docker_hub.api.list(name_prefix=document["name"])
    assert page["tasks"] == [{"id": task_id, "state": "COMPLETE"}]


@pytest.mark.parametrize("view", ["MINIMAL", "BASIC", "FULL"])
def test_list_views_match_get(docker_hub: RunningHub, rich: Any, view: str) -> None:
    task_id, document, _ = rich
    page = docker_hub.api.list(name_prefix=document["name"], view=view)
    assert page["tasks"] == [docker_hub.api.get(task_id, view)]


def test_readonly_fields_in_a_submission_are_ignored(docker_hub: RunningHub) -> None:
    """id, state, logs and creation_time are readOnly: set by the server, not the client."""
    fake = {
        "id": "client-chosen-id",
        "state": "COMPLETE",
        "creation_time": "2000-01-01T00:00:00Z",
        "logs": [{"logs": [{"exit_code": 7}], "outputs": [], "system_logs": ["forged"]}],
        "executors": [sh("true")],
    }
    before = time.time()
    task_id = docker_hub.api.create(fake)
    assert task_id != "client-chosen-id"
    task = docker_hub.api.wait(task_id)
    assert task["state"] == "COMPLETE"
    assert when(task["creation_time"]).timestamp() >= before - 5
    assert [e["exit_code"] for log in task["logs"] for e in log["logs"]] == [0]
    assert all("forged" not in log.get("system_logs", []) for log in task["logs"])


# -- ListTasks filters -------------------------------------------------------------------------


def test_name_prefix(docker_hub: RunningHub) -> None:
    api = docker_hub.api
    p = uniq("np")
    ids = {
        name: api.create({"name": name, "executors": [sh("true")]})
        for name in (f"{p}-alpha", f"{p}-alphabet", f"{p}-beta", f"x{p}", f"{p}%z", f"{p}_z")
    }
    api.create({"executors": [sh("true")]})  # no name at all

    def listed(prefix: str) -> set[str]:
        return {t["id"] for t in api.all_tasks(name_prefix=prefix)}

    assert listed(f"{p}-alpha") == {ids[f"{p}-alpha"], ids[f"{p}-alphabet"]}
    assert listed(f"{p}-") == {ids[f"{p}-alpha"], ids[f"{p}-alphabet"], ids[f"{p}-beta"]}
    assert listed(p) == set(ids.values()) - {ids[f"x{p}"]}
    # The prefix is a literal string, not a pattern (no SQL LIKE wildcards).
    assert listed(f"{p}%") == {ids[f"{p}%z"]}
    assert listed(f"{p}_") == {ids[f"{p}_z"]}
    assert listed(f"{p}-alphabetical") == set()


def test_state_filter(docker_hub: RunningHub) -> None:
    api = docker_hub.api
    p = uniq("st")
    ok = api.create({"name": f"{p}-ok", "executors": [sh("true")]})
    bad = api.create({"name": f"{p}-bad", "executors": [sh("exit 1")]})
    assert api.wait(ok)["state"] == "COMPLETE"
    assert api.wait(bad)["state"] == "EXECUTOR_ERROR"
    assert [t["id"] for t in api.list(name_prefix=p, state="COMPLETE")["tasks"]] == [ok]
    assert [t["id"] for t in api.list(name_prefix=p, state="EXECUTOR_ERROR")["tasks"]] == [bad]
    assert api.list(name_prefix=p, state="RUNNING")["tasks"] == []
    assert {t["id"] for t in api.list(name_prefix=p)["tasks"]} == {ok, bad}


@pytest.mark.parametrize("state", ALL_STATES)
def test_state_filter_accepts_every_tes_state(docker_hub: RunningHub, state: str) -> None:
    page = docker_hub.api.list(state=state, name_prefix=uniq("nothing"))
    assert page["tasks"] == []


# The table of the spec's ListTasks description, row by row: (filter, task tags, match?).
TAG_TABLE = [
    ({"foo": "bar"}, {"foo": "bar"}, True),
    ({"foo": "bar"}, {"foo": "bat"}, False),
    ({"foo": ""}, {"foo": ""}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar"}, {"foo": "bar", "baz": "bat"}, True),
    ({"foo": "bar", "baz": "bat"}, {"foo": "bar"}, False),
    ({"foo": ""}, {"foo": "bar"}, True),
    ({"foo": ""}, {}, False),
]


def tag_query(filter_: dict[str, str]) -> list[tuple[str, str]]:
    """As the spec writes it: ?tag_key=foo1&tag_value=bar1&tag_key=foo2&tag_value=bar2, and
    ?tag_key=foo1 alone for {"foo1": ""}."""
    query: list[tuple[str, str]] = []
    for key, value in filter_.items():
        query.append(("tag_key", key))
        if value:
            query.append(("tag_value", value))
    return query


@pytest.mark.parametrize(
    ("filter_", "tags", "match"),
    TAG_TABLE,
    ids=[f"row{i + 1}-{'yes' if row[2] else 'no'}" for i, row in enumerate(TAG_TABLE)],
)
def test_tag_matching_table(
    docker_hub: RunningHub, filter_: dict[str, str], tags: dict[str, str], match: bool
) -> None:
    name = uniq("tag")
    task_id = docker_hub.api.create({"name": name, "tags": tags, "executors": [sh("true")]})
    found = docker_hub.api.list(name_prefix=name, query=tag_query(filter_))["tasks"]
    assert [t["id"] for t in found] == ([task_id] if match else [])


def test_tag_values_zip_with_keys_in_order(docker_hub: RunningHub) -> None:
    """?tag_key=foo1&tag_value=bar1&tag_key=foo2&tag_value=bar2 is {foo1: bar1, foo2: bar2}."""
    name = uniq("zip")
    task_id = docker_hub.api.create(
        {"name": name, "tags": {"foo1": "bar1", "foo2": "bar2"}, "executors": [sh("true")]}
    )
    hit = [("tag_key", "foo1"), ("tag_value", "bar1"), ("tag_key", "foo2"), ("tag_value", "bar2")]
    swapped = [("tag_key", "foo1"), ("tag_value", "bar2"), ("tag_key", "foo2"), ("tag_value", "bar1")]  # fmt: skip
    assert [t["id"] for t in docker_hub.api.list(name_prefix=name, query=hit)["tasks"]] == [task_id]
    assert docker_hub.api.list(name_prefix=name, query=swapped)["tasks"] == []


# -- pagination --------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "sizes"), [(7, [3, 3, 1]), (6, [3, 3])])
def test_pagination(docker_hub: RunningHub, count: int, sizes: list[int]) -> None:
    api = docker_hub.api
    p = uniq("page")
    created = {api.create({"name": f"{p}-{i}", "executors": [sh("true")]}) for i in range(count)}
    seen: list[str] = []
    pages: list[int] = []
    token = None
    for _ in range(count + 2):
        page = api.list(name_prefix=p, page_size=3, page_token=token)
        pages.append(len(page["tasks"]))
        seen += [t["id"] for t in page["tasks"]]
        token = page.get("next_page_token")
        if not token:
            assert "next_page_token" not in page or page["next_page_token"] == "", page
            break
    assert pages == sizes, "page sizes"
    assert len(seen) == len(set(seen)), "a task was listed twice"
    assert set(seen) == created, "a task was never listed"


def test_page_size_defaults_to_256(start_hub: HubFactory, busybox_image: str) -> None:
    """'Defaults to 256.' The tasks wait behind a blocker, so that none of them runs."""
    api = start_hub(capacity_cpus=1).api
    blocker = api.create({"executors": [sh("sleep 30")]})
    api.wait(blocker, until=frozenset({"RUNNING"}))
    created = {api.create({"name": f"many-{i}", "executors": [sh("true")]}) for i in range(257)}
    first = api.list(name_prefix="many-")
    assert len(first["tasks"]) == 256 and first.get("next_page_token")
    rest = api.list(name_prefix="many-", page_token=first["next_page_token"])
    assert len(rest["tasks"]) == 1 and not rest.get("next_page_token")
    assert {t["id"] for t in first["tasks"] + rest["tasks"]} == created


def test_page_size_2047_is_allowed(docker_hub: RunningHub) -> None:
    """'Must be less than 2048.'"""
    docker_hub.api.list(page_size=2047)


# -- cancel ------------------------------------------------------------------------------------


def _states_from_events(running: RunningHub, task_id: str) -> list[str]:
    return [e.data["state"] for e in running.hub.store.events(task_id) if "state" in e.data]


def test_cancel_a_queued_task(start_hub: HubFactory, busybox_image: str) -> None:
    running = start_hub(capacity_cpus=1)
    api = running.api
    blocker = api.create({"executors": [sh("sleep 30")]})
    api.wait(blocker, until=frozenset({"RUNNING"}))
    queued = api.create({"executors": [sh("echo should-never-run")]})
    time.sleep(0.3)
    assert api.get(queued)["state"] == "QUEUED", "capacity 1 is taken: the task must wait"
    assert api.cancel(queued) == {}
    task = api.get(queued, "FULL")
    assert task["state"] == "CANCELED"
    assert all(log["logs"] == [] for log in task.get("logs", [])), "it never ran"
    assert task_containers(queued) == {}
    assert "RUNNING" not in _states_from_events(running, queued)
    assert api.get(blocker)["state"] == "RUNNING", "canceling one task left the other alone"


def test_views_agree_for_a_task_that_never_ran(start_hub: HubFactory, busybox_image: str) -> None:
    """BASIC is FULL minus stdout/stderr, content and system_logs, whatever the task's state:
    here a queued task whose ignored backend parameter left a warning."""
    api = start_hub(capacity_cpus=1).api
    blocker = api.create({"executors": [sh("sleep 30")]})
    api.wait(blocker, until=frozenset({"RUNNING"}))
    queued = api.create(
        {
            "inputs": [{"path": "/data/x", "content": "secret"}],
            "resources": {"backend_parameters": {"VmSize": "Standard_D64_v3"}},
            "executors": [sh("true")],
        }
    )
    full = api.get(queued, "FULL")
    assert full["state"] == "QUEUED"
    warnings = [line for log in full["logs"] for line in log.get("system_logs", [])]
    assert any("VmSize" in line for line in warnings), full
    assert api.get(queued, "BASIC") == without_basic_exclusions(full)


def test_cancel_a_running_docker_task(start_hub: HubFactory, busybox_image: str) -> None:
    running = start_hub()
    api = running.api
    task_id = api.create({"executors": [sh("sleep 30")]})
    wait_for(lambda: task_containers(task_id).get(f"toolferry-{task_id}-0") == "running",
             "the executor's container to run")  # fmt: skip
    assert api.get(task_id)["state"] == "RUNNING"
    started = time.monotonic()
    assert api.cancel(task_id) == {}
    assert api.get(task_id)["state"] in {"CANCELING", "CANCELED"}
    task = api.wait(task_id, timeout=10)
    took = time.monotonic() - started
    assert task["state"] == "CANCELED"
    assert took < 5, f"CANCELED only after {took:.1f}s"
    states = _states_from_events(running, task_id)
    assert states[-2:] == ["CANCELING", "CANCELED"], states
    # 'CANCELED: ... downstream resources have been deleted.'
    assert containers_gone(task_id)


def test_cancel_a_running_task_of_the_none_runtime(start_hub: HubFactory, bwrap: str) -> None:
    running = start_hub(runtime="none")
    api = running.api
    marker = f"{uuid.uuid4().int % 10**6}.125"
    task_id = api.create({"executors": [sh(f"sleep 600{marker}")]})
    wait_for(lambda: processes_with(f"sleep 600{marker}"), "the executor's process to start")
    assert api.get(task_id)["state"] == "RUNNING"
    started = time.monotonic()
    assert api.cancel(task_id) == {}
    task = api.wait(task_id, timeout=10)
    assert task["state"] == "CANCELED"
    assert time.monotonic() - started < 5
    assert _states_from_events(running, task_id)[-2:] == ["CANCELING", "CANCELED"]
    wait_for(lambda: not processes_with(f"sleep 600{marker}"), "the process to be gone", 2)


def test_cancel_an_unknown_task_is_404(docker_hub: RunningHub) -> None:
    missing = "no-such-task-" + uuid.uuid4().hex
    assert missing in error_detail(docker_hub.api.request("POST", f"/tasks/{missing}:cancel"), 404)


# -- service-info ------------------------------------------------------------------------------


def test_service_info(docker_hub: RunningHub) -> None:
    info = docker_hub.api.service_info()  # validated against tesServiceInfo
    for field in ("id", "name", "type", "organization", "version"):
        assert info.get(field), f"GA4GH service-info requires {field}"
    assert info["type"]["group"] and info["type"]["version"].startswith("1.1")
    assert info["type"]["artifact"] == "tes"
    assert info["organization"]["name"] and info["organization"]["url"]
    assert isinstance(info["storage"], list) and all(isinstance(s, str) for s in info["storage"])
    assert file_url(docker_hub.storage) in info["storage"]
    keys = info["tesResources_backend_parameters"]
    assert isinstance(keys, list) and all(isinstance(k, str) for k in keys)


def test_supported_backend_parameter_with_strict_is_accepted(docker_hub: RunningHub) -> None:
    """A key service-info lists is supported; keys are case-insensitive."""
    keys = docker_hub.api.service_info()["tesResources_backend_parameters"]
    assert "runtime" in [k.lower() for k in keys]
    task = docker_hub.api.run(
        {
            "resources": {"backend_parameters": {"Runtime": "docker"}, "backend_parameters_strict": True},
            "executors": [sh("true")],
        }
    )  # fmt: skip
    assert task["state"] == "COMPLETE"
    params = {k.lower(): v for k, v in task["resources"]["backend_parameters"].items()}
    assert params == {"runtime": "docker"}


# -- what a run records ----------------------------------------------------------------------


def test_executor_log(run_hub: RunningHub) -> None:
    script = 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "line $i"; done; echo oops >&2'
    task = run_hub.api.run({"executors": [sh(script)]})
    assert task["state"] == "COMPLETE"
    (log,) = task["logs"]
    (exe,) = log["logs"]
    assert exe["exit_code"] == 0
    assert when(log["start_time"]) <= when(exe["start_time"]) <= when(exe["end_time"])
    assert when(exe["end_time"]) <= when(log["end_time"])
    assert when(task["creation_time"]) <= when(log["start_time"])
    assert exe["stdout"].endswith("line 2999\nline 3000\n"), exe["stdout"][-100:]
    assert exe["stderr"] == "oops\n"


def test_output_file_log_size_is_a_string(run_hub: RunningHub) -> None:
    name = uniq("out")
    url = file_url(run_hub.storage / name / "blob")
    task = run_hub.api.run(
        {
            "outputs": [{"path": "/out/blob", "url": url}],
            "executors": [sh("head -c 1234 /dev/zero > /out/blob")],
        }
    )
    assert task["state"] == "COMPLETE", task
    assert task["logs"][0]["outputs"] == [{"url": url, "path": "/out/blob", "size_bytes": "1234"}]
    assert (run_hub.storage / name / "blob").stat().st_size == 1234


def test_directory_output_is_flattened_into_files(run_hub: RunningHub) -> None:
    """'Directory outputs are flattened into separate items.'"""
    name = uniq("dir")
    url = file_url(run_hub.storage / name)
    task = run_hub.api.run(
        {
            "outputs": [{"path": "/out/d", "url": url, "type": "DIRECTORY"}],
            "executors": [sh("mkdir -p /out/d/sub; printf a > /out/d/a; printf bb > /out/d/sub/b")],
        }
    )
    assert task["state"] == "COMPLETE", task
    logged = sorted(task["logs"][0]["outputs"], key=lambda o: o["path"])
    assert logged == [
        {"url": f"{url}/a", "path": "/out/d/a", "size_bytes": "1"},
        {"url": f"{url}/sub/b", "path": "/out/d/sub/b", "size_bytes": "2"},
    ]
    assert (run_hub.storage / name / "sub" / "b").read_text() == "bb"


def test_wildcard_output_with_path_prefix(run_hub: RunningHub) -> None:
    """'output URLs are constructed by appending pruned paths to the directory specified in
    tesOutput.url'."""
    name = uniq("glob")
    url = file_url(run_hub.storage / name)
    task = run_hub.api.run(
        {
            "outputs": [{"path": "/out/*.txt", "path_prefix": "/out/", "url": url}],
            "executors": [
                sh("printf 1 > /out/a.txt; printf 22 > /out/b.txt; printf x > /out/c.log")
            ],
        }
    )
    assert task["state"] == "COMPLETE", task
    logged = sorted(task["logs"][0]["outputs"], key=lambda o: o["path"])
    assert logged == [
        {"url": f"{url}/a.txt", "path": "/out/a.txt", "size_bytes": "1"},
        {"url": f"{url}/b.txt", "path": "/out/b.txt", "size_bytes": "2"},
    ]
    assert sorted(p.name for p in (run_hub.storage / name).iterdir()) == ["a.txt", "b.txt"]


def test_output_that_matches_nothing_is_a_system_error(run_hub: RunningHub) -> None:
    task = run_hub.api.run(
        {
            "outputs": [{"path": "/out/never-written", "url": file_url(run_hub.storage / uniq())}],
            "executors": [sh("true")],
        }
    )
    assert task["state"] == "SYSTEM_ERROR"
    lines = [line for log in task["logs"] for line in log["system_logs"]]
    assert any("/out/never-written" in line for line in lines), lines


def test_nonzero_exit_is_an_executor_error_and_stops_the_executors(run_hub: RunningHub) -> None:
    task = run_hub.api.run({"executors": [sh("echo first; exit 3"), sh("echo second")]})
    assert task["state"] == "EXECUTOR_ERROR"
    logs = task["logs"][0]["logs"]
    assert [(e["exit_code"], e["stdout"]) for e in logs] == [(3, "first\n")]


def test_ignore_error_continues_with_the_next_executor(run_hub: RunningHub) -> None:
    task = run_hub.api.run(
        {"executors": [sh("echo first; exit 5", ignore_error=True), sh("echo second")]}
    )
    logs = task["logs"][0]["logs"]
    assert [(e["exit_code"], e["stdout"]) for e in logs] == [(5, "first\n"), (0, "second\n")]
    assert task["state"] == "COMPLETE", "the error was to be ignored"


def test_volumes_are_shared_between_executors(run_hub: RunningHub) -> None:
    task = run_hub.api.run(
        {
            "volumes": ["/vol/A"],
            "executors": [
                sh("echo from-one > /vol/A/exec1.out.txt"),
                sh("cat /vol/A/exec1.out.txt"),
            ],
        }
    )
    assert task["state"] == "COMPLETE", task
    assert task["logs"][0]["logs"][1]["stdout"] == "from-one\n"


def test_stdin_stdout_stderr_paths(run_hub: RunningHub) -> None:
    name = uniq("std")
    out = run_hub.storage / name
    task = run_hub.api.run(
        {
            "inputs": [{"path": "/data/file1", "content": "line one\nline two\n"}],
            "outputs": [
                {"path": "/logs/out.txt", "url": file_url(out / "out.txt")},
                {"path": "/logs/err.txt", "url": file_url(out / "err.txt")},
            ],
            "executors": [
                sh("wc -l; echo to-err >&2", stdin="/data/file1", stdout="/logs/out.txt", stderr="/logs/err.txt"),
            ],
        }
    )  # fmt: skip
    assert task["state"] == "COMPLETE", task
    assert (out / "out.txt").read_text().strip() == "2"
    assert (out / "err.txt").read_text() == "to-err\n"


def test_workdir(run_hub: RunningHub) -> None:
    task = run_hub.api.run({"volumes": ["/vol/w"], "executors": [sh("pwd", workdir="/vol/w")]})
    assert task["logs"][0]["logs"][0]["stdout"] == "/vol/w\n"


@pytest.fixture(scope="module")
def image_with_defaults(busybox_image: str) -> str:
    """An image with its own WORKDIR, ENV and ENTRYPOINT (built once, kept as a cache)."""
    tag = "toolferry-test/tes-defaults:1"
    if services.docker("image", "inspect", tag).returncode != 0:
        dockerfile = (
            f"FROM {busybox_image}\nWORKDIR /home/tool\nENV FROM_IMAGE=image-value\n"
            'ENTRYPOINT ["false"]\n'
        )
        built = services.docker("build", "-t", tag, "-", stdin=dockerfile.encode())
        assert built.returncode == 0, built.stderr.decode(errors="replace")
    return tag


def test_image_defaults_apply_unless_the_executor_sets_them(
    docker_hub: RunningHub, image_with_defaults: str
) -> None:
    """workdir: 'If not defined, the system will default to the directory set by the container
    image.' command: 'the first argument is the program to execute' (not the ENTRYPOINT's)."""
    script = 'pwd; echo "$FROM_IMAGE|$FROM_TASK"'
    task = docker_hub.api.run(
        {
            "executors": [
                {
                    "image": image_with_defaults,
                    "command": ["sh", "-c", script],
                    "env": {"FROM_TASK": "t"},
                },
                {"image": image_with_defaults, "command": ["sh", "-c", "pwd"], "workdir": "/tmp"},
            ]
        }
    )
    assert task["state"] == "COMPLETE", task
    logs = task["logs"][0]["logs"]
    assert logs[0]["stdout"] == "/home/tool\nimage-value|t\n"
    assert logs[1]["stdout"] == "/tmp\n"


def test_env(run_hub: RunningHub) -> None:
    task = run_hub.api.run(
        {
            "executors": [
                sh('echo "$BLASTDB|$HMMERDB"', env={"BLASTDB": "/data/GRC38", "HMMERDB": "a b"})
            ]
        }
    )
    assert task["logs"][0]["logs"][0]["stdout"] == "/data/GRC38|a b\n"


def test_file_inputs_by_url_and_by_plain_path(run_hub: RunningHub) -> None:
    """tesInput.url examples include file:///path/to/my/file and /path/to/my/file."""
    name = uniq("in")
    allowed = run_hub.settings.file_allowed_dirs[0]
    (allowed / f"{name}.txt").write_text("from an allowed dir\n")
    stored = run_hub.storage / name
    (stored / "tree" / "sub").mkdir(parents=True)
    (stored / "plain.txt").write_text("from the storage\n")
    (stored / "tree" / "sub" / "leaf").write_text("leaf\n")
    task = run_hub.api.run(
        {
            "inputs": [
                {"path": "/in/a.txt", "url": file_url(allowed / f"{name}.txt")},
                {"path": "/in/b.txt", "url": str(stored / "plain.txt")},
                {"path": "/in/tree", "url": file_url(stored / "tree"), "type": "DIRECTORY"},
            ],
            "executors": [sh("cat /in/a.txt /in/b.txt /in/tree/sub/leaf")],
        }
    )
    assert task["state"] == "COMPLETE", task
    assert task["logs"][0]["logs"][0]["stdout"] == "from an allowed dir\nfrom the storage\nleaf\n"


def test_content_and_url_together_are_refused(docker_hub: RunningHub) -> None:
    """The spec lets content win over url; toolferry's contract refuses the pair instead, so a
    client never has a url silently ignored (an empty content counts as no content)."""
    before = docker_hub.api.count()
    response = docker_hub.api.request(
        "POST",
        "/tasks",
        json={
            "inputs": [
                {
                    "path": "/data/x",
                    "content": "inline\n",
                    "url": file_url(docker_hub.storage / uniq("missing")),
                }
            ],
            "executors": [sh("cat /data/x")],
        },
    )
    assert response.status_code == 400
    assert "inputs[0]: set either 'url' or 'content'" in response.json()["detail"]
    assert docker_hub.api.count() == before


def test_empty_content_does_not_replace_the_url(docker_hub: RunningHub) -> None:
    """'If content is not empty, "url" must be ignored': an empty content leaves the url."""
    name = uniq("empty")
    (docker_hub.storage / name).write_text("from the url\n")
    task = docker_hub.api.run(
        {
            "inputs": [
                {"path": "/data/x", "content": "", "url": file_url(docker_hub.storage / name)}
            ],
            "executors": [sh("cat /data/x")],
        }
    )
    assert task["state"] == "COMPLETE", task
    assert task["logs"][0]["logs"][0]["stdout"] == "from the url\n"


def test_file_types_are_filled_in(docker_hub: RunningHub) -> None:
    """tesFileType: 'it is required that the server fill in the value'."""
    name = uniq("types")
    task_id = docker_hub.api.create(
        {
            "inputs": [{"path": "/data/x", "content": "x"}],
            "outputs": [{"path": "/data/x", "url": file_url(docker_hub.storage / name)}],
            "executors": [sh("true")],
        }
    )
    task = docker_hub.api.wait(task_id, view="BASIC")
    assert task["inputs"][0]["type"] == "FILE" and task["outputs"][0]["type"] == "FILE"


def test_missing_input_file_is_a_system_error(run_hub: RunningHub) -> None:
    missing = run_hub.storage / uniq("absent")
    task = run_hub.api.run(
        {"inputs": [{"path": "/data/x", "url": file_url(missing)}], "executors": [sh("true")]}
    )
    assert task["state"] == "SYSTEM_ERROR", task
    lines = [line for log in task["logs"] for line in log["system_logs"]]
    assert any("/data/x" in line or missing.name in line for line in lines), lines
    assert all(log["logs"] == [] for log in task["logs"]), "no executor ran"


def test_image_that_cannot_be_found_is_a_system_error(docker_hub: RunningHub) -> None:
    image = "no-such-registry.invalid/toolferry/absent:1"
    task = docker_hub.api.run({"executors": [{"image": image, "command": ["true"]}]})
    assert task["state"] == "SYSTEM_ERROR", task
    lines = [line for log in task["logs"] for line in log["system_logs"]]
    assert any(image in line for line in lines), lines


def test_content_of_128_kib_is_supported(start_hub: HubFactory, busybox_image: str) -> None:
    """'Implementations should support a minimum of 128 KiB in this field' (default settings)."""
    running = start_hub()
    content = "x" * (128 * 1024 - 1) + "\n"
    task = running.api.run(
        {
            "inputs": [{"path": "/data/big", "content": content}],
            "executors": [sh("wc -c < /data/big")],
        }
    )
    assert task["logs"][0]["logs"][0]["stdout"].strip() == str(128 * 1024)


def test_content_up_to_the_limit_is_accepted(run_hub: RunningHub) -> None:
    limit = run_hub.settings.max_content_bytes
    task = run_hub.api.run(
        {
            "inputs": [{"path": "/d/c", "content": "é" * (limit // 2)}],
            "executors": [sh("wc -c < /d/c")],
        }
    )
    assert task["logs"][0]["logs"][0]["stdout"].strip() == str(limit // 2 * 2)


# -- refused requests: 400 naming the field, nothing stored ------------------------------------

EXE = {"image": "toolferry-test/busybox:1", "command": ["true"]}


def _task(**fields: Any) -> dict[str, Any]:
    return {"executors": [EXE], **fields}


def _exe(**fields: Any) -> dict[str, Any]:
    return {"executors": [{**EXE, **fields}]}


BAD_TASKS: list[tuple[str, Any, str]] = [
    ("no-executors", {"name": "x"}, "executors"),
    ("empty-executors", {"executors": []}, "executors"),
    ("executors-not-a-list", {"executors": "sh"}, "executors"),
    ("empty-command", _exe(command=[]), "executors[0].command"),
    ("command-not-a-list", _exe(command="echo hi"), "executors[0].command"),
    ("no-image", {"executors": [{"command": ["true"]}]}, "executors[0].image"),
    ("relative-input-path", _task(inputs=[{"path": "data/in", "content": "x"}]), "inputs[0].path"),
    ("relative-output-path", _task(outputs=[{"path": "out/x", "url": "file:///tmp/x"}]), "outputs[0].path"),
    ("relative-workdir", _exe(workdir="tmp"), "executors[0].workdir"),
    ("relative-stdin", _exe(stdin="in.txt"), "executors[0].stdin"),
    ("relative-stdout", _exe(stdout="out.txt"), "executors[0].stdout"),
    ("relative-stderr", _exe(stderr="err.txt"), "executors[0].stderr"),
    ("relative-volume", _task(volumes=["vol/A"]), "volumes[0]"),
    ("dotdot-input-path", _task(inputs=[{"path": "/data/../../etc/passwd", "content": "x"}]), "inputs[0].path"),
    ("dotdot-output-path", _task(outputs=[{"path": "/out/../x", "url": "file:///tmp/x"}]), "outputs[0].path"),
    ("dotdot-stdout", _exe(stdout="/out/../../x"), "executors[0].stdout"),
    ("dotdot-volume", _task(volumes=["/vol/.."]), "volumes[0]"),
    ("input-without-url-or-content", _task(inputs=[{"path": "/data/x"}]), "inputs[0].url"),
    ("input-without-path", _task(inputs=[{"content": "x"}]), "inputs[0].path"),
    ("output-without-path", _task(outputs=[{"url": "file:///tmp/x"}]), "outputs[0].path"),
    ("output-without-url", _task(outputs=[{"path": "/out/x"}]), "outputs[0].url"),
    ("wildcard-output-without-path_prefix", _task(outputs=[{"path": "/out/*.txt", "url": "file:///tmp/x"}]), "outputs[0].path_prefix"),
    ("unknown-file-type", _task(outputs=[{"path": "/out/x", "url": "file:///tmp/x", "type": "LINK"}]), "outputs[0].type"),
    ("content-too-large", _task(inputs=[{"path": "/data/x", "content": "é" * 513}]), "inputs[0].content"),
    (
        "unknown-strict-backend-parameter",
        _task(resources={"backend_parameters": {"VmSize": "Standard_D64_v3"}, "backend_parameters_strict": True}),
        "VmSize",
    ),
    ("tags-not-strings", _task(tags={"a": 1}), "tags"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "field"), [b[1:] for b in BAD_TASKS], ids=[b[0] for b in BAD_TASKS]
)
def test_bad_task_is_refused_and_not_stored(
    docker_hub: RunningHub, document: Any, field: str
) -> None:
    before = docker_hub.api.count()
    detail = error_detail(docker_hub.api.request("POST", "/tasks", json=document), 400)
    assert field in detail, f"the detail should name {field!r}: {detail!r}"
    assert docker_hub.api.count() == before


def test_input_outside_the_allowed_dirs_is_refused(docker_hub: RunningHub, tmp_path: Any) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not for tasks")
    before = docker_hub.api.count()
    for field, document in (
        ("inputs[0].url", _task(inputs=[{"path": "/data/x", "url": file_url(outside)}])),
        ("inputs[0].url", _task(inputs=[{"path": "/data/x", "url": str(outside)}])),
        ("outputs[0].url", _task(outputs=[{"path": "/out/x", "url": file_url(tmp_path / "o")}])),
    ):
        detail = error_detail(docker_hub.api.request("POST", "/tasks", json=document), 400)
        assert field in detail, detail
    assert docker_hub.api.count() == before


@pytest.mark.parametrize(
    ("body", "word"),
    [
        (b'{"executors": [', "JSON"),
        (b"", ""),
        (b"[]", ""),
        (b'"a task"', ""),
    ],
    ids=["malformed", "empty", "array", "string"],
)
def test_body_that_is_not_a_task_is_refused(docker_hub: RunningHub, body: bytes, word: str) -> None:
    before = docker_hub.api.count()
    response = docker_hub.api.request(
        "POST", "/tasks", content=body, headers={"Content-Type": "application/json"}
    )
    assert word in error_detail(response, 400)
    assert docker_hub.api.count() == before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"view": "EVERYTHING"}, "view"),
        ({"view": "full"}, "view"),
        ({"state": "DONE"}, "state"),
        ({"page_size": "2048"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "-1"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"page_token": "not-a-token"}, "page_token"),
    ],
    ids=lambda v: "-".join(map(str, v.items())) if isinstance(v, dict) else v,
)
def test_bad_list_parameters(docker_hub: RunningHub, params: dict[str, str], field: str) -> None:
    detail = error_detail(docker_hub.api.request("GET", "/tasks", params=params), 400)
    assert field in detail, detail


def test_unknown_view_on_get_task(docker_hub: RunningHub, rich: Any) -> None:
    task_id, _, _ = rich
    detail = error_detail(
        docker_hub.api.request("GET", f"/tasks/{task_id}", params={"view": "ALL"}), 400
    )
    assert "view" in detail


def test_unknown_task_is_404(docker_hub: RunningHub) -> None:
    missing = "no-such-task-" + uuid.uuid4().hex
    assert missing in error_detail(docker_hub.api.request("GET", f"/tasks/{missing}"), 404)
    assert missing in error_detail(
        docker_hub.api.request("GET", f"/tasks/{missing}", params={"view": "FULL"}), 404
    )


def test_every_task_of_this_module_ended(docker_hub: RunningHub) -> None:
    """Last: nothing this module started is stuck, and each ended task validates in FULL."""
    api: TesApi = docker_hub.api
    deadline = time.monotonic() + 20
    while True:
        tasks = api.all_tasks(view="FULL")
        if all(t["state"] in TERMINAL_STATES for t in tasks) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    stuck = [(t["id"], t["state"]) for t in tasks if t["state"] not in TERMINAL_STATES]
    assert not stuck
