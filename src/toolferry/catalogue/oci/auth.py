"""Registry authentication: answering ``WWW-Authenticate`` challenges.

Anonymous first; a ``Basic`` challenge is answered with the user name and password; a
``Bearer realm=...,service=...,scope=...`` challenge (Harbor, GHCR, Docker Hub: the Docker
token protocol, https://distribution.github.io/distribution/spec/auth/token/) by fetching a
token from the realm for that service and scope — with the user name and password as Basic
credentials when given, anonymously otherwise — kept per repository, so that one token is
fetched per repository and access level. A token given up front is sent from the first request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

import httpx

from toolferry.catalogue.oci.answers import error_message, json_body, transport_cause
from toolferry.catalogue.oci.errors import RegistryUnavailable, StoreError
from toolferry.domain.errors import Forbidden, InvalidTask

__all__ = ["RegistryAuth", "parse_challenge"]

_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_ESCAPE = re.compile(r"\\(.)")


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``("bearer", {"realm": ..., "service": ..., "scope": ...})`` from a WWW-Authenticate."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m[1].lower(): _ESCAPE.sub(r"\1", m[2]) if m[2] is not None else m[3]
        for m in _PARAM.finditer(rest)
    }
    return scheme.lower(), params


class RegistryAuth:
    """The credentials for one registry, and what its challenges have taught so far."""

    def __init__(
        self,
        registry: str,
        http: httpx.Client,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise InvalidTask("credentials", "give both a user name and a password, or neither")
        self._registry = registry
        self._http = http
        self._username = username
        self._basic = (
            "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
            if username is not None
            else None
        )
        self._fixed = f"Bearer {token}" if token else None
        self._use_basic = False  # set by the first Basic challenge
        # repository ("" for none) → (Authorization, the scope the token was asked for)
        self._bearer: dict[str, tuple[str, str]] = {}

    def header(self, scope: str) -> dict[str, str]:
        """The Authorization header for a request about repository ``scope`` (may be none)."""
        value = self._fixed or self._bearer.get(scope, (None, ""))[0]
        if value is None and self._use_basic:
            value = self._basic
        return {"Authorization": value} if value else {}

    def who(self) -> str:
        """How requests are being made, for messages: ``as user 'alice'``, ``anonymously``."""
        if self._fixed is not None:
            return "with the given token"
        if self._username is not None:
            return f"as user {self._username!r}"
        return "anonymously"

    def answer(self, challenge: str, scope: str, what: str, message: str) -> None:
        """Acts on a 401's challenge so that the next attempt carries credentials; Forbidden
        when there is nothing (more) to offer."""
        scheme, params = parse_challenge(challenge)
        refused = f"registry {self._registry} refused {what} {self.who()}: {message}"
        if self._fixed is not None:
            raise Forbidden(refused)
        if scheme == "basic":
            if self._basic is None or self._use_basic:
                raise Forbidden(f"{refused} (it wants a user name and password)")
            self._use_basic = True
            return
        if scheme == "bearer" and params.get("realm"):
            wanted = params.get("scope", "")
            held = self._bearer.get(scope)
            if params.get("error") == "insufficient_scope" and held and held[1] == wanted:
                raise Forbidden(f"{refused} (the token lacks scope {wanted!r})")
            self._bearer[scope] = (self._fetch_token(params, what), wanted)
            return
        raise Forbidden(f"{refused} (challenge {challenge!r} not understood)")

    def _fetch_token(self, params: Mapping[str, str], what: str) -> str:
        query: dict[str, str | list[str]] = {
            "scope": [s for s in params.get("scope", "").split(" ") if s]
        }
        if params.get("service"):
            query["service"] = params["service"]
        headers = {"Authorization": self._basic} if self._basic else {}
        realm = params["realm"]
        service = f"the token service {realm} of registry {self._registry}"
        try:
            response = self._http.get(realm, params=query, headers=headers)
        except httpx.TransportError as exc:
            raise RegistryUnavailable(f"{service} does not answer: {transport_cause(exc)}") from exc
        if response.status_code in (401, 403):
            who = f"user {self._username!r}" if self._username else "anonymous access"
            reason = error_message(response) or response.reason_phrase
            raise Forbidden(f"{service} refused {who} for {what}: {reason}")
        body = json_body(response, f"a token request for {what}")
        token = body.get("token") or body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise StoreError(f"{service} answered HTTP {response.status_code} without a token")
        return f"Bearer {token}"
