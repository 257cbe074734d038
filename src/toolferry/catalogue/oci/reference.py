"""Image references (``host[:port]/path[:tag][@digest]``) as docker/distribution parses them.

The grammar is distribution's ``reference`` package
(https://github.com/distribution/reference/blob/main/reference.go): a first component holding a
``.`` or a ``:``, or named ``localhost``, or holding upper-case letters, is a registry host;
otherwise the registry is ``docker.io`` and a one-component path gets ``library/``.
``str()`` gives the normalised form and parses back to an equal :class:`Reference`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from toolferry.catalogue.oci.digests import check_digest
from toolferry.domain.errors import InvalidTask

__all__ = [
    "DOCKER_HUB",
    "Reference",
    "check_repository",
    "check_tag",
    "parse_reference",
]

DOCKER_HUB = "docker.io"
_LEGACY_HUB = "index.docker.io"
_MAX_NAME = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")


def check_repository(repository: str, field: str = "repository") -> str:
    """``repository`` if it is a valid path (``a/b-c/d_e``), else InvalidTask(field) saying why."""
    if not repository:
        raise InvalidTask(field, "the repository name is empty")
    for component in repository.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if component and _PATH_COMPONENT.fullmatch(component.lower()):
            raise InvalidTask(field, f"repository name must be lowercase: {repository!r}")
        shown = repr(component) if component else "an empty component"
        raise InvalidTask(
            field,
            f"invalid repository name {repository!r}: {shown} is not lower-case letters and "
            "digits joined by '.', '_', '__' or '-'",
        )
    return repository


def check_tag(tag: str, field: str = "tag") -> str:
    """``tag`` if valid (a word character, then up to 127 of ``[A-Za-z0-9_.-]``)."""
    if not _TAG.fullmatch(tag):
        raise InvalidTask(
            field,
            f"invalid tag {tag!r}: a tag is up to 128 letters, digits, '_', '.' or '-' and "
            "does not start with '.' or '-'",
        )
    return tag


@dataclass(frozen=True)
class Reference:
    """A normalised reference; at least one of ``tag``/``digest`` may be absent (then: latest)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if not _DOMAIN.fullmatch(self.registry):
            raise InvalidTask("reference", f"invalid registry host {self.registry!r}")
        check_repository(self.repository, "reference")
        if len(self.name) > _MAX_NAME:
            raise InvalidTask("reference", f"repository name is longer than {_MAX_NAME} characters")
        if self.tag is not None:
            check_tag(self.tag, "reference")
        if self.digest is not None:
            check_digest(self.digest, "reference")

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def lookup(self) -> str:
        """What to ask a registry for: the digest if pinned, else the tag (default ``latest``)."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest: str) -> Reference:
        """This reference pinned to ``digest`` (the tag, if any, is kept for readers)."""
        return replace(self, digest=check_digest(digest, "reference"))

    def familiar(self) -> str:
        """The short form people type: ``busybox:1`` for ``docker.io/library/busybox:1``."""
        text = str(self)
        if self.registry == DOCKER_HUB:
            text = text.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
        return text

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parses ``text`` (docker grammar) into a normalised :class:`Reference`.

    Raises ``InvalidTask("reference", why)`` for anything malformed.
    """
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise InvalidTask("reference", f"{text!r} is empty or contains white space")
    name, at, digest = text.partition("@")
    if at and not digest:
        raise InvalidTask("reference", f"{text!r} ends with '@' but names no digest")
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise InvalidTask("reference", f"{text!r} has an empty tag after ':'")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry == _LEGACY_HUB:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return Reference(registry, repository, tag, digest or None)
