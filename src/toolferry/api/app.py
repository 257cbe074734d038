"""The FastAPI application: routes, error handling, start-up and shut-down of the hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from toolferry import __version__
from toolferry.api import errors, tes

DESCRIPTION = """toolferry brings research tools to the data.

* **TES 1.1** at `/ga4gh/tes/v1` ([GA4GH Task Execution Service](https://github.com/ga4gh/task-execution-schemas)).
* **TES 1.0 shape** at `/v1` for older clients (py-tes 0.4.x: `/v1/tasks`, `/v1/tasks/service-info`).

Authentication: `Authorization: Bearer <token>` (tokens from `toolferry token create`), unless
the hub runs without auth on loopback. Errors answer `{"detail": "..."}` naming the field.
"""


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
    errors.install(app)
    app.include_router(tes.router(legacy=False), prefix="/ga4gh/tes/v1")
    app.include_router(tes.router(legacy=True), prefix="/v1")

    @app.get("/healthz", tags=["health"], summary="Liveness and readiness")
    def healthz() -> dict[str, Any]:
        """200 while the hub answers; lists the site's runtimes."""
        return {"status": "ok", "runtimes": sorted(hub.site.runtimes)}

    return app
