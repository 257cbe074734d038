"""The JSON form of an Environment: environment_from_dict and environment_to_dict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from toolferry.domain.environment.access import Permissions
from toolferry.domain.environment.checks import errors_under
from toolferry.domain.environment.classification import Classification
from toolferry.domain.environment.content import ContentInfo
from toolferry.domain.environment.hardware import Hardware
from toolferry.domain.environment.interface import Parameter, ToolFile, ToolInterface
from toolferry.domain.environment.model import Environment
from toolferry.domain.environment.reader import Reader, build_at, field_names
from toolferry.domain.environment.vocabulary import (
    ContentType,
    ExecutionType,
    ImageType,
    Kind,
    ManagementLayer,
    ResourceProfile,
    Review,
    RuntimeTechnology,
    Status,
    UserInteraction,
    UserInterface,
)
from toolferry.domain.errors import InvalidTask
from toolferry.domain.task import FileType


def _hardware_from(data: object, where: str) -> Hardware | None:
    if data is None:
        return None
    r = Reader(data, where, field_names(Hardware))
    return build_at(
        Hardware,
        where,
        {
            "cpu_cores": r.number("cpu_cores"),
            "ram_gb": r.number("ram_gb"),
            "disk_gb": r.number("disk_gb"),
            "gpus": r.integer("gpus"),
            "cpu_architecture": r.text("cpu_architecture"),
            "storage_type": r.text("storage_type"),
            "interconnect": r.text("interconnect"),
        },
    )


def _classification_from(data: object, where: str) -> Classification:
    r = Reader(data, where, field_names(Classification))
    return build_at(
        Classification,
        where,
        {
            "title": r.req_text("title"),
            "description": r.text("description") or "",
            "community": r.strs("community"),
            "purpose": r.strs("purpose"),
            "content_type": r.req_enum(ContentType, "content_type"),
            "runtime_technology": r.enum(RuntimeTechnology, "runtime_technology"),
            "runtime_implementation": r.text("runtime_implementation"),
            "management_layer": r.enum(ManagementLayer, "management_layer"),
            "management_implementation": r.text("management_implementation"),
            "location": r.text("location"),
            "image_type": r.enum(ImageType, "image_type"),
            "content_refs": r.strs("content_refs"),
            "checksum": r.text("checksum"),
            "virtual_hardware": _hardware_from(r.raw("virtual_hardware"), r.at("virtual_hardware")),
            "environment_hardware": _hardware_from(
                r.raw("environment_hardware"), r.at("environment_hardware")
            ),
            "resource_profile": r.enum(ResourceProfile, "resource_profile"),
            "minimal_hardware": _hardware_from(r.raw("minimal_hardware"), r.at("minimal_hardware")),
            "execution_type": r.enum(ExecutionType, "execution_type"),
            "user_interaction": r.enum(UserInteraction, "user_interaction"),
            "user_interface": r.enum(UserInterface, "user_interface"),
            "operating_system": r.strs("operating_system"),
            "software_packages": r.strs("software_packages"),
            "service_dependencies": r.strs("service_dependencies"),
        },
    )


def _tool_file_from(data: object, where: str) -> ToolFile:
    r = Reader(data, where, field_names(ToolFile))
    return build_at(
        ToolFile,
        where,
        {
            "name": r.req_text("name"),
            "path": r.req_text("path"),
            "type": r.enum(FileType, "type") or FileType.FILE,
            "description": r.text("description"),
            "default_url": r.text("default_url"),
        },
    )


def _parameter_from(data: object, where: str) -> Parameter:
    r = Reader(data, where, field_names(Parameter))
    return build_at(
        Parameter,
        where,
        {
            "name": r.req_text("name"),
            "default": r.text("default"),
            "description": r.text("description"),
        },
    )


def _interface_from(data: object, where: str) -> ToolInterface:
    r = Reader(data, where, field_names(ToolInterface))

    def each(key: str) -> list[tuple[object, str]]:
        return [(x, f"{r.at(key)}[{i}]") for i, x in enumerate(r.objects(key))]

    return build_at(
        ToolInterface,
        where,
        {
            "command": r.strs("command"),
            "inputs": tuple(_tool_file_from(x, at) for x, at in each("inputs")),
            "outputs": tuple(_tool_file_from(x, at) for x, at in each("outputs")),
            "parameters": tuple(_parameter_from(x, at) for x, at in each("parameters")),
            "workdir": r.text("workdir"),
        },
    )


def _content_from(data: object, where: str) -> ContentInfo:
    r = Reader(data, where, field_names(ContentInfo))
    media_type, platform = r.text("media_type"), r.text("platform")
    size, virtual_size = r.integer("size_bytes"), r.integer("virtual_size_bytes")
    created = r.time("created") if r.has("created") else None
    with errors_under(where):
        return ContentInfo(
            media_type=media_type,
            size_bytes=size,
            created=created,
            platform=platform,
            virtual_size_bytes=virtual_size,
        )


def environment_from_dict(data: Mapping[str, Any]) -> Environment:
    """Rebuild an :class:`Environment` from its JSON form; bad input raises
    :class:`InvalidTask` naming the field path (e.g. ``classification.user_interface``)."""
    r = Reader(data, "", field_names(Environment))
    permissions = Permissions()
    if r.has("permissions"):
        text = r.req_text("permissions")
        with errors_under("permissions"):
            permissions = Permissions.parse(text)
    ratings = r.raw("ratings") or []
    if not isinstance(ratings, list):
        raise InvalidTask("ratings", "must be a list of integers from 1 to 5")
    return Environment(
        id=r.req_text("id"),
        name=r.req_text("name"),
        version=r.req_integer("version"),
        kind=r.req_enum(Kind, "kind"),
        digest=r.req_text("digest"),
        classification=_classification_from(
            r.raw("classification", required=True), "classification"
        ),
        created=r.time("created"),
        updated=r.time("updated"),
        owner_id=r.req_text("owner_id"),
        group_id=r.text("group_id"),
        permissions=permissions,
        base=r.text("base"),
        status=r.enum(Status, "status") or Status.ACTIVE,
        review=r.enum(Review, "review") or Review.DRAFT,
        ratings=tuple(ratings),
        total_exports=r.integer("total_exports") or 0,
        active_deployments=r.integer("active_deployments") or 0,
        interface=_interface_from(r.raw("interface"), "interface") if r.has("interface") else None,
        content=_content_from(r.raw("content"), "content") if r.has("content") else None,
    )


def _plain(value: object) -> object:
    """Dataclasses → dicts, tuples → lists, enums → values; for the JSON form."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(
        value, Hardware | Classification | ToolFile | Parameter | ToolInterface | ContentInfo
    ):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


def environment_to_dict(env: Environment) -> dict[str, Any]:
    """The JSON form of ``env``: every field, ``None`` as null, times in ISO 8601."""
    return {
        "id": env.id,
        "name": env.name,
        "version": env.version,
        "kind": env.kind.value,
        "digest": env.digest,
        "base": env.base,
        "status": env.status.value,
        "review": env.review.value,
        "created": env.created.isoformat(),
        "updated": env.updated.isoformat(),
        "owner_id": env.owner_id,
        "group_id": env.group_id,
        "permissions": str(env.permissions),
        "ratings": list(env.ratings),
        "total_exports": env.total_exports,
        "active_deployments": env.active_deployments,
        "classification": _plain(env.classification),
        "interface": _plain(env.interface) if env.interface is not None else None,
        "content": _plain(env.content) if env.content is not None else None,
    }
