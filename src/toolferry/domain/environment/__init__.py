"""Catalogue environments: the ViCE classification, versions, access, trust and a tool interface.

An :class:`Environment` is one published version of an OCI image, a recipe, a VM disk or an
Apptainer SIF. Its content (name, kind, digest, classification, interface) never changes: a
change is :meth:`Environment.next_version`. Only bookkeeping changes in place, and always as a
new frozen object from a named method: status, review, access, ratings and counters.

Field names follow the ViCE registry's tables I-III (``specs/vice-classification.md``):
table I's version-level fields live on :class:`Environment` (``image_id`` is ``id``,
``base_image`` is ``base``), the rest on :class:`Classification`.

Every constructor validates and normalises (trimmed strings, tuples, canonical CPU
architectures); bad input raises :class:`InvalidTask` naming the field by its dotted path.
"""

from toolferry.domain.environment.access import Access, Permissions
from toolferry.domain.environment.classification import Classification
from toolferry.domain.environment.codec import environment_from_dict, environment_to_dict
from toolferry.domain.environment.content import ContentInfo
from toolferry.domain.environment.hardware import (
    CPU_ARCHITECTURES,
    Hardware,
    normalise_architecture,
)
from toolferry.domain.environment.interface import (
    Parameter,
    ToolFile,
    ToolInterface,
    placeholders,
    render_token,
)
from toolferry.domain.environment.model import Environment, check_digest, parse_base
from toolferry.domain.environment.vocabulary import (
    KIND_CONTENT_TYPES,
    Action,
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
    validate_review_transition,
    validate_status_transition,
)

__all__ = [
    "CPU_ARCHITECTURES",
    "KIND_CONTENT_TYPES",
    "Access",
    "Action",
    "Classification",
    "ContentInfo",
    "ContentType",
    "Environment",
    "ExecutionType",
    "Hardware",
    "ImageType",
    "Kind",
    "ManagementLayer",
    "Parameter",
    "Permissions",
    "ResourceProfile",
    "Review",
    "RuntimeTechnology",
    "Status",
    "ToolFile",
    "ToolInterface",
    "UserInteraction",
    "UserInterface",
    "check_digest",
    "environment_from_dict",
    "environment_to_dict",
    "normalise_architecture",
    "parse_base",
    "placeholders",
    "render_token",
    "validate_review_transition",
    "validate_status_transition",
]
