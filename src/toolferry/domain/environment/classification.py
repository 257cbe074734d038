"""The ViCE classification of an environment (tables I-III without version bookkeeping)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolferry.domain.environment.checks import clean_opt_text, clean_text, clean_texts, set_field
from toolferry.domain.environment.hardware import Hardware
from toolferry.domain.environment.vocabulary import (
    ContentType,
    ExecutionType,
    ImageType,
    ManagementLayer,
    ResourceProfile,
    RuntimeTechnology,
    UserInteraction,
    UserInterface,
)
from toolferry.domain.errors import InvalidTask

_CHECKSUM = re.compile(
    r"(md5:[0-9a-f]{32}|sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})"
)


@dataclass(frozen=True, kw_only=True)
class Classification:
    """ViCE tables I-III without the version bookkeeping (that is on :class:`Environment`)."""

    # Table I, general metadata
    title: str
    description: str = ""
    community: tuple[str, ...] = ()
    purpose: tuple[str, ...] = ()
    # Table II, origin metadata
    content_type: ContentType
    runtime_technology: RuntimeTechnology | None = None
    runtime_implementation: str | None = None  # e.g. "docker 26.1"
    management_layer: ManagementLayer | None = None
    management_implementation: str | None = None  # e.g. "slurm 23.11"
    location: str | None = None
    image_type: ImageType | None = None
    content_refs: tuple[str, ...] = ()
    checksum: str | None = None  # "<md5|sha1|sha256|sha512>:<hex>", as the origin gave it
    virtual_hardware: Hardware | None = None
    environment_hardware: Hardware | None = None
    resource_profile: ResourceProfile | None = None
    minimal_hardware: Hardware | None = None
    # Table III, semantic metadata
    execution_type: ExecutionType | None = None
    user_interaction: UserInteraction | None = None
    user_interface: UserInterface | None = None
    operating_system: tuple[str, ...] = ()
    software_packages: tuple[str, ...] = ()
    service_dependencies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_field(self, "title", clean_text(self.title, "title"))
        set_field(self, "description", clean_text(self.description, "description", required=False))
        for name in (
            "community",
            "purpose",
            "content_refs",
            "operating_system",
            "software_packages",
            "service_dependencies",
        ):
            set_field(self, name, clean_texts(getattr(self, name), name))
        for name in ("runtime_implementation", "management_implementation", "location"):
            set_field(self, name, clean_opt_text(getattr(self, name), name))
        if self.checksum is not None:
            checksum = self.checksum.strip().lower()
            if not _CHECKSUM.fullmatch(checksum):
                raise InvalidTask(
                    "checksum", f"{self.checksum!r} is not '<md5|sha1|sha256|sha512>:<hex>'"
                )
            set_field(self, "checksum", checksum)
