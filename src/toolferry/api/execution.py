"""Execution environments (/api/v1/execution-environments): where this hub runs tasks, and
which catalogue environments can run there."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request

from toolferry.api import errors
from toolferry.api.environments import (
    ExecutionEnvironmentOut,
    MatchListOut,
    Service,
    execution_environment_out,
    match_out,
)
from toolferry.api.schemas import ErrorOut
from toolferry.api.tes import Who
from toolferry.catalogue.matching import match
from toolferry.domain.errors import NotFound

__all__ = ["PREFIX", "install"]

PREFIX = "/api/v1/execution-environments"
_ERROR: dict[str, Any] = {"model": ErrorOut}


def router() -> APIRouter:
    api = APIRouter(tags=["execution environments"])

    @api.get(
        "",
        summary="List execution environments",
        response_model=list[ExecutionEnvironmentOut],
        responses={401: _ERROR},
    )
    def places(request: Request, who: Who) -> list[dict[str, Any]]:
        """This hub's sites and backends, classified by hardware, runtimes and management
        layer."""
        return [
            execution_environment_out(w) for w in request.app.state.hub.execution_environments()
        ]

    @api.get(
        "/{name}/environments",
        summary="Environments that can run on an execution environment",
        response_model=MatchListOut,
        responses={401: _ERROR, 404: _ERROR},
    )
    def runnable_here(
        name: Annotated[str, Path(description="An execution environment's name.")],
        request: Request,
        service: Service,
        who: Who,
        q: Annotated[
            str | None, Query(max_length=2000, description="Criteria, as in search.")
        ] = None,
        all: Annotated[
            bool, Query(description="Also list those that cannot run there, with why.")
        ] = False,
    ) -> dict[str, Any]:
        """The readable, runnable catalogue versions matching ``q`` that fit there."""
        places = [w for w in request.app.state.hub.execution_environments() if w.name == name]
        if not places:
            raise NotFound(f"no execution environment {name}")
        found = match(service.search(q, who), places)
        return {"matches": [match_out(m) for m in found if all or m.fit.ok]}

    return api


def install(app: FastAPI) -> None:
    api = router()
    app.include_router(api, prefix=PREFIX)
    errors.record_methods(app, PREFIX, api.routes)
