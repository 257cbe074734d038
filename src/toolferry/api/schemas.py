"""TES 1.1 request bodies as pydantic models, converted to domain objects at the boundary.

Unknown and read-only fields (id, state, logs, creation_time) are ignored, as TES expects.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from toolferry.domain.task import Executor, FileType, Input, Output, Resources, TaskSpec


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InputIn(_In):
    @model_validator(mode="after")
    def _empty_content_with_url(self) -> InputIn:
        # TES: "If content is not empty, url must be ignored": with a url, "" is no content;
        # without one, it is an empty file.
        if self.content == "" and self.url:
            self.content = None
        return self

    name: str | None = None
    description: str | None = None
    url: str | None = Field(default=None, description="Where to fetch the input; not with content.")
    path: str = Field(description="Absolute path of the file inside the container.")
    type: FileType = FileType.FILE
    content: str | None = Field(default=None, description="Inline UTF-8 file content.")
    streamable: bool | None = None


class OutputIn(_In):
    name: str | None = None
    description: str | None = None
    url: str
    path: str
    path_prefix: str | None = None
    type: FileType = FileType.FILE


class ExecutorIn(_In):
    image: str = Field(json_schema_extra={"minLength": 1})
    command: list[str] = Field(
        json_schema_extra={"minItems": 1}, description="argv: the program, then its arguments."
    )
    workdir: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    env: dict[str, str] | None = None
    ignore_error: bool | None = None


class ResourcesIn(_In):
    cpu_cores: int | None = None
    preemptible: bool | None = None
    ram_gb: float | None = Field(default=None, allow_inf_nan=False)
    disk_gb: float | None = Field(default=None, allow_inf_nan=False)
    zones: list[str] | None = None
    backend_parameters: dict[str, str] | None = None
    backend_parameters_strict: bool | None = None


class TaskIn(_In):
    """A TES task document as submitted (``tesTask``)."""

    name: str | None = None
    description: str | None = None
    inputs: list[InputIn] | None = None
    outputs: list[OutputIn] | None = None
    resources: ResourcesIn | None = None
    executors: list[ExecutorIn] = Field(
        json_schema_extra={"minItems": 1}, description="Run one after the other; at least one."
    )
    volumes: list[str] | None = None
    tags: dict[str, str] | None = None

    def to_domain(self) -> TaskSpec:
        res = self.resources
        return TaskSpec(
            name=self.name,
            description=self.description,
            executors=tuple(
                Executor(
                    image=e.image,
                    command=tuple(e.command),
                    workdir=e.workdir,
                    stdin=e.stdin,
                    stdout=e.stdout,
                    stderr=e.stderr,
                    env=dict(e.env or {}),
                    ignore_error=e.ignore_error,
                )
                for e in self.executors
            ),
            inputs=tuple(Input(**i.model_dump()) for i in self.inputs or ()),
            outputs=tuple(Output(**o.model_dump()) for o in self.outputs or ()),
            resources=Resources(
                **{**res.model_dump(), "zones": tuple(res.zones) if res.zones is not None else None}
            )
            if res
            else None,
            volumes=tuple(self.volumes or ()),
            tags=dict(self.tags or {}),
        )


class CreateTaskResponse(BaseModel):
    id: str = Field(description="Task identifier assigned by the server.")


# -- Responses, for the OpenAPI description only: handlers build the JSON in api/views.py -------
class ExecutorLogOut(BaseModel):
    start_time: str | None = Field(default=None, description="RFC 3339.")
    end_time: str | None = Field(default=None, description="RFC 3339.")
    stdout: str | None = Field(default=None, description="Tail of stdout (FULL view).")
    stderr: str | None = Field(default=None, description="Tail of stderr (FULL view).")
    exit_code: int


class OutputFileLogOut(BaseModel):
    url: str
    path: str
    size_bytes: str = Field(description="Size in bytes, as a string (int64).")


class TaskLogOut(BaseModel):
    logs: list[ExecutorLogOut] = Field(description="One per executor that has ended.")
    metadata: dict[str, str] | None = Field(
        default=None, description="host, backend, runtime and work_dir of the attempt."
    )
    start_time: str | None = None
    end_time: str | None = None
    outputs: list[OutputFileLogOut]
    system_logs: list[str] | None = Field(
        default=None, description="Warnings and the cause of a SYSTEM_ERROR (FULL view)."
    )


class TaskOut(BaseModel):
    """``tesTask``: the submitted document plus id, state, logs (one per attempt), times."""

    id: str
    state: str = Field(description="One of the eleven tesState values.")
    name: str | None = None
    description: str | None = None
    inputs: list[InputIn] | None = None
    outputs: list[OutputIn] | None = None
    resources: ResourcesIn | None = None
    executors: list[ExecutorIn] | None = Field(default=None, description="Absent in MINIMAL.")
    volumes: list[str] | None = None
    tags: dict[str, str] | None = None
    logs: list[TaskLogOut] | None = None
    creation_time: str | None = None


class ListTasksOut(BaseModel):
    tasks: list[TaskOut]
    next_page_token: str | None = None


class ServiceTypeOut(BaseModel):
    group: str
    artifact: str
    version: str


class OrganizationOut(BaseModel):
    name: str
    url: str


class ServiceInfoOut(BaseModel):
    """GA4GH service-info 1.0 plus TES's ``storage`` and ``tesResources_backend_parameters``."""

    id: str
    name: str
    type: ServiceTypeOut
    description: str | None = None
    organization: OrganizationOut
    contactUrl: str | None = None
    documentationUrl: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    version: str
    storage: list[str]
    tesResources_backend_parameters: list[str]


class LegacyServiceInfoOut(BaseModel):
    """TES 1.0 ``ServiceInfo``."""

    name: str
    doc: str
    storage: list[str]


class ErrorOut(BaseModel):
    detail: str = Field(description="What is wrong, naming the field.")
