"""The FastAPI application: routes, error handling, start-up and shut-down of the hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi

from toolferry import __version__, web
from toolferry.api import (
    credentials,
    environment_content,
    environments,
    errors,
    execution,
    files,
    oai,
    site,
    sites,
    tes,
    trs,
)
from toolferry.api.head import HeadAsGet
from toolferry.api.schemas import ErrorOut

DESCRIPTION = """toolferry brings research tools to the data.

* **TES 1.1** at `/ga4gh/tes/v1` ([GA4GH Task Execution Service](https://github.com/ga4gh/task-execution-schemas)).
* **TES 1.0 shape** at `/v1` for older clients (py-tes 0.4.x: `/v1/tasks`, `/v1/tasks/service-info`).
* **Files** at `/toolferry/v1/files`: the hub's file store; a task names its files `hub://SPACE/path`.
* **Credentials** at `/toolferry/v1/credentials`: the caller's own storage secrets, handed only to
  the transfers of the caller's tasks whose URLs start with the credential's prefix.
* **Environments** at `/api/v1/environments`: the catalogue of published, versioned research
  environments; search them with criteria such as `at least 8 GB RAM, ubuntu, has samtools`.
* **GA4GH TRS 2.0.1** at `/ga4gh/trs/v2` (read-only): the catalogue as tools (id = environment
  name, `%2F` or `/`), versions pinned by digest, CWL descriptors for entries with a tool
  interface; its errors answer TRS `{"code": ..., "message": "..."}`.
* **OAI-PMH 2.0** at `/oai` (GET and POST): the world-readable catalogue for metadata harvesters,
  as `oai_dc` and the native `toolferry` format (schema at `/oai/schema/environment-1.xsd`).
* **Execution environments** at `/api/v1/execution-environments`: where this hub runs tasks,
  classified as ViCE proposes, and which environments can run there.

Authentication: `Authorization: Bearer <token>` (tokens from `toolferry token create`), unless
the hub runs without auth on loopback. Errors answer `{"detail": "..."}` naming the field.
"""


def _document_400_not_422(app: FastAPI) -> None:
    """FastAPI documents request validation failures as 422; toolferry answers them 400."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault(
                            "400",
                            {
                                "description": "Bad Request",
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/ErrorOut"}
                                    }
                                },
                            },
                        )
            components = schema.get("components", {}).get("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            components.setdefault("ErrorOut", ErrorOut.model_json_schema())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(hub: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            hub.stop()

    app = FastAPI(
        title="toolferry",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.add_middleware(HeadAsGet)
    errors.install(app)
    for prefix, legacy in (("/ga4gh/tes/v1", False), ("/v1", True)):
        router = tes.router(legacy=legacy)
        app.include_router(router, prefix=prefix)
        errors.record_methods(app, prefix, router.routes)

    files.install(app)
    credentials.install(app)
    environments.install(app)
    environment_content.install(app)
    trs.install(app)
    s = hub.settings
    oai.install(
        app,
        oai.OaiSettings(
            page_size=s.oai_page_size,
            token_lifetime=timedelta(seconds=s.oai_token_lifetime_s),
            repository_id=s.oai_repository_id,
            admin_email=s.oai_admin_email,
        ),
    )
    execution.install(app)
    site.install(app)
    sites.install(app)
    web.install(app)
    _document_400_not_422(app)

    @app.get("/healthz", tags=["health"], summary="Liveness and readiness")
    def healthz(response: Response) -> dict[str, Any]:
        """200 while the hub answers and runs tasks; 503 once other replicas declared it dead
        (it then runs no task: restart it). Lists the site's backends and runtimes."""
        status = "ok"
        if hub.lease_lost:
            response.status_code = 503
            status = "declared dead by the other replicas; restart this hub"
        return {
            "status": status,
            "replica": hub.site.replica_id,
            "backends": list(hub.site.backends),
            "runtimes": sorted(hub.site.runtimes),
        }

    return app
