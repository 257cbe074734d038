"""The GA4GH TRS 2.0.1 view of catalogue entries: tools, versions, images, files, a CWL descriptor.

Pure mapping from :class:`Environment` versions to the JSON objects of
``specs/trs-2.0.1.openapi.yaml``; the HTTP edge (``api/trs.py``) reads the catalogue and pages.

* A **tool** is an environment name (its TRS id); its **versions** are the published versions
  the caller may read, tombstones left out. ``organization`` is the name's namespace
  (``lab`` of ``lab/align``, the owner for a name without one), ``name`` the latest title.
* A version's **image** is where its content is pulled from: ``classification.location`` when
  that is an OCI reference pinned to the entry's digest (``host/repo@sha256:...``, as tasks
  run it), with the digest as checksum.
* An entry with a tool interface and a pinned OCI image has a **CWL v1.2 CommandLineTool**
  descriptor (``tool.cwl``): files are staged at the interface's container paths, outputs are
  collected from one output directory (the interface's workdir, else the outputs' common
  directory), so the command runs exactly as the TES task the interface makes.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from toolferry.domain.environment import (
    ContentType,
    Environment,
    Hardware,
    Kind,
    Review,
    Status,
    ToolInterface,
    render_token,
)
from toolferry.domain.task import FileType

__all__ = [
    "CWL_VERSION",
    "DESCRIPTOR_FILE",
    "TOOL_CLASSES",
    "DescriptorType",
    "Links",
    "PinnedImage",
    "ToolQuery",
    "TrsFile",
    "checksum",
    "containerfile",
    "cwl_tool",
    "descriptor_types",
    "group_tools",
    "image_data",
    "no_cwl_reason",
    "organization",
    "pinned_image",
    "tool",
    "tool_class",
    "tool_files",
    "tool_version",
]

CWL_VERSION = "v1.2"
DESCRIPTOR_FILE = "tool.cwl"
JSON = dict[str, Any]


class DescriptorType(StrEnum):
    CWL = "CWL"
    WDL = "WDL"
    NFL = "NFL"
    GALAXY = "GALAXY"
    SMK = "SMK"


_COMMAND_LINE_TOOL: JSON = {
    "id": "CommandLineTool",
    "name": "CommandLineTool",
    "description": "An environment with a tool interface (inputs, outputs, parameters and a "
    "command): it runs as a task, and has a CWL descriptor when its image is pinned.",
}
_ENVIRONMENT: JSON = {
    "id": "Environment",
    "name": "Environment",
    "description": "An environment without a tool interface (a service, an interactive "
    "environment or a base image): no descriptor.",
}
TOOL_CLASSES: tuple[JSON, ...] = (_COMMAND_LINE_TOOL, _ENVIRONMENT)

# Hash Name Strings of the GA4GH checksum registry, for the digests entries carry.
_HASH_NAMES = {"sha256": "sha-256", "sha512": "sha-512"}
# OCI distribution reference grammar: an optional registry host, a repository, a tag.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")


@dataclass(frozen=True, kw_only=True)
class Links:
    """Absolute URLs: ``trs`` is the TRS base (``.../ga4gh/trs/v2``), ``catalogue`` the
    catalogue API's (``.../api/v1/environments``)."""

    trs: str
    catalogue: str

    def tool(self, name: str) -> str:
        return f"{self.trs}/tools/{quote(name, safe='')}"

    def version(self, env: Environment) -> str:
        return f"{self.tool(env.name)}/versions/{env.version}"

    def file(self, env: Environment, kind: DescriptorType, path: str) -> str:
        """The raw (PLAIN_) content of one of the version's files."""
        return f"{self.version(env)}/PLAIN_{kind}/descriptor/{quote(path)}"

    def entry(self, env: Environment) -> str:
        return f"{self.catalogue}/{env.name}/versions/{env.version}"


def checksum(digest: str) -> JSON:
    """``sha256:<hex>`` → a TRS ``Checksum``."""
    algorithm, _, hexdigest = digest.partition(":")
    return {"checksum": hexdigest, "type": _HASH_NAMES.get(algorithm, algorithm)}


# Images


@dataclass(frozen=True, kw_only=True)
class PinnedImage:
    """An OCI reference pinned by digest: ``[host/]repository[:tag]@digest``."""

    host: str | None
    repository: str
    tag: str | None
    digest: str

    @property
    def image_name(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.repository}{tag}@{self.digest}"

    @property
    def reference(self) -> str:
        """What ``docker pull`` takes."""
        return f"{self.host}/{self.image_name}" if self.host else self.image_name

    @property
    def repository_ref(self) -> str:
        """``[host/]repository``: the image without tag and digest."""
        return f"{self.host}/{self.repository}" if self.host else self.repository


def pinned_image(env: Environment) -> PinnedImage | None:
    """The entry's location when it is an OCI reference pinned to the entry's digest."""
    location = env.classification.location
    if not location or "://" in location or not location.endswith("@" + env.digest):
        return None
    name = location[: -len(env.digest) - 1]
    host: str | None = None
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.fullmatch(first):
            return None
        host, name = first, rest
    tag: str | None = None
    repository, colon, maybe_tag = name.rpartition(":")
    if colon and "/" not in maybe_tag:
        if not _TAG.fullmatch(maybe_tag):
            return None
        tag = maybe_tag
    else:
        repository = name
    if not _REPOSITORY.fullmatch(repository):
        return None
    return PinnedImage(host=host, repository=repository, tag=tag, digest=env.digest)


def _image_type(env: Environment) -> str | None:
    """TRS ``ImageType``; VM disks are none of Docker, Singularity or Conda."""
    if env.kind in (Kind.OCI_IMAGE, Kind.RECIPE):
        return "Docker"
    if env.kind is Kind.APPTAINER_SIF:
        return "Singularity"
    return None


def image_data(env: Environment) -> JSON:
    """TRS ``ImageData``: where the content is pulled from (when pinned), its checksum, kind."""
    data: JSON = {}
    pinned = pinned_image(env)
    if pinned is not None:
        if pinned.host:
            data["registry_host"] = pinned.host
        data["image_name"] = pinned.image_name
    data["updated"] = env.created.isoformat()  # published content never changes
    data["checksum"] = [checksum(env.digest)]
    image_type = _image_type(env)
    if image_type is not None:
        data["image_type"] = image_type
    return data


# Tool classes, organisations, files


def tool_class(env: Environment) -> JSON:
    return dict(_COMMAND_LINE_TOOL if env.interface is not None else _ENVIRONMENT)


def organization(env: Environment) -> str:
    """The name's namespace (``lab`` of ``lab/align``), else the owner."""
    namespace, slash, _ = env.name.rpartition("/")
    return namespace if slash else env.owner_id


def _image_name(env: Environment) -> str:
    """The last component of the name: with :func:`organization`, the name again."""
    return env.name.rpartition("/")[2]


@dataclass(frozen=True, kw_only=True)
class TrsFile:
    """One file of a version, as ``.../{type}/descriptor/{path}`` serves it."""

    path: str
    file_type: str  # PRIMARY_DESCRIPTOR, CONTAINERFILE, ...
    content: str
    image_type: str | None = None  # a DescriptorType or an ImageType

    @property
    def checksum(self) -> JSON:
        return checksum("sha256:" + hashlib.sha256(self.content.encode()).hexdigest())

    def wrapper(self, url: str | None) -> JSON:
        """TRS ``FileWrapper``; ``url`` serves the raw content."""
        out: JSON = {"content": self.content, "checksum": [self.checksum]}
        if url is not None:
            out["url"] = url
        if self.image_type is not None:
            out["image_type"] = self.image_type
        return out

    def listing(self) -> JSON:
        """TRS ``ToolFile``."""
        return {"path": self.path, "file_type": self.file_type, "checksum": self.checksum}


def containerfile(env: Environment, recipe: str) -> TrsFile:
    """The recipe the entry was (or is) built from."""
    if env.classification.content_type is ContentType.CONTAINERFILE:
        path = "Containerfile"
    elif env.kind is Kind.APPTAINER_SIF:
        path = "Singularity"
    else:
        path = "Dockerfile"
    return TrsFile(
        path=path, file_type="CONTAINERFILE", content=recipe, image_type=_image_type(env)
    )


def descriptor_types(env: Environment) -> list[DescriptorType]:
    return [DescriptorType.CWL] if cwl_tool(env) is not None else []


def tool_files(env: Environment, kind: DescriptorType, recipe: str | None) -> list[TrsFile]:
    """The files a version offers for ``kind``, primary descriptor first; empty when it has
    no descriptor of that kind."""
    document = cwl_tool(env) if kind is DescriptorType.CWL else None
    if document is None:
        return []
    files = [
        TrsFile(
            path=DESCRIPTOR_FILE,
            file_type="PRIMARY_DESCRIPTOR",
            content=json.dumps(document, indent=2) + "\n",
            image_type=DescriptorType.CWL.value,
        )
    ]
    if recipe is not None:
        files.append(containerfile(env, recipe))
    return files


# Versions and tools


def tool_version(env: Environment, links: Links, *, has_containerfile: bool) -> JSON:
    """TRS ``ToolVersion``. Deprecated versions are not for production use (they stay as
    immutable as every version: the checksum says so)."""
    kinds = descriptor_types(env)
    return {
        "author": [env.owner_id],
        "name": env.ref,
        "url": links.version(env),
        "id": str(env.version),
        "is_production": env.status is Status.ACTIVE,
        "images": [image_data(env)],
        "descriptor_type": [k.value for k in kinds],
        "descriptor_type_version": {k.value: [CWL_VERSION] for k in kinds},
        "containerfile": has_containerfile,
        "meta_version": env.updated.isoformat(),
        "verified": env.review is Review.TRUSTED,
        "verified_source": [links.entry(env)] if env.review is Review.TRUSTED else [],
        "signed": False,
        "included_apps": list(env.classification.software_packages),
    }


def tool(
    versions: Sequence[Environment],
    links: Links,
    *,
    has_containerfile: Callable[[Environment], bool],
) -> JSON:
    """TRS ``Tool`` from the versions of one name, oldest first; the latest names it."""
    latest = versions[-1]
    return {
        "url": links.tool(latest.name),
        "id": latest.name,
        "aliases": _aliases(versions),
        "organization": organization(latest),
        "name": latest.classification.title,
        "toolclass": tool_class(latest),
        "description": latest.classification.description,
        "meta_version": max(env.updated for env in versions).isoformat(),
        "has_checker": False,
        "versions": [
            tool_version(env, links, has_containerfile=has_containerfile(env)) for env in versions
        ],
    }


def _aliases(versions: Sequence[Environment]) -> list[str]:
    """The image repositories the versions are pulled from: the same tool in other
    registries is found by them."""
    pinned = (pinned_image(env) for env in versions)
    return sorted({p.repository_ref for p in pinned if p is not None})


def group_tools(envs: Sequence[Environment]) -> Iterator[list[Environment]]:
    """Versions listed by name then version → one list per name."""
    group: list[Environment] = []
    for env in envs:
        if group and group[0].name != env.name:
            yield group
            group = []
        group.append(env)
    if group:
        yield group


@dataclass(frozen=True, kw_only=True)
class ToolQuery:
    """The filters of ``GET /tools``; each given one must hold. ``toolname`` and
    ``description`` match case-insensitive parts of the latest title and description;
    ``registry``, ``author``, ``alias`` and ``descriptor_type`` hold when any version has them;
    the rest compare whole values. No tool here is a checker workflow."""

    id: str | None = None
    alias: str | None = None
    tool_class: str | None = None
    descriptor_type: DescriptorType | None = None
    registry: str | None = None
    organization: str | None = None
    name: str | None = None
    toolname: str | None = None
    description: str | None = None
    author: str | None = None
    checker: bool | None = None

    def matches(self, versions: Sequence[Environment]) -> bool:
        latest = versions[-1]
        pinned = [p for p in map(pinned_image, versions) if p is not None]

        def contains(text: str, part: str | None) -> bool:
            return part is None or part.casefold() in text.casefold()

        return (
            (self.checker is not True)
            and self.id in (None, latest.name)
            and (self.alias is None or self.alias in _aliases(versions))
            and self.tool_class in (None, tool_class(latest)["name"])
            and (
                self.descriptor_type is None
                or any(self.descriptor_type in descriptor_types(env) for env in versions)
            )
            and (self.registry is None or any(p.host == self.registry for p in pinned))
            and self.organization in (None, organization(latest))
            and self.name in (None, _image_name(latest))
            and contains(latest.classification.title, self.toolname)
            and contains(latest.classification.description, self.description)
            and (self.author is None or any(env.owner_id == self.author for env in versions))
        )


# The CWL descriptor


def cwl_tool(env: Environment) -> JSON | None:
    """A CWL v1.2 CommandLineTool running the entry's interface in its pinned image, or None
    (:func:`no_cwl_reason` says why)."""
    made = _cwl(env)
    return made if isinstance(made, dict) else None


def no_cwl_reason(env: Environment) -> str | None:
    """Why the entry has no CWL descriptor; None when it has one."""
    made = _cwl(env)
    return made if isinstance(made, str) else None


def _cwl(env: Environment) -> JSON | str:
    """The CWL document, or why there is none."""
    interface = env.interface
    if interface is None:
        return "it has no tool interface"
    image = pinned_image(env)
    if env.kind is not Kind.OCI_IMAGE or image is None:
        return (
            "it is no OCI image pinned by digest (classification.location "
            f"'host/repository@{env.digest}')"
        )
    out_dir = _output_dir(interface)
    globs: dict[str, str] = {}
    for f in interface.outputs:
        inside = _inside(f.path, out_dir, f.type)
        if inside is None:
            return (
                "its outputs share no directory other than / (or lie outside its workdir) "
                "to collect them from"
            )
        globs[f.name] = inside

    docker: JSON = {"class": "DockerRequirement", "dockerPull": image.reference}
    if out_dir is not None:
        docker["dockerOutputDirectory"] = out_dir
    requirements: list[JSON] = [docker]
    if interface.inputs:
        # v1.2: an absolute entryname stages the file at that path inside the container.
        listing = [{"entryname": f.path, "entry": f"$(inputs.{f.name})"} for f in interface.inputs]
        requirements.append({"class": "InitialWorkDirRequirement", "listing": listing})
    resources = _resources(env.classification.minimal_hardware)
    if resources:
        requirements.append({"class": "ResourceRequirement", **resources})

    document: JSON = {
        "cwlVersion": CWL_VERSION,
        "class": "CommandLineTool",
        "label": env.classification.title,
    }
    if env.classification.description:
        document["doc"] = env.classification.description
    document["requirements"] = requirements
    packages = _software(env.classification.software_packages)
    if packages:
        document["hints"] = [{"class": "SoftwareRequirement", "packages": packages}]
    base, arguments = _command(interface)
    if base:
        document["baseCommand"] = base
    if arguments:
        document["arguments"] = arguments
    document["inputs"] = _inputs(interface)
    document["outputs"] = {
        f.name: _described(
            {"type": _cwl_type(f.type), "outputBinding": {"glob": globs[f.name]}}, f.description
        )
        for f in interface.outputs
    }
    return document


def _cwl_type(kind: FileType) -> str:
    return "Directory" if kind is FileType.DIRECTORY else "File"


def _described(item: JSON, description: str | None) -> JSON:
    return {**item, "doc": description} if description else item


def _inputs(interface: ToolInterface) -> JSON:
    inputs: JSON = {}
    for f in interface.inputs:
        item: JSON = {"type": _cwl_type(f.type)}
        if f.default_url:
            item["default"] = {"class": _cwl_type(f.type), "location": f.default_url}
        inputs[f.name] = _described(item, f.description)
    for p in interface.parameters:
        item = {"type": "string"}
        if p.default is not None:
            item["default"] = p.default
        inputs[p.name] = _described(item, p.description)
    return inputs


def _output_dir(interface: ToolInterface) -> str | None:
    """The directory the command runs in and outputs are collected from: the workdir, else
    the deepest directory holding every output (never ``/``)."""
    if interface.workdir is not None:
        return posixpath.normpath(interface.workdir)
    if not interface.outputs:
        return None
    holders = [
        posixpath.normpath(f.path)
        if f.type is FileType.DIRECTORY
        else posixpath.dirname(posixpath.normpath(f.path))
        for f in interface.outputs
    ]
    common = posixpath.commonpath(holders)
    return None if common == "/" else common


def _inside(path: str, directory: str | None, kind: FileType) -> str | None:
    """``path`` relative to ``directory`` (a glob), or None when it is not inside."""
    if directory is None:
        return None
    relative = posixpath.relpath(posixpath.normpath(path), directory)
    if relative == ".." or relative.startswith("../"):
        return None
    if relative == "." and kind is not FileType.DIRECTORY:
        return None
    return relative


def _resources(hardware: Hardware | None) -> JSON:
    if hardware is None:
        return {}
    out: JSON = {}
    if hardware.cpu_cores is not None:
        cores = hardware.cpu_cores
        out["coresMin"] = int(cores) if cores.is_integer() else cores
    if hardware.ram_gb is not None:
        out["ramMin"] = math.ceil(hardware.ram_gb * 1024)  # MiB
    if hardware.disk_gb is not None:
        out["outdirMin"] = math.ceil(hardware.disk_gb * 1024)  # MiB
    return out


def _software(packages: Sequence[str]) -> list[JSON]:
    """``"samtools 1.17"`` → a SoftwareRequirement package (the catalogue's own reading)."""
    out: list[JSON] = []
    for text in packages:
        name, _, version = text.strip().partition(" ")
        package: JSON = {"package": name}
        if version.strip():
            package["version"] = [version.strip()]
        out.append(package)
    return out


def _command(interface: ToolInterface) -> tuple[list[str], list[str]]:
    """``baseCommand`` (the leading tokens that need no parameter) and ``arguments``.

    File placeholders become their container paths, where the files are staged; parameter
    placeholders become ``$(inputs.NAME)``. Each token stays one argument: CWL runs the
    command without a shell, as TES does.
    """
    files = {f.name: f.path for f in (*interface.inputs, *interface.outputs)}
    parameters = {p.name for p in interface.parameters}
    marks = {name: f"\0{name}\0" for name in (*files, *parameters)}
    tokens: list[tuple[bool, str]] = []  # (refers to a parameter, text)
    for token in interface.command:
        # Even pieces are literal text, odd ones the names of placeholders.
        pieces = render_token(token, marks).split("\0")
        names = pieces[1::2]
        if not any(name in parameters for name in names):
            text = "".join(files[p] if i % 2 else p for i, p in enumerate(pieces))
            tokens.append((False, text))
            continue
        parts = [
            (f"$(inputs.{p})" if p in parameters else _escape(files[p])) if i % 2 else _escape(p)
            for i, p in enumerate(pieces)
        ]
        tokens.append((True, "".join(parts)))
    base: list[str] = []
    for needs_parameter, text in tokens:
        if needs_parameter:
            break
        base.append(text)
    arguments = [
        text if needs_parameter else _literal_argument(text)
        for needs_parameter, text in tokens[len(base) :]
    ]
    return base, arguments


def _escape(text: str) -> str:
    """Literal text inside a CWL v1.1+ string that holds parameter references."""
    return text.replace("\\", "\\\\").replace("$(", "\\$(").replace("${", "\\${")


def _literal_argument(text: str) -> str:
    """An argument without a reference: CWL evaluates only strings holding ``$(`` or ``${``,
    so only those need escaping."""
    return _escape(text) if "$(" in text or "${" in text else text
