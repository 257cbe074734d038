"""The task: what a user asked for (the spec) and what happened (the logs), as frozen models.

Field names follow TES 1.1 so that conversion at the edges is a rename-free copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from toolferry.domain.states import State


class FileType(StrEnum):
    FILE = "FILE"
    DIRECTORY = "DIRECTORY"


@dataclass(frozen=True, kw_only=True)
class Input:
    path: str
    url: str | None = None
    content: str | None = None
    type: FileType = FileType.FILE
    name: str | None = None
    description: str | None = None
    streamable: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Output:
    path: str
    url: str
    path_prefix: str | None = None
    type: FileType = FileType.FILE
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True, kw_only=True)
class Executor:
    image: str
    command: tuple[str, ...]
    workdir: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ignore_error: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Resources:
    cpu_cores: int | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    preemptible: bool | None = None
    zones: tuple[str, ...] | None = None
    backend_parameters: dict[str, str] | None = None
    backend_parameters_strict: bool | None = None


@dataclass(frozen=True, kw_only=True)
class EnvironmentUse:
    """An executor whose image named a catalogue entry: what was asked, what it resolved to.
    The executor's ``image`` then holds the pinned reference it runs."""

    executor: int  # index into ``executors``
    requested: str  # the image as submitted, e.g. "catalogue:lab/align:2"
    entry: str  # "name:version"
    digest: str  # the entry's pinned digest


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """What the user submitted, after validation and normalisation."""

    executors: tuple[Executor, ...]
    name: str | None = None
    description: str | None = None
    inputs: tuple[Input, ...] = ()
    outputs: tuple[Output, ...] = ()
    resources: Resources | None = None
    volumes: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    # Set at submission when executors name catalogue entries (never by the submitter).
    environments: tuple[EnvironmentUse, ...] = ()

    def backend_parameter(self, key: str) -> str | None:
        params = (self.resources and self.resources.backend_parameters) or {}
        return params.get(key.lower())


@dataclass(frozen=True, kw_only=True)
class ExecutorLog:
    exit_code: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    stdout: str | None = None
    stderr: str | None = None


@dataclass(frozen=True, kw_only=True)
class OutputFileLog:
    url: str
    path: str
    size_bytes: int
    sha256: str | None = None


@dataclass(frozen=True, kw_only=True)
class InputFileLog:
    """One input as it was staged: ``sha256`` of the file, or of the tree manifest for a
    DIRECTORY input; ``cached`` when it came from the site's input cache without a download."""

    url: str
    path: str
    size_bytes: int
    sha256: str
    cached: bool = False
    directory: bool = False


@dataclass(frozen=True, kw_only=True)
class TaskLog:
    """One attempt at running the task."""

    logs: tuple[ExecutorLog, ...] = ()
    inputs: tuple[InputFileLog, ...] = ()
    outputs: tuple[OutputFileLog, ...] = ()
    system_logs: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Task:
    """A task as the store knows it: the spec plus everything derived from its events."""

    id: str
    owner: str
    spec: TaskSpec
    creation_time: datetime
    state: State = State.UNKNOWN
    logs: tuple[TaskLog, ...] = ()
    # System log lines known before any attempt started (e.g. ignored backend parameters).
    notes: tuple[str, ...] = ()
    version: int = 0


def spec_from_dict(data: dict[str, Any]) -> TaskSpec:
    """Rebuild a :class:`TaskSpec` from its JSON form (as stored)."""
    res = data.get("resources")
    return TaskSpec(
        executors=tuple(
            Executor(**{**e, "command": tuple(e["command"]), "env": dict(e.get("env") or {})})
            for e in data["executors"]
        ),
        name=data.get("name"),
        description=data.get("description"),
        inputs=tuple(
            Input(**{**i, "type": FileType(i.get("type", "FILE"))}) for i in data.get("inputs", ())
        ),
        outputs=tuple(
            Output(**{**o, "type": FileType(o.get("type", "FILE"))})
            for o in data.get("outputs", ())
        ),
        resources=Resources(
            **{**res, "zones": tuple(res["zones"]) if res.get("zones") is not None else None}
        )
        if res
        else None,
        volumes=tuple(data.get("volumes", ())),
        tags=dict(data.get("tags") or {}),
        environments=tuple(EnvironmentUse(**u) for u in data.get("environments") or ()),
    )
