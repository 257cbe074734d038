"""Domain tasks to TES JSON, per view (MINIMAL / BASIC / FULL), and the TES 1.0 shape of /v1."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from typing import Any

from toolferry.domain.states import State
from toolferry.domain.task import Task, TaskLog, TaskSpec
from toolferry.storage.redact import redact


class View(StrEnum):
    MINIMAL = "MINIMAL"
    BASIC = "BASIC"
    FULL = "FULL"


def rfc3339(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value


def _task_log(
    log: TaskLog, notes: tuple[str, ...], full: bool, used: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start_time": rfc3339(log.start_time),
        "end_time": rfc3339(log.end_time),
        "metadata": {**log.metadata, **checksums(log), **used},
        # TES makes exit_code required: an executor appears once it has ended.
        "logs": [
            {
                "start_time": rfc3339(e.start_time),
                "end_time": rfc3339(e.end_time),
                "exit_code": e.exit_code,
                **({"stdout": e.stdout or "", "stderr": e.stderr or ""} if full else {}),
            }
            for e in log.logs
            if e.exit_code is not None
        ],
        "outputs": [
            {"url": redact(o.url), "path": o.path, "size_bytes": str(o.size_bytes)}
            for o in log.outputs
        ],
    }
    if full:
        out["system_logs"] = [*notes, *log.system_logs]
    return out


def checksums(log: TaskLog) -> dict[str, str]:
    """TES has no field for checksums: they go in the task log's metadata, one key per path
    (``sha256:<path>``; a DIRECTORY input's digest covers its whole tree)."""
    sums = {f"sha256:{i.path}": i.sha256 for i in log.inputs}
    sums.update({f"sha256:{o.path}": o.sha256 for o in log.outputs if o.sha256})
    return sums


def environments_used(task: Task) -> dict[str, str]:
    """TES has no field for it either: which catalogue entry each executor ran, in the task
    log's metadata (``environment:executors[0]`` → ``lab/align:2@sha256:...``)."""
    return {
        f"environment:executors[{u.executor}]": f"{u.entry}@{u.digest}"
        for u in task.spec.environments
    }


def minimal(task_id: str, state: State, *, legacy: bool = False) -> dict[str, Any]:
    """The MINIMAL view: id and state only."""
    shown = _LEGACY_STATE.get(state, state) if legacy else state
    return {"id": task_id, "state": str(shown)}


def task_document(spec: TaskSpec) -> dict[str, Any]:
    """A task as a client would submit it (TES ``tesTask`` fields, no nulls)."""
    doc = _drop_none(asdict(spec))
    doc.pop("environments", None)
    return doc  # type: ignore[no-any-return]


def render(task: Task, view: View) -> dict[str, Any]:
    """The TES 1.1 ``tesTask`` for ``view``."""
    if view is View.MINIMAL:
        return minimal(task.id, task.state)
    full = view is View.FULL
    spec = _drop_none(asdict(task.spec))
    spec.pop("environments", None)
    used = environments_used(task)
    for item in (*spec.get("inputs", []), *spec.get("outputs", [])):
        if "url" in item:  # credentials a user put in a URL are never shown back
            item["url"] = redact(item["url"])
    if not full:
        for inp in spec.get("inputs", []):
            inp.pop("content", None)
    logs = [
        _task_log(log, task.notes if i == 0 else (), full, used) for i, log in enumerate(task.logs)
    ]
    if not logs and (task.notes or used):
        # Notes from before any attempt (e.g. an ignored backend parameter) and the catalogue
        # entries resolved at submission need a task log to live in; BASIC shows the same log
        # without its system_logs.
        logs = [
            {
                "logs": [],
                "outputs": [],
                **({"metadata": used} if used else {}),
                **({"system_logs": list(task.notes)} if full and task.notes else {}),
            }
        ]
    doc: dict[str, Any] = {"id": task.id, "state": str(task.state), **spec, "logs": logs}
    doc["creation_time"] = rfc3339(task.creation_time)
    return _drop_none(doc)  # type: ignore[no-any-return]


# -- TES 1.0 (py-tes 0.4.x and the workflow engines that pin it validate strictly) -----------
_LEGACY_STATE = {
    State.PAUSED: State.QUEUED,
    State.PREEMPTED: State.SYSTEM_ERROR,
    # Still stopping: old clients' wait() must not return before the executor is gone.
    State.CANCELING: State.RUNNING,
}
_NEW_IN_1_1 = {
    "executors": ("ignore_error",),
    "inputs": ("streamable",),
    "outputs": ("path_prefix",),
}


def render_legacy(task: Task, view: View) -> dict[str, Any]:
    """``render`` without the fields and states TES 1.1 added, for clients of /v1."""
    doc = render(task, view)
    doc["state"] = str(_LEGACY_STATE.get(task.state, task.state))
    for key, fields in _NEW_IN_1_1.items():
        for item in doc.get(key, []):
            for name in fields:
                item.pop(name, None)
    resources = doc.get("resources")
    if resources:
        resources.pop("backend_parameters", None)
        resources.pop("backend_parameters_strict", None)
    return doc
