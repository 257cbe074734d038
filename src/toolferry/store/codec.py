"""Domain objects to JSON-able dicts and back, for the store's JSON columns."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from toolferry.domain.task import ExecutorLog, InputFileLog, OutputFileLog, TaskLog, TaskSpec
from toolferry.store.columns import as_utc


def aware(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC (every time toolferry stores is)."""
    return as_utc(value)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def spec_to_json(spec: TaskSpec) -> dict[str, Any]:
    return asdict(spec)


def logs_to_json(logs: tuple[TaskLog, ...]) -> list[dict[str, Any]]:
    return [
        {
            "start_time": _time(log.start_time),
            "end_time": _time(log.end_time),
            "metadata": log.metadata,
            "system_logs": list(log.system_logs),
            "inputs": [asdict(i) for i in log.inputs],
            "outputs": [asdict(o) for o in log.outputs],
            "logs": [
                {
                    "exit_code": e.exit_code,
                    "start_time": _time(e.start_time),
                    "end_time": _time(e.end_time),
                    "stdout": e.stdout,
                    "stderr": e.stderr,
                }
                for e in log.logs
            ],
        }
        for log in logs
    ]


def logs_from_json(data: list[dict[str, Any]]) -> tuple[TaskLog, ...]:
    return tuple(
        TaskLog(
            start_time=_parse(log.get("start_time")),
            end_time=_parse(log.get("end_time")),
            metadata=dict(log.get("metadata") or {}),
            system_logs=tuple(log.get("system_logs") or ()),
            inputs=tuple(InputFileLog(**i) for i in log.get("inputs") or ()),
            outputs=tuple(OutputFileLog(**o) for o in log.get("outputs") or ()),
            logs=tuple(
                ExecutorLog(
                    exit_code=e.get("exit_code"),
                    start_time=_parse(e.get("start_time")),
                    end_time=_parse(e.get("end_time")),
                    stdout=e.get("stdout"),
                    stderr=e.get("stderr"),
                )
                for e in log.get("logs") or ()
            ),
        )
        for log in data
    )


def event_data_to_json(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (_time(v) if isinstance(v, datetime) else v) for k, v in data.items()}
