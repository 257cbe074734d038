"""What every UI page shares: the templates, who is signed in, the CSRF check, rendering."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from toolferry.security.identity import Identity
from toolferry.web import csrf

PREFIX = "/ui"
MAX_FORM_BYTES = 64 * 1024
_HERE = Path(__file__).resolve().parent
TEMPLATES = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["shell"] = shlex.join  # a command as a person would type it


class SignInRequired(Exception):
    """The page needs a signed-in user: answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def hub(request: Request) -> Any:
    return request.app.state.hub


def who(request: Request) -> Identity:
    """The signed-in user (everyone is the local admin when the hub runs without auth)."""
    try:
        return hub(request).authenticate(request)  # type: ignore[no-any-return]
    except HTTPException as exc:
        if exc.status_code == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target) from None
        raise


def sign_in_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/sign-in?next={quote(next_path, safe='')}", 303)


def csrf_key(request: Request) -> bytes:
    return request.app.state.web_csrf_key  # type: ignore[no-any-return]


def csrf_session(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie value, and whether it is new (to be set on the response)."""
    current = request.cookies.get(csrf.COOKIE)
    return (current, False) if current else (csrf.new_session(), True)


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the UI's forms post nothing else), the first of each name."""
    if len(body := await request.body()) > MAX_FORM_BYTES:
        raise HTTPException(413, "the form is too large")
    parsed = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


async def require_csrf(request: Request) -> dict[str, str]:
    """The posted form's fields, once its CSRF token matched the browser's cookie; else 403."""
    fields = await form_fields(request)
    if not csrf.check(csrf_key(request), request.cookies.get(csrf.COOKIE), fields.get(csrf.FIELD)):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page")
    return fields


def set_cookie(request: Request, response: Any, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def render(
    request: Request,
    template: str,
    *,
    user: Identity | None,
    title: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    session, new = csrf_session(request)
    auth_on = bool(hub(request).authenticate.required())
    html = TEMPLATES.get_template(template).render(
        title=title,
        user=user,
        auth_on=auth_on,
        csrf_field=csrf.FIELD,
        csrf_token=csrf.token_for(csrf_key(request), session),
        prefix=PREFIX,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if new:
        set_cookie(request, response, csrf.COOKIE, session)
    return response
