"""The data sites page: online or not, capacity, classification and datasets of each."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from toolferry.api.sites import site_out
from toolferry.web.pages import hub, render, who


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/sites")
    async def site_list(request: Request) -> Response:
        user = who(request)
        service = hub(request).sites

        def load() -> list[dict[str, object]]:
            return [site_out(service, r) for r in service.sites.all()]

        return render(
            request,
            "sites.html",
            user=user,
            title="Data sites",
            nav="sites",
            sites=await run_in_threadpool(load),
        )

    return api
