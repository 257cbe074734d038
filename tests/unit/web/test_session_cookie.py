"""The hub's authenticator takes the UI's sign-in cookie for reads and for the UI's own forms
(which carry a CSRF token), never for the API's other writes."""

from __future__ import annotations

import pytest
from fastapi import HTTPException, Request

from toolferry.api.auth import SESSION_COOKIE, Authenticator
from toolferry.security.tokens import TokenService
from toolferry.store.base import TokenRecord


class _Tokens:
    def __init__(self) -> None:
        self.rows: dict[str, TokenRecord] = {}

    def add(self, record: TokenRecord, token_hash: str) -> None:
        self.rows[token_hash] = record

    def by_hash(self, token_hash: str) -> TokenRecord | None:
        return self.rows.get(token_hash)

    def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        return list(self.rows.values())

    def revoke(self, token_id: str) -> bool:
        return False

    def any_active(self) -> bool:
        return bool(self.rows)


def _request(method: str, path: str, cookie: str) -> Request:
    headers = [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())]
    return Request({"type": "http", "method": method, "path": path, "headers": headers})


@pytest.fixture
def auth() -> tuple[Authenticator, str]:
    tokens = TokenService(_Tokens())
    return Authenticator(tokens, "token"), tokens.create("alice")[1]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/ui/tasks"), ("POST", "/ui/tasks/x/cancel"), ("GET", "/toolferry/v1/files/s/f")],
)
def test_cookie_signs_in_reads_and_ui_forms(
    auth: tuple[Authenticator, str], method: str, path: str
) -> None:
    authenticator, secret = auth
    assert authenticator(_request(method, path, secret)).user == "alice"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/ga4gh/tes/v1/tasks"), ("DELETE", "/toolferry/v1/files/s")]
)
def test_cookie_never_signs_in_api_writes(
    auth: tuple[Authenticator, str], method: str, path: str
) -> None:
    authenticator, secret = auth
    with pytest.raises(HTTPException) as raised:
        authenticator(_request(method, path, secret))
    assert raised.value.status_code == 401
