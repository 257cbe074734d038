"""Signing in with an API token (kept in an HttpOnly, SameSite=Strict cookie) and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from toolferry.api.auth import SESSION_COOKIE
from toolferry.web import csrf
from toolferry.web.pages import PREFIX, hub, render, require_csrf, set_cookie


def _safe_next(target: str | None) -> str:
    """Only a path of this UI: never another site (an open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return f"{PREFIX}/tasks"


def router() -> APIRouter:
    api = APIRouter()

    @api.get("/sign-in")
    def sign_in_page(request: Request, next: str = "") -> Response:
        if not hub(request).authenticate.required():
            return RedirectResponse(_safe_next(next), 303)
        return render(request, "sign_in.html", user=None, title="Sign in", next=_safe_next(next))

    @api.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        fields = await require_csrf(request)
        secret = fields.get("token", "").strip()
        target = _safe_next(fields.get("next"))
        record = await run_in_threadpool(hub(request).tokens.verify, secret) if secret else None
        if record is None:
            return render(
                request,
                "sign_in.html",
                user=None,
                title="Sign in",
                status=401,
                next=target,
                error="That token is unknown or revoked.",
            )
        response = RedirectResponse(target, 303)
        set_cookie(request, response, SESSION_COOKIE, secret)
        # A new CSRF session per sign-in: tokens of forms served before it no longer count.
        set_cookie(request, response, csrf.COOKIE, csrf.new_session())
        return response

    @api.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await require_csrf(request)
        response = RedirectResponse(f"{PREFIX}/sign-in", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(csrf.COOKIE, path="/")
        return response

    return api
