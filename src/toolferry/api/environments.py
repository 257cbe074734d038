"""The environment catalogue over HTTP: publish versions, read them, search, deprecate, delete
and rate.

Environment names hold '/' (``lab/align``), so the routes take the name as a path and end in
fixed words. The name component ``versions`` is reserved and a version holds no ':', so every
URL matches exactly one path (which the Allow header of a 405 answer relies on).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor

from toolferry.api import errors
from toolferry.api.schemas import ErrorOut
from toolferry.api.tes import Who
from toolferry.catalogue.facets import count_facets, select
from toolferry.catalogue.matching import Match, match
from toolferry.catalogue.service import MAX_NAME, RESERVED_COMPONENT, CatalogueService
from toolferry.domain.environment import Environment, Kind, Review, Status, environment_to_dict
from toolferry.domain.execution import ExecutionEnvironment

__all__ = ["PREFIX", "environment_out", "install", "router"]

PREFIX = "/api/v1/environments"
_ERROR: dict[str, Any] = {"model": ErrorOut}
_MAX_VERSION = 2**31 - 1
_RESERVED = RESERVED_COMPONENT


class _NameConvertor(Convertor[str]):
    """Path components, none of them ``versions`` (empty ones reach the service's 404)."""

    regex = rf"(?!{_RESERVED}(?:/|$))[^/]*(?:/(?!{_RESERVED}(?:/|$))[^/]*)*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


class _VersionConvertor(Convertor[str]):
    """One path component without ':', so that ``1:deprecate`` is not a version; the route
    checks that it is a number (a 400 naming it otherwise)."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("envname", _NameConvertor())
register_url_convertor("envversion", _VersionConvertor())


class EnvironmentIn(BaseModel):
    """A new version of an environment. The hub sets its id, owner (the caller), status
    (active), review (draft), ratings, counters and times."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "lab/align",
                    "kind": "oci-image",
                    "digest": "sha256:" + "0" * 64,
                    "classification": {"title": "Aligner", "content_type": "oci"},
                }
            ]
        },
    )

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME,
        description="Lower-case letters and digits joined by '.', '_', '-' and '/', as OCI "
        "repository names (e.g. lab/align); no component may be 'versions'.",
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=_MAX_VERSION,
        strict=True,
        description="1 for a new name, else the latest version + 1; assigned when left out.",
    )
    kind: Kind = Field(description="What the content is.")
    digest: str = Field(
        description="Digest of the published content: 'sha256:<64 hex>' or 'sha512:<128 hex>'."
    )
    base: str | None = Field(
        default=None,
        description="'<name>:<version>' this one derives from. For a further version of a name "
        "it is that name's latest version (set when left out).",
    )
    group_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The group given the group permissions; inherited from the latest version.",
    )
    permissions: str | None = Field(
        default=None,
        description="Owner, group and others as 'rw,r-,--' (the default, or inherited from the "
        "latest version).",
    )
    classification: dict[str, Any] = Field(
        description="ViCE classification: 'title' and 'content_type' are required; see "
        "specs/vice-classification.md for the other fields (hardware, operating_system, "
        "software_packages, ...)."
    )
    interface: dict[str, Any] | None = Field(
        default=None,
        description="How to run it as a tool: command, inputs, outputs, parameters, workdir.",
    )
    content: dict[str, Any] | None = Field(
        default=None,
        description="The artifact: media_type, size_bytes, created (when it was built), "
        "platform (os/architecture), virtual_size_bytes (VM disks). Filled in on import.",
    )


class EnvironmentOut(BaseModel):
    """One published version, with its bookkeeping."""

    id: str = Field(description="Unique id of this version.")
    name: str
    version: int
    kind: Kind
    digest: str
    base: str | None = Field(description="'<name>:<version>' this one derives from.")
    status: Status = Field(description="active, deprecated, or deleted (a tombstone).")
    review: Review
    created: datetime
    updated: datetime
    owner_id: str
    group_id: str | None
    permissions: str = Field(description="Owner, group and others, as 'rw,r-,--'.")
    ratings: list[int] = Field(description="Every rating given, 1 to 5.")
    total_exports: int
    active_deployments: int
    classification: dict[str, Any] = Field(description="ViCE classification.")
    interface: dict[str, Any] | None
    content: dict[str, Any] | None = None


class EnvironmentListOut(BaseModel):
    environments: list[EnvironmentOut] = Field(description="By name, then version.")
    facets: dict[str, dict[str, int]] | None = Field(
        default=None,
        description="With facets=true: per facet, each value and how many of the listed "
        "environments have it, most frequent first.",
    )


class FacetQuery(BaseModel):
    """Facet filters: any of a facet's values may match; every facet given must match."""

    kind: list[Kind] = Field(default_factory=list)
    community: list[str] = Field(default_factory=list)
    purpose: list[str] = Field(default_factory=list)
    os: list[str] = Field(default_factory=list, description="Operating system, as classified.")
    software: list[str] = Field(default_factory=list, description="Package name, no version.")
    runtime: list[str] = Field(default_factory=list, description="Runtime technology.")
    content_type: list[str] = Field(default_factory=list)
    execution_type: list[str] = Field(default_factory=list)
    user_interface: list[str] = Field(default_factory=list)
    facets: bool = Field(default=False, description="Also count the facet values found.")


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5, strict=True, description="From 1 (poor) to 5 (excellent).")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review: Review = Field(
        description="draft → in-review (the owner asks), in-review → trusted or draft (a "
        "reviewer decides; the owner may withdraw), trusted → in-review (reopened)."
    )


class HardwareOut(BaseModel):
    cpu_cores: float | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    gpus: int | None = None
    cpu_architecture: str | None = None


class ExecutionEnvironmentOut(BaseModel):
    """A place that runs tasks, classified as ViCE classifies execution environments."""

    name: str
    hardware: HardwareOut
    runtimes: list[str] = Field(description="toolferry runtimes that answer there.")
    management_layer: str
    management_implementation: str | None = None
    operating_system: list[str]


class MatchOut(BaseModel):
    execution_environment: ExecutionEnvironmentOut
    environment: str = Field(description='"name:version"')
    ok: bool
    runtime: str | None = Field(description="The runtime there that would run it.")
    reasons: list[str] = Field(description="Why it cannot run there (one line each).")


class MatchListOut(BaseModel):
    matches: list[MatchOut]


def execution_environment_out(where: ExecutionEnvironment) -> dict[str, Any]:
    return {
        "name": where.name,
        "hardware": {
            name: getattr(where.hardware, name)
            for name in ("cpu_cores", "ram_gb", "disk_gb", "gpus", "cpu_architecture")
        },
        "runtimes": list(where.runtimes),
        "management_layer": str(where.management_layer),
        "management_implementation": where.management_implementation,
        "operating_system": list(where.operating_system),
    }


def match_out(found: Match) -> dict[str, Any]:
    return {
        "execution_environment": execution_environment_out(found.where),
        "environment": found.env.ref,
        "ok": found.fit.ok,
        "runtime": found.fit.runtime,
        "reasons": list(found.fit.reasons),
    }


async def _service(request: Request) -> CatalogueService:
    return request.app.state.hub.catalogue  # type: ignore[no-any-return]


Service = Annotated[CatalogueService, Depends(_service)]
Name = Annotated[
    str, Path(description="The environment's name; may hold '/'.", examples=["lab/align"])
]
Version = Annotated[int, Path(ge=1, le=_MAX_VERSION, description="A version number.")]


def environment_out(env: Environment) -> dict[str, Any]:
    return environment_to_dict(env)


def router() -> APIRouter:
    """The catalogue routes, relative to :data:`PREFIX`. Routes ending in a fixed word come
    before the bare ``/{name}`` so that they are matched first."""
    api = APIRouter(tags=["environments"])
    read_errors: dict[int | str, dict[str, Any]] = {400: _ERROR, 401: _ERROR, 404: _ERROR}
    change_errors: dict[int | str, dict[str, Any]] = {**read_errors, 403: _ERROR, 409: _ERROR}

    @api.post(
        "",
        summary="Publish an environment version",
        status_code=201,
        response_model=EnvironmentOut,
        responses={400: _ERROR, 401: _ERROR, 403: _ERROR, 409: _ERROR},
    )
    def register(body: EnvironmentIn, service: Service, who: Who) -> dict[str, Any]:
        """Publish a version; a published version never changes (409 when it exists)."""
        document = body.model_dump(mode="json", exclude_none=True)
        return environment_out(service.register(document, who))

    @api.get(
        "",
        summary="List or search environments",
        response_model=EnvironmentListOut,
        responses={400: _ERROR, 401: _ERROR},
    )
    def search(
        service: Service,
        who: Who,
        q: Annotated[
            str | None,
            Query(
                max_length=2000,
                description="Criteria, e.g. 'at least 8 GB RAM, ubuntu, has samtools' or "
                "'ram>=8 os=ubuntu has=samtools>=1.17'. Empty: everything.",
            ),
        ] = None,
        include_deleted: Annotated[
            bool, Query(description="Also list deleted versions (tombstones).")
        ] = False,
        facet: Annotated[FacetQuery, Query()] = FacetQuery(),
    ) -> dict[str, Any]:
        """The versions the caller may read that match ``q`` and the facet filters (repeat a
        facet parameter for alternatives: ``?community=biology&community=physics``)."""
        chosen = facet.model_dump(exclude={"facets"})
        found = select(service.search(q, who, include_deleted=include_deleted), chosen)
        out: dict[str, Any] = {"environments": [environment_out(env) for env in found]}
        if facet.facets:
            out["facets"] = count_facets(found)
        return out

    @api.get(
        "/{name:envname}/versions",
        summary="List an environment's versions",
        response_model=EnvironmentListOut,
        responses=read_errors,
    )
    def versions(name: Name, service: Service, who: Who) -> dict[str, Any]:
        """Every version the caller may read, oldest first, deleted ones included."""
        return {"environments": [environment_out(env) for env in service.versions(name, who)]}

    @api.get(
        "/{name:envname}/versions/{version:envversion}",
        summary="Get an environment version",
        response_model=EnvironmentOut,
        responses=read_errors,
    )
    def get_version(name: Name, version: Version, service: Service, who: Who) -> dict[str, Any]:
        return environment_out(service.get(name, version, who))

    @api.post(
        "/{name:envname}/versions/{version:envversion}:deprecate",
        summary="Deprecate an environment version",
        response_model=EnvironmentOut,
        responses=change_errors,
    )
    def deprecate(name: Name, version: Version, service: Service, who: Who) -> dict[str, Any]:
        """Still runnable, but new work should move on; needs write permission."""
        return environment_out(service.deprecate(name, version, who))

    @api.delete(
        "/{name:envname}/versions/{version:envversion}",
        summary="Delete an environment version (tombstone)",
        response_model=EnvironmentOut,
        responses=change_errors,
    )
    def delete(name: Name, version: Version, service: Service, who: Who) -> dict[str, Any]:
        """The version stays listed and readable with status deleted, and never runs again."""
        return environment_out(service.delete(name, version, who))

    @api.post(
        "/{name:envname}/versions/{version:envversion}/ratings",
        summary="Rate an environment version",
        response_model=EnvironmentOut,
        responses=change_errors,
    )
    def rate(
        name: Name, version: Version, body: RatingIn, service: Service, who: Who
    ) -> dict[str, Any]:
        """Add a rating; anyone who may read the version may rate it."""
        return environment_out(service.rate(name, version, body.rating, who))

    @api.post(
        "/{name:envname}/versions/{version:envversion}:review",
        summary="Move an environment version's review",
        response_model=EnvironmentOut,
        responses=change_errors,
    )
    def review(
        name: Name, version: Version, body: ReviewIn, service: Service, who: Who
    ) -> dict[str, Any]:
        """Sites may require a review status before they run an environment."""
        return environment_out(service.review(name, version, body.review, who))

    @api.get(
        "/{name:envname}/versions/{version:envversion}/matches",
        summary="Where an environment version can run",
        response_model=MatchListOut,
        responses=read_errors,
    )
    def matches(
        name: Name, version: Version, service: Service, who: Who, request: Request
    ) -> dict[str, Any]:
        """Each execution environment of this hub, whether the version can run there (ViCE's
        table IV and the hardware), on which runtime, and if not, why not."""
        places = request.app.state.hub.execution_environments()
        found = match([service.get(name, version, who)], places)
        return {"matches": [match_out(m) for m in found]}

    @api.get(
        "/{name:envname}",
        summary="Get an environment's latest version",
        response_model=EnvironmentOut,
        responses=read_errors,
    )
    def latest(name: Name, service: Service, who: Who) -> dict[str, Any]:
        """The highest version the caller may read, whatever its status."""
        return environment_out(service.get(name, None, who))

    return api


def install(app: FastAPI) -> None:
    """Mount the catalogue routes at :data:`PREFIX` (and list their methods for 405 answers)."""
    api = router()
    app.include_router(api, prefix=PREFIX)
    errors.record_methods(app, PREFIX, api.routes)
