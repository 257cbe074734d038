"""Annotated images: an environment document filled from an image's labels and config.

GEF asked for "annotated images": the metadata travels inside the image. toolferry reads

* the OCI pre-defined keys (``org.opencontainers.image.title``, ``description``, ``source``,
  ``url``, ``documentation``, ``created``, ``version``, ``vendor``, ``licenses``), and their
  Label Schema predecessors (``org.label-schema.*``) when the OCI key is absent;
* its own namespace ``toolferry.``: ``toolferry.<field>`` for any field of the ViCE
  classification (``toolferry.community``, ``toolferry.software_packages``,
  ``toolferry.minimal_hardware``, ...; lists as JSON lists or comma-separated, hardware as a
  JSON object) and ``toolferry.interface`` (the tool interface as JSON);
* the image config: OS, architecture, variant and creation time.

A ``toolferry.`` label that names no field, or a value the classification refuses, is a 400
naming the label: an image is never half-read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from toolferry.domain.environment import Classification, normalise_architecture
from toolferry.domain.errors import InvalidTask

__all__ = ["NAMESPACE", "ImageFacts", "document_from_image", "merge_documents"]

NAMESPACE = "toolferry."
_OCI = "org.opencontainers.image."
_SCHEMA = "org.label-schema."
# OCI key → its Label Schema equivalent (the compatible ones of the OCI annotations spec).
_COMPATIBLE = {
    "created": "build-date",
    "url": "url",
    "source": "vcs-url",
    "version": "version",
    "revision": "vcs-ref",
    "vendor": "vendor",
    "title": "name",
    "description": "description",
    "documentation": "usage",
}
_LIST_FIELDS = frozenset(
    {
        "community",
        "purpose",
        "content_refs",
        "operating_system",
        "software_packages",
        "service_dependencies",
    }
)
_HARDWARE_FIELDS = frozenset({"virtual_hardware", "environment_hardware", "minimal_hardware"})
# Set from what the image is, not from labels.
_NOT_FROM_LABELS = frozenset({"content_type", "image_type", "location", "checksum"})
_CLASSIFICATION_FIELDS = frozenset(f.name for f in fields(Classification)) - _NOT_FROM_LABELS


class ImageFacts:
    """What an importer knows of an image, whichever store it came from."""

    def __init__(
        self,
        *,
        labels: Mapping[str, str],
        os: str | None,
        architecture: str | None,
        variant: str | None = None,
        created: datetime | None = None,
        size: int | None = None,
        media_type: str | None = None,
    ) -> None:
        self.labels = dict(labels)
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.created = created
        self.size = size
        self.media_type = media_type


def _oci(labels: Mapping[str, str], key: str) -> str | None:
    value = labels.get(_OCI + key)
    if value is None and key in _COMPATIBLE:
        value = labels.get(_SCHEMA + _COMPATIBLE[key])
    return value.strip() if value and value.strip() else None


def _list_value(label: str, text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidTask(f"labels.{label}", f"is not a JSON list: {exc.msg}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidTask(f"labels.{label}", "must be a JSON list of strings")
        return value
    return [part.strip() for part in stripped.split(",") if part.strip()]


def _object_value(label: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidTask(f"labels.{label}", f"is not a JSON object: {exc.msg}") from None
    if not isinstance(value, dict):
        raise InvalidTask(f"labels.{label}", "must be a JSON object")
    return value


def _namespace_fields(labels: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    classification: dict[str, Any] = {}
    interface: dict[str, Any] | None = None
    for label, text in sorted(labels.items()):
        if not label.startswith(NAMESPACE):
            continue
        key = label[len(NAMESPACE) :]
        if key == "interface":
            interface = _object_value(label, text)
        elif key in _LIST_FIELDS:
            classification[key] = _list_value(label, text)
        elif key in _HARDWARE_FIELDS:
            classification[key] = _object_value(label, text)
        elif key in _CLASSIFICATION_FIELDS:
            classification[key] = text.strip()
        else:
            known = ", ".join(sorted({*_CLASSIFICATION_FIELDS, "interface"}))
            raise InvalidTask(f"labels.{label}", f"names no classification field; known: {known}")
    return classification, interface


def document_from_image(facts: ImageFacts, *, fallback_title: str) -> dict[str, Any]:
    """The parts of an environment document an image says about itself: ``classification``,
    ``content`` and, when labelled, ``interface`` (no name, kind, digest or version)."""
    labels = facts.labels
    classification: dict[str, Any] = {
        "title": _oci(labels, "title") or fallback_title,
        "content_type": "oci",
        "image_type": "implicit",
        "runtime_technology": "container",
    }
    description = _oci(labels, "description")
    if description:
        classification["description"] = description
    refs = [_oci(labels, key) for key in ("source", "url", "documentation")]
    if any(refs):
        classification["content_refs"] = list(dict.fromkeys(r for r in refs if r))
    if facts.os:
        classification["operating_system"] = [facts.os]
    if facts.architecture:
        try:
            arch = normalise_architecture(facts.architecture)
        except InvalidTask:
            arch = None  # an architecture we do not classify: leave it to the platform field
        if arch:
            classification["environment_hardware"] = {"cpu_architecture": arch}
    named, interface = _namespace_fields(labels)
    classification |= named
    content: dict[str, Any] = {}
    if facts.media_type:
        content["media_type"] = facts.media_type
    if facts.size is not None:
        content["size_bytes"] = facts.size
    if facts.created is not None:
        content["created"] = facts.created.isoformat()
    if facts.os and facts.architecture:
        parts = [facts.os, facts.architecture, *([facts.variant] if facts.variant else [])]
        content["platform"] = "/".join(p.lower() for p in parts)
    document: dict[str, Any] = {"classification": classification, "content": content}
    if interface is not None:
        document["interface"] = interface
    return document


def merge_documents(base: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``base``; ``classification`` and ``content`` merge field by field, so
    a user adds to or corrects what the image says without repeating the rest."""
    merged = dict(base)
    for key, value in given.items():
        inner = merged.get(key)
        if key in ("classification", "content") and isinstance(value, Mapping):
            merged[key] = {**(inner if isinstance(inner, Mapping) else {}), **value}
        else:
            merged[key] = value
    return merged
