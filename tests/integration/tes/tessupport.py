"""Support for the TES conformance tests: the spec's schemas, a validating HTTP client, helpers.

Every JSON document a :class:`TesApi` call gets back is checked twice against the TES 1.1.0
OpenAPI document kept next to this file (a verbatim copy of ``specs/tes-1.1.0.openapi.yaml``):

* with the spec's own schemas (local ``$ref`` resolved; the GA4GH service-info ``Service``
  schema, an external ``$ref`` in the spec, is transcribed from ga4gh-service-info v1.0.0), and
* strictly: every object may only hold properties the spec defines, since strict clients
  (py-tes builds attrs classes from the documents) break on anything else.

Times must be RFC 3339 and ``size_bytes`` an int64 written as a string, as the spec says.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from tests.helpers.schemas import strict as strict_schemas

from toolferry.config import Settings
from toolferry.domain.states import State
from toolferry.hub import Hub, serve_embedded
from toolferry.security.identity import LOCAL

SPEC_PATH = Path(__file__).with_name("tes-1.1.0.openapi.yaml")
TES_PREFIX = "/ga4gh/tes/v1"
LEGACY_PREFIX = "/v1"
TEST_IMAGE = "toolferry-test/busybox:1"

ACTIVE_STATES = frozenset({"QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "CANCELING"})
TERMINAL_STATES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_TIME_FIELDS = {"creation_time", "start_time", "end_time", "createdAt", "updatedAt"}

# ga4gh-service-info v1.0.0 service-info.yaml#/components/schemas/{Service,ServiceType}
_GA4GH_SERVICE_TYPE = {
    "type": "object",
    "required": ["group", "artifact", "version"],
    "properties": {
        "group": {"type": "string"},
        "artifact": {"type": "string"},
        "version": {"type": "string"},
    },
}
_GA4GH_SERVICE = {
    "type": "object",
    "required": ["id", "name", "type", "organization", "version"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "type": _GA4GH_SERVICE_TYPE,
        "description": {"type": "string"},
        "organization": {
            "type": "object",
            "required": ["name", "url"],
            "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
        },
        "contactUrl": {"type": "string"},
        "documentationUrl": {"type": "string"},
        "createdAt": {"type": "string"},
        "updatedAt": {"type": "string"},
        "environment": {"type": "string"},
        "version": {"type": "string"},
    },
}
SERVICE_INFO_FIELDS = frozenset(_GA4GH_SERVICE["properties"]) | {
    "storage",
    "tesResources_backend_parameters",
}


@cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)  # type: ignore[no-any-return]


def _components(minimal: bool) -> dict[str, Any]:
    schemas = copy.deepcopy(spec()["components"]["schemas"])
    # The two schemas that $ref the GA4GH service-info document: inline what they refer to.
    schemas["tesServiceType"]["allOf"][0] = _GA4GH_SERVICE_TYPE
    schemas["tesServiceInfo"]["allOf"][0] = _GA4GH_SERVICE
    if minimal:
        # The MINIMAL view 'will include ONLY the fields tesTask.Id, tesTask.State', which the
        # spec's own tesTask schema (required: executors) does not allow for: the view wins.
        schemas["tesTask"]["required"] = ["id", "state"]
    return schemas


@cache
def _validator(name: str, strict: bool, minimal: bool) -> jsonschema.protocols.Validator:
    components = _components(minimal)
    if strict:
        components = strict_schemas(components)
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": components}}
    cls = jsonschema.validators.validator_for(root, default=jsonschema.Draft7Validator)
    cls.check_schema(root)
    return cls(root)  # type: ignore[no-any-return]


def _walk(doc: Any, path: str = "$") -> Iterator[tuple[str, str, Any]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _walk(value, f"{path}[{i}]")


def problems(doc: Any, schema: str, *, minimal: bool = False) -> list[str]:
    """Everything in ``doc`` that breaks the spec's schema ``schema`` (empty when it conforms);
    ``minimal``: tasks in it are in the MINIMAL view."""
    found = [
        f"{schema}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in _validator(schema, False, minimal).iter_errors(doc)
    ]
    if schema == "tesServiceInfo":
        # allOf defeats additionalProperties: check the top-level names by hand.
        extra = sorted(set(doc) - SERVICE_INFO_FIELDS) if isinstance(doc, dict) else []
        found += [f"{schema}: field {name!r} is not defined by the spec" for name in extra]
    else:
        found += [
            f"{schema} (no fields beyond the spec's): "
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in _validator(schema, True, minimal).iter_errors(doc)
            if e.validator == "additionalProperties"
        ]
    for where, key, value in _walk(doc):
        if key in _TIME_FIELDS and not (isinstance(value, str) and RFC3339.match(value)):
            found.append(f"{where}.{key} = {value!r} is not an RFC 3339 date-time")
        if key == "size_bytes" and not (isinstance(value, str) and value.isdigit()):
            found.append(f"{where}.size_bytes = {value!r} is not an int64 as a string")
    return found


def assert_conforms(doc: Any, schema: str, *, minimal: bool = False) -> None:
    found = problems(doc, schema, minimal=minimal)
    assert not found, "response breaks the TES 1.1.0 spec:\n  " + "\n  ".join(found)


class ApiError(AssertionError):
    pass


class TesApi:
    """The five TES 1.1 operations over HTTP; every response is checked against the spec.

    ``http`` is the raw client (base URL = the hub) for requests the spec does not allow.
    """

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30)

    def close(self) -> None:
        self.http.close()

    # -- raw -------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, TES_PREFIX + path, **kwargs)

    def _ok(self, response: httpx.Response, schema: str, *, minimal: bool = False) -> Any:
        if response.status_code != 200:
            raise ApiError(
                f"{response.request.method} {response.request.url} answered "
                f"{response.status_code}: {response.text}"
            )
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert_conforms(body, schema, minimal=minimal)
        return body

    # -- the spec's operations ---------------------------------------------------------------
    def service_info(self) -> dict[str, Any]:
        return self._ok(self.request("GET", "/service-info"), "tesServiceInfo")  # type: ignore[no-any-return]

    def create(self, task: Mapping[str, Any]) -> str:
        body = self._ok(self.request("POST", "/tasks", json=task), "tesCreateTaskResponse")
        assert set(body) == {"id"}, body
        return body["id"]  # type: ignore[no-any-return]

    def get(self, task_id: str, view: str | None = None) -> dict[str, Any]:
        params = {"view": view} if view else {}
        response = self.request("GET", f"/tasks/{task_id}", params=params)
        return self._ok(response, "tesTask", minimal=view in (None, "MINIMAL"))  # type: ignore[no-any-return]

    def list(self, query: list[tuple[str, str]] | None = None, **params: Any) -> dict[str, Any]:
        """ListTasks with ``params`` (None values left out) and then the pairs of ``query``
        (for repeated parameters in a chosen order, e.g. tag_key/tag_value)."""
        pairs = [(k, str(v)) for k, v in params.items() if v is not None] + list(query or [])
        response = self.request("GET", "/tasks", params=pairs)
        minimal = params.get("view") in (None, "MINIMAL")
        return self._ok(response, "tesListTasksResponse", minimal=minimal)  # type: ignore[no-any-return]

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._ok(self.request("POST", f"/tasks/{task_id}:cancel"), "tesCancelTaskResponse")  # type: ignore[no-any-return]

    # -- conveniences ------------------------------------------------------------------------
    def all_tasks(self, **params: Any) -> list[dict[str, Any]]:
        """Every task the caller may list, following next_page_token."""
        tasks: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.list(page_size=2047, page_token=token, **params)
            tasks += page["tasks"]
            token = page.get("next_page_token")
            if not token:
                return tasks

    def count(self) -> int:
        return len(self.all_tasks())

    def wait(
        self,
        task_id: str,
        *,
        until: frozenset[str] = TERMINAL_STATES,
        timeout: float = 20,
        view: str = "FULL",
    ) -> dict[str, Any]:
        """Poll the task until its state is in ``until``; return it in ``view``."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            task = self.get(task_id, view)
            if not seen or seen[-1] != task["state"]:
                seen.append(task["state"])
            if task["state"] in until:
                return task
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"task {task_id} did not reach {sorted(until)} in {timeout}s "
                    f"(states seen: {' -> '.join(seen)}): {task}"
                )
            time.sleep(0.05)

    def run(self, task: Mapping[str, Any], *, timeout: float = 20) -> dict[str, Any]:
        """Create ``task``, wait for its end, return it in the FULL view."""
        return self.wait(self.create(task), timeout=timeout)


def executor(*command: str, **fields: Any) -> dict[str, Any]:
    return {"image": TEST_IMAGE, "command": list(command), **fields}


def sh(script: str, **fields: Any) -> dict[str, Any]:
    return executor("sh", "-c", script, **fields)


def error_detail(response: httpx.Response, status: int) -> str:
    """Assert ``response`` is ``status`` with a JSON ``{"detail": "..."}``; return the detail."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} answered {response.status_code}, "
        f"expected {status}: {response.text}"
    )
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str), body
    return body["detail"]  # type: ignore[no-any-return]


def file_url(path: Path) -> str:
    return f"file://{path}"


def task_containers(task_id: str) -> dict[str, str]:
    """Containers (name → state) the docker runtime made for ``task_id``, stopped ones too."""
    from tests.helpers import services

    proc = services.docker(
        "ps", "-a", "--filter", f"label=toolferry.task={task_id}",
        "--format", "{{.Names}}\t{{.State}}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    lines = proc.stdout.decode().splitlines()
    return dict(line.split("\t", 1) for line in lines if line.strip())


def containers_gone(task_id: str, timeout: float = 15) -> bool:
    """Whether the task's containers are removed within ``timeout`` (removal runs in the
    background, off the task's critical path)."""
    deadline = time.monotonic() + timeout
    while task_containers(task_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for(check: Any, what: str, timeout: float = 10) -> Any:
    """Poll ``check()`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(proc.name))
    return pids


# -- running hubs ------------------------------------------------------------------------------


@dataclass
class RunningHub:
    hub: Hub
    url: str
    api: TesApi  # no token: fine while the hub runs without auth

    @property
    def settings(self) -> Settings:
        return self.hub.settings

    @property
    def storage(self) -> Path:
        return self.hub.settings.storage_dir

    def client(self, token: str | None = None) -> TesApi:
        """Another spec-checking client of this hub (closed with the hub)."""
        api = TesApi(self.url, token=token)
        self._clients.append(api)
        return api

    def __post_init__(self) -> None:
        self._clients: list[TesApi] = []

    def close_clients(self) -> None:
        for api in [self.api, *self._clients]:
            api.close()


def drain(hub: Hub) -> None:
    """Cancel what still runs on ``hub`` and wait until it has ended (teardown)."""
    active = hub.store.in_states(frozenset(State(s) for s in ACTIVE_STATES), limit=10_000)
    for task in active:
        with contextlib.suppress(Exception):
            hub.tasks.cancel(task.id, LOCAL)
    deadline = time.monotonic() + 20
    for task in active:
        while hub.store.get(task.id).state not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task.id} did not end after cancel at teardown")
            time.sleep(0.05)


@contextlib.contextmanager
def running_hub(settings: Settings) -> Iterator[RunningHub]:
    with serve_embedded(settings) as (hub, url):
        running = RunningHub(hub=hub, url=url, api=TesApi(url))
        try:
            yield running
        finally:
            try:
                drain(hub)
            finally:
                running.close_clients()


HubFactory = Callable[..., RunningHub]
