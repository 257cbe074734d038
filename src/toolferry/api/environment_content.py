"""Catalogue content routes: import (an OCI reference, or a file at a URL the hub can read),
build a recipe with the local engine, export a version as a file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from toolferry.api import errors
from toolferry.api.environments import PREFIX, EnvironmentOut, Name, Version, environment_out
from toolferry.api.schemas import ErrorOut
from toolferry.api.tes import Who
from toolferry.api.views import task_document
from toolferry.catalogue.exporting import EXPORT_MEDIA_TYPES, FORMATS, export
from toolferry.catalogue.importing import UPLOAD_FORMATS
from toolferry.domain.errors import InvalidTask

__all__ = ["install"]

_ERROR: dict[str, Any] = {"model": ErrorOut}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: _ERROR for code in (400, 401, 403, 404, 409, 502, 503)
}
_ALL_FORMATS = sorted({f for formats in FORMATS.values() for f in formats})


class ImportIn(BaseModel):
    """Where the content is (one of ``reference`` and ``url``) and the metadata to publish it
    with: what the content says about itself (image labels and config, disk format and size,
    SIF header) fills the rest."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"reference": "127.0.0.1:5000/lab/align:1.0", "document": {"name": "lab/align"}},
                {"url": "hub://SPACE/disk.qcow2", "document": {"name": "lab/vm"}},
            ]
        },
    )

    reference: str | None = Field(
        default=None,
        max_length=1024,
        description="An OCI image reference, host/repository[:tag][@sha256:...]; a digest is "
        "checked against what the registry serves.",
    )
    url: str | None = Field(
        default=None,
        max_length=4096,
        description="A file the hub fetches as your tasks would (hub://, https://, s3://, ...): "
        "a Docker or OCI archive, a Dockerfile or build context tar, a VM disk (qcow2, raw, "
        "vmdk, OVA) or an Apptainer SIF.",
    )
    format: str | None = Field(
        default=None,
        description=f"With url: what the file is ({', '.join(UPLOAD_FORMATS)}); checked "
        "against its bytes, which decide when it is left out.",
    )
    platform: str = Field(
        default="linux/amd64",
        description="For images: the platform whose config fills the metadata.",
    )
    document: dict[str, Any] = Field(
        description="The environment document (name required; kind and digest come from the "
        "content). Its fields win over what the content says, field by field.",
    )


class BuildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] = Field(
        default_factory=dict,
        description="Metadata of the built image; name defaults to the recipe's (the image "
        "then becomes its next version, based on the recipe).",
    )


class RunIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"bindings": {"reads": "hub://SPACE/reads.fq", "threads": "4"}}]
        },
    )

    bindings: dict[str, str] = Field(
        default_factory=dict,
        description="Input and output names → URLs, parameter names → values; unbound names "
        "take their defaults.",
    )
    name: str | None = Field(default=None, description="The task's name.")
    dry_run: bool = Field(
        default=False, description="Answer the TES task document instead of submitting it."
    )


class RunOut(BaseModel):
    id: str | None = Field(default=None, description="The submitted task's id.")
    task: dict[str, Any] | None = Field(default=None, description="With dry_run: the task.")


def _work(request: Request) -> FsPath:
    root: FsPath = request.app.state.hub.settings.data_dir / "tmp" / "catalogue"
    root.mkdir(parents=True, exist_ok=True)
    return FsPath(tempfile.mkdtemp(prefix="export-", dir=root))


def router() -> APIRouter:
    api = APIRouter(tags=["environments"])

    @api.post(
        ":import",
        summary="Import an environment from an OCI reference or a file",
        status_code=201,
        response_model=EnvironmentOut,
        responses=_ERRORS,
    )
    def import_environment(body: ImportIn, request: Request, who: Who) -> dict[str, Any]:
        """Copies the content into the catalogue's store, pinned by digest, and publishes it."""
        hub = request.app.state.hub
        if (body.reference is None) == (body.url is None):
            raise InvalidTask("reference", "give either reference or url (one of them)")
        if body.reference is not None:
            if body.format is not None:
                raise InvalidTask("format", "goes with url, not with reference")
            env = hub.importer.from_reference(
                body.reference, body.document, who, platform=body.platform
            )
            return environment_out(env)
        work = _work(request)
        try:
            path = work / "upload"
            hub.fetch_for(who, str(body.url), path)
            env = hub.importer.from_file(
                path, body.document, who, declared=body.format, platform=body.platform
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return environment_out(env)

    @api.post(
        "/{name:envname}/versions/{version:envversion}:build",
        summary="Build a recipe into an image",
        status_code=201,
        response_model=EnvironmentOut,
        responses=_ERRORS,
    )
    def build(
        name: Name, version: Version, body: BuildIn, request: Request, who: Who
    ) -> dict[str, Any]:
        """Builds the recipe with the hub's container engine, without network, and publishes
        the image (by default as the next version of the recipe's name)."""
        env = request.app.state.hub.importer.build(name, version, body.document, who)
        return environment_out(env)

    @api.post(
        "/{name:envname}/versions/{version:envversion}:run",
        summary="Run an environment's tool interface as a TES task",
        response_model=RunOut,
        response_model_exclude_none=True,
        responses=_ERRORS,
    )
    def run(
        name: Name, version: Version, body: RunIn, request: Request, who: Who
    ) -> dict[str, Any]:
        """Makes a TES task from the version's tool interface (command, files, parameters,
        minimal hardware) running ``catalogue:NAME:VERSION``, and submits it as the caller."""
        hub = request.app.state.hub
        env = hub.catalogue.get(name, version, who)
        if env.interface is None:
            raise InvalidTask("interface", f"{env.ref} has no tool interface to run")
        hardware = env.classification.minimal_hardware
        spec = env.interface.to_task_spec(
            f"catalogue:{env.ref}",
            body.bindings,
            body.name,
            resources=hardware.to_resources() if hardware is not None else None,
        )
        if body.dry_run:
            return {"task": task_document(spec)}
        return {"id": hub.tasks.submit(spec, who).id}

    @api.get(
        "/{name:envname}/versions/{version:envversion}/export",
        summary="Export an environment version as a file",
        response_class=FileResponse,
        responses={
            200: {
                "content": {
                    media: {
                        "schema": {"type": "object"}  # format=json: the entry
                        if media == "application/json"
                        else {"type": "string", "format": "binary"}
                    }
                    for media in EXPORT_MEDIA_TYPES
                },
                "description": "The file, named in Content-Disposition.",
            },
            **_ERRORS,
        },
    )
    def export_version(
        name: Name,
        version: Version,
        request: Request,
        who: Who,
        format: Annotated[
            str,
            Query(
                description=f"One of {', '.join(_ALL_FORMATS)}; which apply depends on the "
                "kind (images: oci-archive, docker-archive; VM disks: original, qcow2, raw, "
                "vmdk; SIF: sif; recipes: context, recipe; all: json)."
            ),
        ] = "json",
    ) -> FileResponse:
        hub = request.app.state.hub
        work = _work(request)
        try:
            done = export(hub.catalogue, hub.artifacts, name, version, format, who, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return FileResponse(
            done.path,
            media_type=done.media_type,
            filename=done.filename,
            background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
        )

    return api


def install(app: FastAPI) -> None:
    api = router()
    app.include_router(api, prefix=PREFIX)
    errors.record_methods(app, PREFIX, api.routes)
