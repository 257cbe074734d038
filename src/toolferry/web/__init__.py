"""The web UI: server-rendered pages under /ui (Jinja2 and a few lines of vanilla JS for live
logs); every page reads without JavaScript. ``install(app)`` adds it to the hub's app."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from toolferry.web import live, session, sites, tasks
from toolferry.web.pages import PREFIX, SignInRequired, render, sign_in_redirect

__all__ = ["PREFIX", "install"]


def install(app: FastAPI) -> None:
    """Mount the UI's pages at /ui and its static files at /ui/static."""
    app.state.web_csrf_key = secrets.token_bytes(32)
    wakers = live.Wakers()
    app.state.hub.store.subscribe(wakers.notify)
    for api in (session.router(), tasks.router(), live.router(wakers), sites.router()):
        app.include_router(api, prefix=PREFIX, include_in_schema=False)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(directory=Path(__file__).resolve().parent / "static"),
        name="ui-static",
    )

    @app.get(PREFIX, include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/tasks", 303)

    previous = app.exception_handlers.get(HTTPException)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return sign_in_redirect(exc.next_path)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Errors of UI pages as HTML pages; the API's keep their JSON form."""
        assert isinstance(exc, HTTPException)
        path = request.url.path
        if path.startswith(PREFIX + "/") and not path.startswith(f"{PREFIX}/static/"):
            return render(
                request,
                "error.html",
                user=None,
                title=f"Error {exc.status_code}",
                status=exc.status_code,
                detail=str(exc.detail),
            )
        if previous is None:  # the API's own handler (toolferry.api.errors) is installed first
            return JSONResponse({"detail": exc.detail}, exc.status_code, dict(exc.headers or {}))
        answer = previous(request, exc)
        return answer if isinstance(answer, Response) else await answer

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(HTTPException, http_error)
