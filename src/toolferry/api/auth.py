"""Who is calling: bearer tokens (or HTTP Basic with the token as password), or no auth at all."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Collection, Mapping
from typing import Literal

from fastapi import HTTPException, Request

from toolferry.security.identity import LOCAL, Identity
from toolferry.security.tokens import TokenService

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="toolferry"'}
SESSION_COOKIE = "toolferry_token"  # set by the web UI's sign-in (toolferry.web.session)


def _is_ui(request: Request) -> bool:
    return request.url.path == "/ui" or request.url.path.startswith("/ui/")


class Authenticator:
    """Modes: token (always required), none (everyone is the local admin), auto (token once
    any token was created, revoked or not: revoking every token does not open the hub)."""

    def __init__(
        self,
        tokens: TokenService,
        mode: Literal["auto", "token", "none"],
        local_secret: str | None = None,
        groups: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """``groups``: group name → its members (the site's setting ``groups``)."""
        self.tokens = tokens
        self._groups_of: dict[str, frozenset[str]] = {}
        for group, members in (groups or {}).items():
            for member in members:
                self._groups_of[member] = self._groups_of.get(member, frozenset()) | {group}
        self.mode = mode
        # Known only inside the hub's own process: the CLI's embedded hub uses it to act as the
        # machine's operator without a stored token.
        self.local_secret = local_secret
        self._auto_cache: tuple[float, bool] = (0.0, False)

    def required(self) -> bool:
        if self.mode != "auto":
            return self.mode == "token"
        checked, value = self._auto_cache
        if time.monotonic() - checked > 1.0:  # a token created by the CLI takes effect within 1 s
            value = self.tokens.any_issued()
            self._auto_cache = (time.monotonic(), value)
            if value:
                self.mode = "token"  # from the first token on, for good
        return value

    @staticmethod
    def _secret(header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() or None
        if scheme.lower() == "basic":  # clients that only speak Basic: the token is the password
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2] or None
        return None

    def __call__(self, request: Request) -> Identity:
        if not self.required():
            return LOCAL
        header = request.headers.get("authorization", "")
        secret = self._secret(header) if header else None
        if secret is None and (request.method in ("GET", "HEAD") or _is_ui(request)):
            # The web UI's sign-in cookie: for reads anywhere (downloads), and for the UI's
            # own forms, which check a CSRF token; never for the API's other writes.
            secret = request.cookies.get(SESSION_COOKIE) or None
        if secret is None:
            raise HTTPException(
                401, "authentication required: send 'Authorization: Bearer <token>'", _CHALLENGE
            )
        if self.local_secret is not None and hmac.compare_digest(secret, self.local_secret):
            return LOCAL
        record = self.tokens.verify(secret)
        if record is None:
            raise HTTPException(401, "invalid or revoked token", _CHALLENGE)
        return Identity(
            user=record.user,
            admin=record.admin,
            groups=self._groups_of.get(record.user, frozenset()),
        )
