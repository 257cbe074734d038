"""OAI-PMH 2.0 at ``/oai``: the catalogue for metadata harvesters, by GET or POST.

Open to everyone: it shows only what anonymous users may read (others ``r-``), tombstones
included. Answers are ``text/xml`` documents, errors too (with HTTP 200, as the protocol
says). The native format's XML Schema is served at ``/oai/schema/environment-1.xsd``.
``app.state.oai`` holds the :class:`OaiSettings` (page size, token lifetime, repository id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from toolferry.api import environments, errors
from toolferry.catalogue.oai import Record, Repository, record_of, respond
from toolferry.catalogue.oai.native_schema import native_schema
from toolferry.catalogue.oai.repository import REPOSITORY_ID
from toolferry.security.identity import Identity

__all__ = ["PREFIX", "OaiSettings", "install", "router"]

PREFIX = "/oai"
DEFAULT_PAGE_SIZE = 100
XML = "text/xml; charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
_MAX_BODY = 64 * 1024
_FALLBACK_ID = "toolferry.invalid"
# Whom the repository shows entries to: the catalogue's rules for a caller nobody knows.
ANONYMOUS = Identity(user="anonymous")


@dataclass(frozen=True, kw_only=True)
class OaiSettings:
    page_size: int = DEFAULT_PAGE_SIZE
    token_lifetime: timedelta = timedelta(days=1)
    # A domain name; None: the host of the hub's organization_url, else toolferry.invalid.
    repository_id: str | None = None
    admin_email: str | None = None  # None: admin@<repository id>


def _repository_id(settings: OaiSettings, hub: Any) -> str:
    if settings.repository_id is not None:
        return settings.repository_id
    host = urlsplit(str(hub.settings.organization_url)).hostname or ""
    return host if REPOSITORY_ID.fullmatch(host) else _FALLBACK_ID


def _repository(request: Request) -> Repository:
    settings: OaiSettings = request.app.state.oai
    hub = request.app.state.hub
    root = str(request.base_url).rstrip("/")
    repository_id = _repository_id(settings, hub)
    return Repository(
        name=f"{hub.settings.organization_name} environment catalogue",
        base_url=root + PREFIX,
        repository_id=repository_id,
        admin_emails=(settings.admin_email or f"admin@{repository_id}",),
        catalogue_url=root + environments.PREFIX,
        page_size=settings.page_size,
        token_lifetime=settings.token_lifetime,
    )


def _answer(request: Request, pairs: Sequence[tuple[str, str]]) -> Response:
    repository = _repository(request)
    catalogue = request.app.state.hub.catalogue

    def records() -> list[Record]:
        found = catalogue.search(None, ANONYMOUS, include_deleted=True)
        return [
            record_of(repository.repository_id, env) for env in found if env.permissions.others.read
        ]

    return Response(respond(pairs, repository, records, datetime.now(UTC)), media_type=XML)


_XML_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An OAI-PMH response document; protocol errors are <error> elements.",
        "content": {"text/xml": {"schema": {"type": "string"}}},
    }
}


def router() -> APIRouter:
    """The protocol's routes, relative to :data:`PREFIX`."""
    api = APIRouter(tags=["oai-pmh"])

    @api.get(
        "",
        summary="OAI-PMH request (GET)",
        response_class=Response,
        responses=_XML_ANSWER,
    )
    def get(request: Request) -> Response:
        """Arguments in the query: ``verb`` (Identify, ListMetadataFormats, ListSets,
        GetRecord, ListIdentifiers, ListRecords) and the verb's arguments, as in
        https://www.openarchives.org/OAI/openarchivesprotocol.html."""
        return _answer(request, request.query_params.multi_items())

    @api.post(
        "",
        summary="OAI-PMH request (POST)",
        response_class=Response,
        responses={
            **_XML_ANSWER,
            413: {"description": "Body too large"},
            415: {"description": "Not a form"},
        },
    )
    async def post(request: Request) -> Response:
        """The same arguments as GET, as an ``application/x-www-form-urlencoded`` body."""
        body = await request.body()
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and media_type != _FORM:
            raise HTTPException(415, f"send the OAI-PMH arguments as {_FORM}")
        if len(body) > _MAX_BODY:
            raise HTTPException(413, f"an OAI-PMH request body holds at most {_MAX_BODY} bytes")
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return await run_in_threadpool(_answer, request, pairs)

    @api.get(
        "/schema/environment-1.xsd",
        summary="XML Schema of the native metadata format",
        response_class=Response,
        responses={
            200: {
                "description": "The XSD.",
                "content": {"text/xml": {"schema": {"type": "string"}}},
            }
        },
    )
    def schema() -> Response:
        """The schema of the ``toolferry`` metadataPrefix: the whole catalogue entry."""
        return Response(native_schema(), media_type=XML)

    return api


def install(app: FastAPI, settings: OaiSettings | None = None) -> None:
    """Mount the protocol at :data:`PREFIX` with ``settings`` (kept in ``app.state.oai``)."""
    app.state.oai = settings or OaiSettings()
    api = router()
    app.include_router(api, prefix=PREFIX)
    errors.record_methods(app, PREFIX, api.routes)
