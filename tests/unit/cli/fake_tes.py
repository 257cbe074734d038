"""An in-memory TES server behind ``httpx.MockTransport``, and a CLI wired to it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from toolferry.cli.client import TesClient
from toolferry.cli.session import CliDeps, Session
from toolferry.config import Settings

BASE_URL = "http://hub.test"
PREFIX = "/ga4gh/tes/v1"


def executor_log(stdout: str = "", stderr: str = "", exit_code: int = 0) -> dict[str, Any]:
    return {
        "start_time": "2024-05-01T10:00:00Z",
        "end_time": "2024-05-01T10:00:01Z",
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
    }


@dataclass
class FakeTes:
    """Tasks go straight to ``final_state`` with ``attempt`` as their one task log, after
    ``polls_before_end`` MINIMAL reads in RUNNING. ``fail`` answers every request with an
    error instead: (status, body)."""

    final_state: str = "COMPLETE"
    attempt: dict[str, Any] = field(
        default_factory=lambda: {
            "start_time": "2024-05-01T10:00:00Z",
            "end_time": "2024-05-01T10:00:02Z",
            "logs": [executor_log("hello\n")],
            "outputs": [],
            "system_logs": [],
        }
    )
    polls_before_end: int = 0
    fail: tuple[int, Any] | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _polls: dict[str, int] = field(default_factory=dict)

    @property
    def submitted(self) -> list[dict[str, Any]]:
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == "POST" and r.url.path.endswith("/tasks")
        ]

    def add(self, task: dict[str, Any]) -> None:
        self.tasks[task["id"]] = task

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            status, body = self.fail
            if isinstance(body, str):
                return httpx.Response(status, text=body)
            return httpx.Response(status, json=body)
        path = request.url.path.removeprefix(PREFIX)
        if request.method == "POST" and path == "/tasks":
            task_id = f"task{next(self._ids):016d}"
            body = json.loads(request.content)
            self.tasks[task_id] = {
                **body,
                "id": task_id,
                "state": "QUEUED",
                "creation_time": "2024-05-01T10:00:00Z",
            }
            return httpx.Response(200, json={"id": task_id})
        if request.method == "GET" and path == "/tasks":
            return httpx.Response(200, json=self._list(request))
        if request.method == "GET" and path == "/service-info":
            return httpx.Response(200, json={"id": "test", "name": "fake"})
        if path.startswith("/tasks/"):
            task_id = path.removeprefix("/tasks/")
            if request.method == "POST" and task_id.endswith(":cancel"):
                task = self.tasks.get(task_id.removesuffix(":cancel"))
                if task is None:
                    return httpx.Response(404, json={"detail": "no such task"})
                task["state"] = "CANCELED"
                return httpx.Response(200, json={})
            task = self.tasks.get(task_id)
            if task is None:
                return httpx.Response(404, json={"detail": f"task {task_id} not found"})
            view = request.url.params.get("view", "MINIMAL")
            if view == "MINIMAL":
                self._advance(task)
                return httpx.Response(200, json={"id": task["id"], "state": task["state"]})
            return httpx.Response(200, json=task)
        return httpx.Response(404, json={"detail": "Not Found"})

    def _advance(self, task: dict[str, Any]) -> None:
        if task["state"] not in ("QUEUED", "RUNNING"):
            return
        seen = self._polls.get(task["id"], 0)
        self._polls[task["id"]] = seen + 1
        if seen < self.polls_before_end:
            task["state"] = "RUNNING"
        else:
            task["state"] = self.final_state
            task["logs"] = [self.attempt]

    def _list(self, request: httpx.Request) -> dict[str, Any]:
        tasks = list(self.tasks.values())
        size = int(request.url.params.get("page_size", "256"))
        start = int(request.url.params.get("page_token", "0"))
        page = tasks[start : start + size]
        body: dict[str, Any] = {"tasks": page}
        if start + size < len(tasks):
            body["next_page_token"] = str(start + size)
        return body

    def client(self, token: str | None = None) -> TesClient:
        return TesClient(BASE_URL, token, transport=httpx.MockTransport(self.handle))


# What an embedded hub in these tests says about its default runtime.
EMBEDDED_RUNTIME = ("none", "no Docker Engine answered")


def deps_for(fake: FakeTes, *, embedded: bool = False) -> CliDeps:
    """CliDeps whose commands talk to ``fake`` (settings still come from the environment);
    ``embedded``: as if the command had started its own hub."""

    @contextmanager
    def connect(settings: Settings) -> Iterator[Session]:
        with fake.client() as client:
            yield Session(
                client=client,
                url=BASE_URL,
                embedded=embedded,
                runtime_choice=EMBEDDED_RUNTIME if embedded else None,
            )

    return CliDeps(connect=connect)
