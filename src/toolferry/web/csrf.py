"""CSRF tokens for the UI's forms: a random per-browser cookie, and in each form its HMAC under
a key only the hub knows (a signed double submit). A cross-site page can neither read the cookie
(HttpOnly) nor forge the HMAC."""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "toolferry_csrf"
FIELD = "csrf_token"


def new_session() -> str:
    """A fresh value for the CSRF cookie (set anew at each sign-in)."""
    return secrets.token_urlsafe(32)


def token_for(key: bytes, session: str) -> str:
    """The token the forms of the browser holding ``session`` carry."""
    return hmac.new(key, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()


def check(key: bytes, session: str | None, token: str | None) -> bool:
    """Whether ``token`` (from the form) was issued for ``session`` (from the cookie)."""
    if not session or not token:
        return False
    return hmac.compare_digest(token_for(key, session), token)
