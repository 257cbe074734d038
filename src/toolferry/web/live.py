"""Live task pages: executor log tails (recorded, or read from a running executor's files on
the hub's own site) and the server-sent events stream that pushes them and state changes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.scheduler.service import TaskService
from toolferry.security.identity import Identity
from toolferry.web.pages import hub, who
from toolferry.worker.layout import Layout

TAIL_BYTES = 10 * 1024  # as much as the worker records per stream
# The safety net under the store's notifications, and how often a running executor's files
# are read again (they change without the store knowing).
POLL_RUNNING_S = 0.5
POLL_IDLE_S = 5.0
STREAMS = ("stdout", "stderr")


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str | None:
    """The last ``limit`` bytes of ``path`` as text; None when it cannot be read."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return None


def log_tails(task: Task, site_work_dir: Path | None) -> dict[tuple[int, str], str]:
    """(executor index, stream) → text of the task's latest attempt: what the store recorded for
    executors that ended; for the others, the tail of their files when the attempt runs on the
    hub's own site (``site_work_dir``) and they exist."""
    if not task.logs:
        return {}
    attempt = task.logs[-1]
    tails: dict[tuple[int, str], str] = {}
    layout = None
    work_dir = attempt.metadata.get("work_dir")
    if work_dir and site_work_dir is not None and not task.state.terminal:
        candidate = Layout(Path(work_dir))
        # Only a folder under this hub's own work dir (metadata of a remote site names its own).
        if Path(os.path.realpath(work_dir)).is_relative_to(os.path.realpath(site_work_dir)):
            layout = candidate
    for index in range(len(task.spec.executors)):
        recorded = attempt.logs[index] if index < len(attempt.logs) else None
        if recorded is not None and recorded.exit_code is not None:
            for stream in STREAMS:
                text = getattr(recorded, stream) or ""
                if text:
                    tails[(index, stream)] = text
            continue
        if layout is None:
            continue
        for stream in STREAMS:
            path = (layout.stdout if stream == "stdout" else layout.stderr)(task.spec, index)
            if not layout.confines(path):
                continue  # an executor replaced it with a link out of the task's files
            text = read_tail(path)
            if text:
                tails[(index, stream)] = text
    return tails


class Wakers:
    """Wakes the streams that follow a task when the store commits a change to it. The store
    calls :meth:`notify` on its writer's thread: it only schedules wake-ups."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def notify(self, task: Task) -> None:
        with self._lock:
            waiting = list(self._waiting.get(task.id, ()))
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)

    def add(self, task_id: str) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.setdefault(task_id, set()).add(entry)
        return entry

    def remove(self, task_id: str, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            waiting = self._waiting.get(task_id)
            if waiting is not None:
                waiting.discard(entry)
                if not waiting:
                    del self._waiting[task_id]


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event (JSON data holds no newline)."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def follow(
    request: Request,
    service: TaskService,
    wakers: Wakers,
    task_id: str,
    user: Identity,
    site_work_dir: Path | None,
) -> AsyncIterator[str]:
    """State changes and changed log tails of one task until it ends (or the browser leaves)."""
    entry = wakers.add(task_id)
    _, woken = entry
    sent_state: State | None = None
    sent: dict[tuple[int, str], str] = {}
    try:
        yield "retry: 2000\n\n"
        while True:
            woken.clear()
            task = await run_in_threadpool(service.get, task_id, user)
            if task.state is not sent_state:
                sent_state = task.state
                yield sse("state", {"state": str(task.state), "terminal": task.state.terminal})
            tails = await run_in_threadpool(log_tails, task, site_work_dir)
            for (index, stream), text in sorted(tails.items()):
                if sent.get((index, stream)) != text:
                    sent[(index, stream)] = text
                    yield sse("log", {"executor": index, "stream": stream, "text": text})
            if task.state.terminal:
                yield sse("end", {"state": str(task.state)})
                return
            if await request.is_disconnected():
                return
            timeout = POLL_RUNNING_S if task.state is State.RUNNING else POLL_IDLE_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout)
    finally:
        wakers.remove(task_id, entry)


def router(wakers: Wakers) -> APIRouter:
    api = APIRouter()

    @api.get("/tasks/{task_id}/events")
    async def events(request: Request, task_id: str) -> StreamingResponse:
        user = who(request)
        h = hub(request)
        await run_in_threadpool(h.tasks.get, task_id, user)  # 404 before the stream starts
        return StreamingResponse(
            follow(request, h.tasks, wakers, task_id, user, h.site.config.work_dir),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return api
