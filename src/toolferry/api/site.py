"""The hub's site (/api/v1/site): its backends and runtimes, what each can hold, and what each
backend parameter accepts — the details service-info's strict TES shape has no room for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request

from toolferry.api import errors
from toolferry.api.schemas import ErrorOut
from toolferry.api.service_info import site_info
from toolferry.api.tes import Who

__all__ = ["PREFIX", "install"]

PREFIX = "/api/v1/site"


def router() -> APIRouter:
    api = APIRouter(tags=["site"])

    @api.get(
        "",
        summary="Backends, runtimes and backend parameters",
        responses={401: {"model": ErrorOut}},
    )
    def site(request: Request, who: Who) -> dict[str, Any]:
        """Each backend with its room (total, free, the largest task it can hold), its
        runtimes and its own backend parameters; the backends and runtimes that do not
        answer here, and why; every backend parameter a task may set, and what it accepts."""
        return site_info(request.app.state.hub.site)

    return api


def install(app: FastAPI) -> None:
    api = router()
    app.include_router(api, prefix=PREFIX)
    errors.record_methods(app, PREFIX, api.routes)
