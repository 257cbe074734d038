"""Task pages: the caller's tasks (admins: everyone's) with filters and keyset paging, one
task's page (state, executors, files, logs, timeline), and canceling a task."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from toolferry.api.files import PREFIX as FILES_PREFIX
from toolferry.domain.errors import InvalidTask, NotFound
from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.storage.hubfiles import BadPath, parse_hub_url
from toolferry.store.base import TaskQuery
from toolferry.web import paging, timeline
from toolferry.web.live import STREAMS, log_tails
from toolferry.web.pages import PREFIX, hub, render, require_csrf, who

PAGE_SIZE = 50
STATES = [str(s) for s in State if s is not State.UNKNOWN]


def download_link(url: str) -> str | None:
    """Where the browser downloads a ``hub://`` file through the files API (None: elsewhere)."""
    try:
        space, rel = parse_hub_url(url)
    except BadPath:
        return None
    return f"{FILES_PREFIX}/{space}/{quote(rel)}" if rel else None


def _files(task: Task) -> dict[str, list[dict[str, Any]]]:
    inputs = [
        {"path": i.path, "source": i.url or "(inline content)", "link": None}
        for i in task.spec.inputs
    ]
    uploaded = task.logs[-1].outputs if task.logs else ()
    if uploaded:  # what was really written (wildcards expanded), with sizes
        outputs = [
            {"path": o.path, "url": o.url, "size": o.size_bytes, "link": download_link(o.url)}
            for o in uploaded
        ]
    else:
        outputs = [
            {"path": o.path, "url": o.url, "size": None, "link": None} for o in task.spec.outputs
        ]
    return {"inputs": inputs, "outputs": outputs}


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/tasks")
    async def task_list(
        request: Request, state: str = "", name: str = "", page_token: str = ""
    ) -> Response:
        user = who(request)
        if state and state not in STATES:
            raise HTTPException(400, f"unknown state {state!r}")
        query = TaskQuery(
            name_prefix=name or None,
            state=State(state) if state else None,
            page_size=PAGE_SIZE,
            page_token=page_token or None,
        )
        try:
            page = await run_in_threadpool(hub(request).tasks.list, query, user)
        except InvalidTask as exc:
            raise HTTPException(400, str(exc)) from None
        filters = {"state": state, "name": name}
        return render(
            request,
            "tasks.html",
            user=user,
            title="Tasks",
            nav="tasks",
            tasks=page.tasks,
            states=STATES,
            filters=filters,
            links=paging.links(
                f"{PREFIX}/tasks",
                filters,
                current_token=page_token or None,
                next_token=page.next_page_token,
            ),
        )

    @api.get("/tasks/{task_id}")
    async def task_page(request: Request, task_id: str) -> Response:
        user = who(request)
        h = hub(request)
        try:
            task = await run_in_threadpool(h.tasks.get, task_id, user)
        except NotFound:
            raise HTTPException(404, f"no task {task_id}") from None
        events = await run_in_threadpool(h.store.events, task_id)
        tails = await run_in_threadpool(log_tails, task, h.site.config.work_dir)
        return render(
            request,
            "task.html",
            user=user,
            title=f"Task {task.spec.name or task.id}",
            nav="tasks",
            task=task,
            phases=timeline.build(events),
            files=_files(task),
            tails=tails,
            streams=STREAMS,
            system_logs=[*task.notes, *(m for log in task.logs for m in log.system_logs)],
        )

    @api.post("/tasks/{task_id}/cancel")
    async def cancel(request: Request, task_id: str) -> Response:
        user = who(request)
        await require_csrf(request)
        try:
            await run_in_threadpool(hub(request).tasks.cancel, task_id, user)
        except NotFound:
            raise HTTPException(404, f"no task {task_id}") from None
        return RedirectResponse(f"{PREFIX}/tasks/{quote(task_id)}", 303)

    return api
