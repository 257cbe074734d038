"""Environment vocabularies: kinds, content types, ViCE enums, legal review and status changes."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from toolferry.domain.errors import InvalidTransition


class Kind(StrEnum):
    OCI_IMAGE = "oci-image"
    RECIPE = "recipe"  # Dockerfile/Containerfile/Packerfile, built by the local engine
    VM_DISK = "vm-disk"
    APPTAINER_SIF = "apptainer-sif"


class ContentType(StrEnum):
    """ViCE ``content_type``: the file type of the image or recipe."""

    QCOW2 = "qcow2"
    RAW = "raw"
    VMDK = "vmdk"
    OVA = "ova"
    OCI = "oci"
    DOCKER_ARCHIVE = "docker-archive"
    DOCKERFILE = "dockerfile"
    CONTAINERFILE = "containerfile"
    PACKERFILE = "packerfile"
    SIF = "sif"


KIND_CONTENT_TYPES: Mapping[Kind, frozenset[ContentType]] = {
    Kind.OCI_IMAGE: frozenset({ContentType.OCI, ContentType.DOCKER_ARCHIVE}),
    Kind.RECIPE: frozenset(
        {ContentType.DOCKERFILE, ContentType.CONTAINERFILE, ContentType.PACKERFILE}
    ),
    Kind.VM_DISK: frozenset(
        {ContentType.QCOW2, ContentType.RAW, ContentType.VMDK, ContentType.OVA}
    ),
    Kind.APPTAINER_SIF: frozenset({ContentType.SIF}),
}


class Status(StrEnum):
    ACTIVE = "active"
    DEPRECATED = "deprecated"  # still runnable; new work should move to a newer version
    DELETED = "deleted"  # a tombstone: still listed and readable, never run


class Review(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in-review"
    TRUSTED = "trusted"


class RuntimeTechnology(StrEnum):
    """ViCE table II. Bare metal is a property of execution environments, not of images."""

    VM = "vm"
    CONTAINER = "container"
    APPLICATION = "application"


class ManagementLayer(StrEnum):
    BASIC = "basic"
    CLOUD = "cloud"
    CONTAINER_CLUSTER = "container-cluster"
    SCHEDULER = "scheduler"


class ImageType(StrEnum):
    IMPLICIT = "implicit"  # a disk or filesystem image
    DECLARATIVE = "declarative"  # a recipe


class ResourceProfile(StrEnum):
    """ViCE ``resource_profile``: what typically limits the tool ("CPU- or I/O-bound, ...")."""

    CPU_BOUND = "cpu-bound"
    MEMORY_BOUND = "memory-bound"
    IO_BOUND = "io-bound"
    NETWORK_BOUND = "network-bound"
    GPU_BOUND = "gpu-bound"
    MIXED = "mixed"


class ExecutionType(StrEnum):
    SERVICE = "service"
    JOB = "job"
    INTERACTIVE = "interactive"


class UserInteraction(StrEnum):
    DIRECT = "direct"
    INDIRECT = "indirect"


class UserInterface(StrEnum):
    CLI = "cli"
    GUI = "gui"
    WEB = "web"
    NONE = "none"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    RUN = "run"  # needs read permission: running reveals no more than pulling the image


# Why each edge exists:
# - DRAFT → IN_REVIEW: the owner asks for a review.
# - IN_REVIEW → DRAFT: the reviewer sends it back (or the owner withdraws it).
# - IN_REVIEW → TRUSTED: the reviewer accepts it.
# - TRUSTED → IN_REVIEW: a new concern reopens the review; trust is never revoked silently.
# A new version always starts as DRAFT: trust belongs to content, not to a name.
_REVIEW_EDGES: dict[Review, frozenset[Review]] = {
    Review.DRAFT: frozenset({Review.IN_REVIEW}),
    Review.IN_REVIEW: frozenset({Review.DRAFT, Review.TRUSTED}),
    Review.TRUSTED: frozenset({Review.IN_REVIEW}),
}

# A tombstone is final; a deprecation can be taken back.
_STATUS_EDGES: dict[Status, frozenset[Status]] = {
    Status.ACTIVE: frozenset({Status.DEPRECATED, Status.DELETED}),
    Status.DEPRECATED: frozenset({Status.ACTIVE, Status.DELETED}),
    Status.DELETED: frozenset(),
}


def validate_review_transition(current: Review, target: Review) -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is a legal review step."""
    if target not in _REVIEW_EDGES[current]:
        raise InvalidTransition(f"a review cannot go from {current} to {target}")


def validate_status_transition(current: Status, target: Status) -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is a legal status change."""
    if target not in _STATUS_EDGES[current]:
        raise InvalidTransition(f"an environment cannot go from {current} to {target}")
