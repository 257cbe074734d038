"""Errors as HTTP answers: ``{"detail": "<what is wrong, naming the field>"}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from toolferry.domain.errors import (
    Conflict,
    Forbidden,
    InvalidTask,
    InvalidTransition,
    NotFound,
    Unavailable,
    UpstreamError,
)

_STATUS: dict[type[Exception], int] = {
    InvalidTask: 400,
    NotFound: 404,
    Forbidden: 403,
    InvalidTransition: 409,
    Conflict: 409,
    UpstreamError: 502,
    Unavailable: 503,
}


def _where(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]  # where the value came from, not a field (a field may be called "path")
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return f"malformed JSON: {first.get('ctx', {}).get('error', first.get('msg'))}"
    loc = tuple(first.get("loc", ()))
    if loc == ("body",) and first.get("type") in ("model_attributes_type", "dict_type"):
        return "the request body must be a JSON object (send Content-Type: application/json)"
    where = _where(loc)
    if first.get("type") == "missing":
        return f"{where}: field required" if where else "request body required"
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    methods: set[str] = set()
    for pattern, route_methods in getattr(app.state, "route_methods", ()):
        if pattern.match(request.url.path):
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def record_methods(app: FastAPI, prefix: str, routes: list[Any]) -> None:
    """Remember which methods each path of ``routes`` (mounted at ``prefix``) accepts, for the
    Allow header of a 405 answer."""
    table = list(getattr(app.state, "route_methods", []))
    for route in routes:
        methods = getattr(route, "methods", None)
        if methods:
            table.append((compile_path(prefix + route.path)[0], set(methods)))
    app.state.route_methods = table


def install(app: FastAPI) -> None:
    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_message(exc)}, status_code=400)

    async def on_domain(_: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _STATUS.items() if isinstance(exc, kind))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; list every method.
            methods = _allowed_methods(app, request)
            headers["Allow"] = ", ".join(methods)
            detail = f"{request.method} is not allowed here; allowed: {', '.join(methods)}"
            return JSONResponse({"detail": detail}, status_code=405, headers=headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    for kind in _STATUS:
        app.add_exception_handler(kind, on_domain)
