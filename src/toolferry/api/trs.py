"""GA4GH TRS 2.0.1 at /ga4gh/trs/v2: a read-only view of the catalogue (specs/trs-2.0.1.openapi.yaml).

Tool ids are environment names, which hold '/'. Starlette decodes ``%2F`` before routing, so
``/tools/lab%2Falign/versions`` and ``/tools/lab/align/versions`` reach the same route: the id
is a path none of whose components is ``versions`` (reserved in catalogue names). An id still
holding ``%`` after that was encoded twice and is decoded once more (names never hold ``%``).

Every error answers the spec's ``Error`` body, ``{"code": <status>, "message": "..."}``, with
400 for bad input, 401 without credentials, 404 for what does not exist or the caller may not
read, and 405 (with ``Allow``) for a method other than GET.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from toolferry import __version__
from toolferry.api import environments
from toolferry.api.errors import validation_message
from toolferry.api.schemas import OrganizationOut, ServiceTypeOut
from toolferry.api.tes import Who
from toolferry.catalogue import trs
from toolferry.catalogue.service import CatalogueService
from toolferry.domain.environment import Environment, Status
from toolferry.domain.errors import InvalidTask, NotFound
from toolferry.security.identity import Identity

__all__ = ["MAX_LIMIT", "PREFIX", "install", "router"]

PREFIX = "/ga4gh/trs/v2"
TRS_VERSION = "2.0.1"
MAX_LIMIT = 1000  # the spec's default page size, and the largest page served
_RESERVED = "versions"
_VERSION_ID = re.compile(r"[1-9][0-9]{0,9}")
_MAX_VERSION = 2**31 - 1


class _ToolIdConvertor(Convertor[str]):
    """Path components, none of them ``versions`` (empty ones reach a 404)."""

    regex = rf"(?!{_RESERVED}(?:/|$))[^/]*(?:/(?!{_RESERVED}(?:/|$))[^/]*)*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("trsid", _ToolIdConvertor())


class DescriptorTypeWithPlain(StrEnum):
    CWL = "CWL"
    WDL = "WDL"
    NFL = "NFL"
    GALAXY = "GALAXY"
    SMK = "SMK"
    PLAIN_CWL = "PLAIN_CWL"
    PLAIN_WDL = "PLAIN_WDL"
    PLAIN_NFL = "PLAIN_NFL"
    PLAIN_GALAXY = "PLAIN_GALAXY"
    PLAIN_SMK = "PLAIN_SMK"

    @property
    def plain(self) -> bool:
        return self.value.startswith("PLAIN_")

    @property
    def descriptor(self) -> trs.DescriptorType:
        return trs.DescriptorType(self.value.removeprefix("PLAIN_"))


# -- Responses, for the OpenAPI description only: handlers build the JSON in catalogue/trs.py --
class TrsError(BaseModel):
    code: int = Field(description="The HTTP status.")
    message: str = Field(description="What went wrong, naming the parameter or the tool.")


class TrsChecksum(BaseModel):
    checksum: str = Field(description="Hex digest.")
    type: str = Field(description="sha-256 or sha-512.")


class TrsToolClass(BaseModel):
    id: str
    name: str
    description: str


class TrsImageData(BaseModel):
    registry_host: str | None = None
    image_name: str | None = Field(default=None, description="repository@sha256:... (pinned)")
    size: int | None = None
    updated: str | None = None
    checksum: list[TrsChecksum] | None = None
    image_type: Literal["Docker", "Singularity", "Conda"] | None = None


class TrsToolVersion(BaseModel):
    author: list[str] | None = None
    name: str | None = None
    url: str
    id: str = Field(description="The catalogue version number.")
    is_production: bool | None = Field(default=None, description="false once deprecated.")
    images: list[TrsImageData] | None = None
    descriptor_type: list[trs.DescriptorType] | None = None
    descriptor_type_version: dict[str, list[str]] | None = None
    containerfile: bool | None = None
    meta_version: str | None = None
    verified: bool | None = Field(default=None, description="Reviewed as trusted.")
    verified_source: list[str] | None = None
    signed: bool | None = None
    included_apps: list[str] | None = None


class TrsTool(BaseModel):
    url: str
    id: str = Field(description="The environment's name.")
    aliases: list[str] | None = None
    organization: str
    name: str | None = None
    toolclass: TrsToolClass
    description: str | None = None
    meta_version: str | None = None
    has_checker: bool | None = None
    checker_url: str | None = None
    versions: list[TrsToolVersion]


class TrsFileWrapper(BaseModel):
    content: str | None = None
    checksum: list[TrsChecksum] | None = None
    image_type: str | None = None
    url: str | None = None


class TrsToolFile(BaseModel):
    path: str | None = None
    file_type: (
        Literal["TEST_FILE", "PRIMARY_DESCRIPTOR", "SECONDARY_DESCRIPTOR", "CONTAINERFILE", "OTHER"]
        | None
    ) = None
    checksum: TrsChecksum | None = None


class TrsServiceInfo(BaseModel):
    """GA4GH service-info 1.0 of the TRS view."""

    id: str
    name: str
    type: ServiceTypeOut
    description: str | None = None
    organization: OrganizationOut
    documentationUrl: str | None = None
    version: str


_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": TrsError} for code in (400, 401, 404)}
_PAGING_HEADERS = {
    "next_page": ("A URL that reaches the next page (absent on the last one).", "string"),
    "last_page": ("A URL that reaches the last page at the current limit.", "string"),
    "self_link": ("A URL that returns to the current page.", "string"),
    "current_offset": ("The start index of this page.", "string"),
    "current_limit": ("The page size used for this page.", "integer"),
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)


class _TrsRoute(APIRoute):
    """Answers errors with the TRS ``Error`` body instead of the hub's ``{"detail": ...}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _error(400, validation_message(exc))
            except HTTPException as exc:
                return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))
            except InvalidTask as exc:
                return _error(400, str(exc))
            except NotFound as exc:  # reading raises nothing else
                return _error(404, str(exc))

        return answer


async def _service(request: Request) -> CatalogueService:
    return request.app.state.hub.catalogue  # type: ignore[no-any-return]


Service = Annotated[CatalogueService, Depends(_service)]
ToolId = Annotated[
    str,
    Path(
        description="The environment's name: percent-encoded (lab%2Falign) or with its slashes.",
        examples=["lab/align"],
    ),
]
VersionId = Annotated[str, Path(description="A version number of the tool.", examples=["1"])]
TypeWithPlain = Annotated[
    DescriptorTypeWithPlain,
    Path(description="CWL answers a FileWrapper; PLAIN_CWL the bare descriptor."),
]


def _links(request: Request) -> trs.Links:
    root = str(request.base_url).rstrip("/")
    return trs.Links(trs=root + PREFIX, catalogue=root + environments.PREFIX)


def _name(tool_id: str) -> str:
    return unquote(tool_id) if "%" in tool_id else tool_id


def _listed(service: CatalogueService, tool_id: str, who: Identity) -> list[Environment]:
    """The versions of a tool the caller may read, oldest first, tombstones left out."""
    name = _name(tool_id)
    try:
        found = [env for env in service.versions(name, who) if env.status is not Status.DELETED]
    except NotFound:
        found = []
    if not found:
        raise NotFound(f"no tool {name!r}")
    return found


def _version(
    service: CatalogueService, tool_id: str, version_id: str, who: Identity
) -> Environment:
    name = _name(tool_id)
    if not _VERSION_ID.fullmatch(version_id) or int(version_id) > _MAX_VERSION:
        raise NotFound(f"no version {version_id!r} of tool {name!r}: versions are numbers")
    try:
        env = service.get(name, int(version_id), who)
    except NotFound:
        raise NotFound(f"no version {version_id} of tool {name!r}") from None
    if env.status is Status.DELETED:
        raise NotFound(f"version {version_id} of tool {name!r} is deleted")
    return env


def _has_containerfile(service: CatalogueService) -> Callable[[Environment], bool]:
    return lambda env: service.recipe(env) is not None


def _files(
    service: CatalogueService, env: Environment, kind: trs.DescriptorType
) -> list[trs.TrsFile]:
    """The version's files for ``kind``; 404 saying why when it has no descriptor of it."""
    if kind is not trs.DescriptorType.CWL:
        raise NotFound(f"no {kind} descriptor for {env.ref}: this registry describes tools in CWL")
    reason = trs.no_cwl_reason(env)
    if reason is not None:
        raise NotFound(f"no CWL descriptor for {env.ref}: {reason}")
    return trs.tool_files(env, kind, service.recipe(env))


def _file_answer(file: trs.TrsFile, url: str, *, plain: bool) -> Response:
    if plain:
        return PlainTextResponse(file.content)
    return JSONResponse(file.wrapper(url))


def _wants_plain(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/plain" in accept and "application/json" not in accept


def _offset(text: str | None) -> int:
    if text is None or text == "":
        return 0
    if not text.isdigit() or not text.isascii():
        raise InvalidTask("offset", f"{text!r} is not a whole number of tools to skip")
    return int(text)


def _paging(request: Request, offset: int, limit: int, total: int) -> dict[str, str]:
    """The spec's paging headers. Following ``next_page`` from any page ends on
    ``last_page``."""

    def at(start: int) -> str:
        return str(request.url.include_query_params(offset=start, limit=limit))

    if total > offset:
        last = offset + (total - offset - 1) // limit * limit
    else:
        last = max(total - 1, 0) // limit * limit
    headers = {
        "self_link": at(offset),
        "last_page": at(last),
        "current_offset": str(offset),
        "current_limit": str(limit),
    }
    if offset + limit < total:
        headers["next_page"] = at(offset + limit)
    return headers


def router() -> APIRouter:
    """The TRS routes, relative to :data:`PREFIX`; the catch-all comes last."""
    api = APIRouter(tags=["GA4GH TRS"], route_class=_TrsRoute)

    @api.get(
        "/service-info",
        summary="GA4GH service-info of the TRS view",
        operation_id="trsServiceInfoGet",
        response_model=TrsServiceInfo,
    )
    def service_info(request: Request) -> JSONResponse:
        settings = request.app.state.hub.settings
        root = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "id": settings.service_id.removesuffix(".tes") + ".trs",
                "name": "toolferry TRS",
                "type": {"group": "org.ga4gh", "artifact": "trs", "version": TRS_VERSION},
                "description": "GA4GH Tool Registry Service view of the toolferry catalogue: "
                "its environments as tools, their versions pinned by digest, and a CWL "
                "descriptor for those with a tool interface.",
                "organization": {
                    "name": settings.organization_name,
                    "url": settings.organization_url,
                },
                "documentationUrl": f"{root}/docs",
                "version": __version__,
            }
        )

    @api.get(
        "/toolClasses",
        summary="List all tool types",
        operation_id="toolClassesGet",
        response_model=list[TrsToolClass],
        responses={401: {"model": TrsError}},
    )
    def tool_classes(who: Who) -> JSONResponse:
        return JSONResponse([dict(c) for c in trs.TOOL_CLASSES])

    @api.get(
        "/tools",
        summary="List all tools",
        operation_id="toolsGet",
        response_model=list[TrsTool],
        responses={
            200: {
                "headers": {
                    name: {"description": text, "schema": {"type": kind}}
                    for name, (text, kind) in _PAGING_HEADERS.items()
                }
            },
            400: {"model": TrsError},
            401: {"model": TrsError},
        },
    )
    def list_tools(
        request: Request,
        service: Service,
        who: Who,
        id: Annotated[str | None, Query(description="The tool id (environment name).")] = None,
        alias: Annotated[str | None, Query(description="An image repository.")] = None,
        tool_class: Annotated[
            str | None, Query(alias="toolClass", description="CommandLineTool or Environment.")
        ] = None,
        descriptor_type: Annotated[trs.DescriptorType | None, Query(alias="descriptorType")] = None,
        registry: Annotated[str | None, Query(description="An image's registry host.")] = None,
        organization: Annotated[
            str | None, Query(description="The name's namespace (lab of lab/align).")
        ] = None,
        name: Annotated[
            str | None, Query(description="The name's last component (align of lab/align).")
        ] = None,
        toolname: Annotated[str | None, Query(description="Part of the title.")] = None,
        description: Annotated[str | None, Query(description="Part of the description.")] = None,
        author: Annotated[str | None, Query(description="The owner of a version.")] = None,
        checker: Annotated[bool | None, Query(description="true: none (no checkers).")] = None,
        offset: Annotated[
            str | None, Query(description="Tools to skip, a whole number; default 0.")
        ] = None,
        limit: Annotated[
            int, Query(ge=1, description=f"Page size; at most {MAX_LIMIT} are served.")
        ] = MAX_LIMIT,
    ) -> JSONResponse:
        """Every tool the caller may read, by id, with the versions they may read."""
        start = _offset(offset)
        size = min(limit, MAX_LIMIT)
        query = trs.ToolQuery(
            id=id,
            alias=alias,
            tool_class=tool_class,
            descriptor_type=descriptor_type,
            registry=registry,
            organization=organization,
            name=name,
            toolname=toolname,
            description=description,
            author=author,
            checker=checker,
        )
        found = [g for g in trs.group_tools(service.search(None, who)) if query.matches(g)]
        links = _links(request)
        body = [
            trs.tool(group, links, has_containerfile=_has_containerfile(service))
            for group in found[start : start + size]
        ]
        return JSONResponse(body, headers=_paging(request, start, size, len(found)))

    @api.get(
        "/tools/{id:trsid}/versions/{version_id}/containerfile",
        summary="Get the container specification(s) for the specified image.",
        operation_id="toolsIdVersionsVersionIdContainerfileGet",
        response_model=list[TrsFileWrapper],
        responses=_ERRORS,
    )
    def containerfile(
        request: Request, id: ToolId, version_id: VersionId, service: Service, who: Who
    ) -> JSONResponse:
        """The recipe (Dockerfile, Containerfile) the version is built from; 404 without."""
        env = _version(service, id, version_id, who)
        recipe = service.recipe(env)
        if recipe is None:
            raise NotFound(f"no containerfile for {env.ref}: the catalogue holds no recipe of it")
        file = trs.containerfile(env, recipe)
        url = (
            _links(request).file(env, trs.DescriptorType.CWL, file.path)
            if trs.no_cwl_reason(env) is None
            else None
        )
        return JSONResponse([file.wrapper(url)])

    @api.get(
        "/tools/{id:trsid}/versions/{version_id}/{type}/descriptor/{relative_path:path}",
        summary="Get additional tool descriptor files relative to the main file",
        operation_id="toolsIdVersionsVersionIdTypeDescriptorRelativePathGet",
        response_model=TrsFileWrapper,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **_ERRORS},
    )
    def descriptor_file(
        request: Request,
        id: ToolId,
        version_id: VersionId,
        type: TypeWithPlain,
        relative_path: Annotated[str, Path(description="tool.cwl, or the containerfile.")],
        service: Service,
        who: Who,
    ) -> Response:
        env = _version(service, id, version_id, who)
        files = _files(service, env, type.descriptor)
        wanted = relative_path.removeprefix("./")
        for file in files:
            if file.path == wanted:
                url = _links(request).file(env, type.descriptor, file.path)
                return _file_answer(file, url, plain=type.plain or _wants_plain(request))
        listed = ", ".join(f.path for f in files)
        raise NotFound(f"no file {relative_path!r} in {env.ref} (it has {listed})")

    @api.get(
        "/tools/{id:trsid}/versions/{version_id}/{type}/descriptor",
        summary="Get the tool descriptor for the specified tool",
        operation_id="toolsIdVersionsVersionIdTypeDescriptorGet",
        response_model=TrsFileWrapper,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **_ERRORS},
    )
    def descriptor(
        request: Request,
        id: ToolId,
        version_id: VersionId,
        type: TypeWithPlain,
        service: Service,
        who: Who,
    ) -> Response:
        """The CWL v1.2 CommandLineTool of a version with a tool interface."""
        env = _version(service, id, version_id, who)
        primary = _files(service, env, type.descriptor)[0]
        url = _links(request).file(env, type.descriptor, primary.path)
        return _file_answer(primary, url, plain=type.plain or _wants_plain(request))

    @api.get(
        "/tools/{id:trsid}/versions/{version_id}/{type}/tests",
        summary="Get a list of test JSONs",
        operation_id="toolsIdVersionsVersionIdTypeTestsGet",
        response_model=list[TrsFileWrapper],
        responses=_ERRORS,
    )
    def tests(
        id: ToolId, version_id: VersionId, type: TypeWithPlain, service: Service, who: Who
    ) -> JSONResponse:
        """None: the catalogue keeps no test data (404 when there is no such descriptor)."""
        env = _version(service, id, version_id, who)
        _files(service, env, type.descriptor)
        return JSONResponse([])

    @api.get(
        "/tools/{id:trsid}/versions/{version_id}/{type}/files",
        summary="Get a list of objects that contain the relative path and file type",
        operation_id="toolsIdVersionsVersionIdTypeFilesGet",
        response_model=list[TrsToolFile],
        responses={
            200: {
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
            },
            **_ERRORS,
        },
    )
    def files(
        id: ToolId,
        version_id: VersionId,
        type: Annotated[trs.DescriptorType, Path(description="The descriptor type.")],
        service: Service,
        who: Who,
        format: Annotated[
            Literal["zip"] | None, Query(description="zip: every file in one zip archive.")
        ] = None,
    ) -> Response:
        env = _version(service, id, version_id, who)
        found = _files(service, env, type)
        if format is None:
            return JSONResponse([f.listing() for f in found])
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for f in found:
                archive.writestr(f.path, f.content)
        filename = f"{env.name.replace('/', '_')}-{env.version}-{type}.zip"
        return Response(
            buffer.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @api.get(
        "/tools/{id:trsid}/versions/{version_id}",
        summary="List one specific tool version, acts as an anchor for self references",
        operation_id="toolsIdVersionsVersionIdGet",
        response_model=TrsToolVersion,
        responses=_ERRORS,
    )
    def version(
        request: Request, id: ToolId, version_id: VersionId, service: Service, who: Who
    ) -> JSONResponse:
        env = _version(service, id, version_id, who)
        has = _has_containerfile(service)(env)
        return JSONResponse(trs.tool_version(env, _links(request), has_containerfile=has))

    @api.get(
        "/tools/{id:trsid}/versions",
        summary="List versions of a tool",
        operation_id="toolsIdVersionsGet",
        response_model=list[TrsToolVersion],
        responses=_ERRORS,
    )
    def versions(request: Request, id: ToolId, service: Service, who: Who) -> JSONResponse:
        """Oldest first; deleted versions are left out, deprecated ones are not production."""
        links = _links(request)
        has = _has_containerfile(service)
        return JSONResponse(
            [
                trs.tool_version(env, links, has_containerfile=has(env))
                for env in _listed(service, id, who)
            ]
        )

    @api.get(
        "/tools/{id:trsid}",
        summary="List one specific tool, acts as an anchor for self references",
        operation_id="toolsIdGet",
        response_model=TrsTool,
        responses=_ERRORS,
    )
    def one_tool(request: Request, id: ToolId, service: Service, who: Who) -> JSONResponse:
        found = _listed(service, id, who)
        return JSONResponse(
            trs.tool(found, _links(request), has_containerfile=_has_containerfile(service))
        )

    paths = [route.path_regex for route in api.routes if isinstance(route, APIRoute)]

    @api.api_route(
        "/{rest:path}",
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )
    def elsewhere(request: Request, rest: str) -> JSONResponse:
        """What no route above answers: a 405 for a known path, else a 404."""
        if any(pattern.match("/" + rest) for pattern in paths):
            return _error(
                405,
                f"{request.method} is not allowed here: the TRS view is read-only (GET)",
                {"Allow": "GET, HEAD"},
            )
        return _error(404, f"no such TRS path: {PREFIX}/{rest}")

    return api


def install(app: FastAPI) -> None:
    """Mount the TRS routes at :data:`PREFIX`."""
    app.include_router(router(), prefix=PREFIX)
