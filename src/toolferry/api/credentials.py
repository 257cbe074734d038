"""The caller's own storage credentials over HTTP: save, list (never a secret), delete.

Every user sees and changes only their own credentials, admins included: a secret is given to
the transfers of its owner's tasks and to nobody else. Answers and error messages never hold a
secret value; the request body's secrets are write-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from toolferry.api import errors
from toolferry.api.schemas import ErrorOut
from toolferry.api.tes import Who
from toolferry.domain.errors import NotFound
from toolferry.security.user_credentials import (
    HEADER_NAME_PATTERN,
    MAX_HEADERS,
    MAX_PREFIX,
    MAX_SECRET,
    MAX_TEXT,
    NAME_PATTERN,
    SECRET_KINDS,
    CredentialInfo,
    CredentialKeyError,
    CredentialService,
)
from toolferry.storage.base import Credential

__all__ = ["PREFIX", "install", "router"]

PREFIX = "/toolferry/v1/credentials"
_ERROR: dict[str, Any] = {"model": ErrorOut}
_KEY_ERROR: dict[str, Any] = {
    "model": ErrorOut,
    "description": "The hub cannot use the key that encrypts credentials (it says why).",
}


def _text(description: str) -> Any:
    return Field(default=None, min_length=1, max_length=MAX_TEXT, description=description)


def _secret(description: str) -> Any:
    # The limits are checked by the service, with messages that name the field; pydantic's
    # own message for a too long SecretStr speaks of "items".
    return Field(
        default=None,
        description=description + " Write-only: never shown again.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_SECRET},
    )


class CredentialIn(BaseModel):
    """Secrets for storage URLs under ``prefix``, used by the transfers of the caller's tasks.

    Give what the storage asks for: ``username`` and ``password`` (HTTP basic, WebDAV, FTP),
    ``token`` (bearer), ``access_key`` with ``secret_key`` and optionally ``session_token``
    (S3), or ``headers`` (e.g. an API key header). At least one of them is required.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prefix": "s3://my-bucket/", "access_key": "AKIA...", "secret_key": "..."},
                {"prefix": "https://dav.example.org/home/", "username": "me", "password": "..."},
            ]
        },
    )

    prefix: str = Field(
        min_length=1,
        max_length=MAX_PREFIX,
        description=(
            "The URLs this credential is for: every input and output URL that starts with it, "
            "e.g. s3://my-bucket/, https://host/dav/. Needs a scheme and a host; the scheme and "
            "host are stored in lower case and a bare host gets a trailing '/'. When several "
            "credentials match a URL, the longest prefix wins, and the caller's own beats the "
            "site's on an equal prefix."
        ),
    )
    username: str | None = _text("User name for HTTP basic auth, WebDAV or FTP.")
    password: SecretStr | None = _secret("Password that goes with username.")
    token: SecretStr | None = _secret("Bearer token (HTTP, WebDAV).")
    access_key: str | None = _text("S3 access key id; needs secret_key.")
    secret_key: SecretStr | None = _secret("S3 secret access key; needs access_key.")
    session_token: SecretStr | None = _secret(
        "S3 session token of temporary credentials; needs access_key and secret_key."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            f"Extra HTTP headers sent with each request (at most {MAX_HEADERS}), e.g. "
            '{"X-Api-Key": "..."}. Their values are write-only; listings show only the names.'
        ),
        json_schema_extra={
            "maxProperties": MAX_HEADERS,
            "propertyNames": {"pattern": HEADER_NAME_PATTERN},
            "additionalProperties": {
                "type": "string",
                "format": "password",
                "writeOnly": True,
                "minLength": 1,
                "maxLength": MAX_SECRET,
            },
        },
    )

    def to_domain(self) -> Credential:
        def reveal(value: SecretStr | None) -> str | None:
            return None if value is None else value.get_secret_value()

        return Credential(
            prefix=self.prefix,
            username=self.username,
            password=reveal(self.password),
            token=reveal(self.token),
            access_key=self.access_key,
            secret_key=reveal(self.secret_key),
            session_token=reveal(self.session_token),
            headers={k: v.get_secret_value() for k, v in self.headers.items()},
        )


class CredentialOut(BaseModel):
    """A stored credential without its secrets."""

    name: str = Field(description="Its name, unique among the caller's credentials.")
    prefix: str = Field(description="The URLs it is for (those that start with this).")
    username: str | None = Field(description="User name, if one is set.")
    access_key: str | None = Field(description="S3 access key id, if one is set.")
    secrets: list[str] = Field(
        description="Which secrets are set (their values are never shown).",
        json_schema_extra={"items": {"type": "string", "enum": list(SECRET_KINDS)}},
    )
    headers: list[str] = Field(description="Names of the extra HTTP headers it sends.")
    created_at: datetime = Field(description="When it was first saved.")
    updated_at: datetime = Field(
        description="When it was last saved: equal to created_at until it is replaced."
    )


class ListCredentialsOut(BaseModel):
    credentials: list[CredentialOut] = Field(description="The caller's credentials, by name.")


def _out(info: CredentialInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "prefix": info.prefix,
        "username": info.username,
        "access_key": info.access_key,
        "secrets": list(info.secrets),
        "headers": list(info.headers),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
    }


async def _service(request: Request) -> CredentialService:
    return request.app.state.hub.user_credentials  # type: ignore[no-any-return]


Service = Annotated[CredentialService, Depends(_service)]
Name = Annotated[
    str,
    # The :path convertor (see the routes) lets every name reach this check, so that a name
    # with a '/' is refused as a bad name (400) rather than as an unknown URL.
    Path(
        description="The credential's name: 1 to 64 letters, digits, '.', '_' or '-', starting "
        "with a letter or digit.",
        pattern=NAME_PATTERN,
        examples=["my-bucket"],
    ),
]


def router() -> APIRouter:
    """The credentials routes, relative to :data:`PREFIX`."""
    api = APIRouter(tags=["credentials"])

    @api.get(
        "",
        summary="List your storage credentials",
        response_model=ListCredentialsOut,
        responses={401: _ERROR},
    )
    def list_credentials(service: Service, who: Who) -> dict[str, Any]:
        """The caller's credentials with their prefixes and which secrets they hold, never the
        secret values."""
        return {"credentials": [_out(info) for info in service.list(who.user)]}

    @api.put(
        "/{name:path}",
        summary="Save a storage credential",
        response_model=CredentialOut,
        responses={
            200: {"description": "Replaced the credential of that name."},
            201: {"model": CredentialOut, "description": "Created the credential."},
            400: _ERROR,
            401: _ERROR,
            503: _KEY_ERROR,
        },
    )
    def put_credential(
        name: Name, body: CredentialIn, service: Service, who: Who, response: Response
    ) -> dict[str, Any]:
        """Create the caller's credential NAME, or replace it (all its fields: leaving a secret
        out removes it). From then on the transfers of the caller's tasks use it for every URL
        under its prefix. The answer holds no secret."""
        info, created = service.put(who.user, name, body.to_domain())
        response.status_code = 201 if created else 200
        return _out(info)

    @api.delete(
        "/{name:path}",
        summary="Delete a storage credential",
        status_code=204,
        response_class=Response,
        responses={400: _ERROR, 401: _ERROR, 404: _ERROR},
    )
    def delete_credential(name: Name, service: Service, who: Who) -> Response:
        """Forget the caller's credential NAME. Tasks that already started keep what they got."""
        if not service.delete(who.user, name):
            raise NotFound(f"no storage credential named {name!r}")
        return Response(status_code=204)

    return api


def install(app: FastAPI) -> None:
    """Mount the credentials routes at :data:`PREFIX` (and list their methods for 405 answers);
    a credential key the hub cannot use answers 503."""
    api = router()
    app.include_router(api, prefix=PREFIX)
    errors.record_methods(app, PREFIX, api.routes)

    async def on_key_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    app.add_exception_handler(CredentialKeyError, on_key_error)
