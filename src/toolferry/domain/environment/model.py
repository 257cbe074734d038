"""The Environment: one published, immutable version, and its bookkeeping as new frozen objects."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime

from toolferry.domain.environment.access import Permissions
from toolferry.domain.environment.checks import check_aware, clean_opt_text, clean_text, set_field
from toolferry.domain.environment.classification import Classification
from toolferry.domain.environment.content import ContentInfo
from toolferry.domain.environment.interface import ToolInterface
from toolferry.domain.environment.vocabulary import (
    KIND_CONTENT_TYPES,
    Action,
    ImageType,
    Kind,
    Review,
    Status,
    validate_review_transition,
    validate_status_transition,
)
from toolferry.domain.errors import InvalidTask, InvalidTransition

_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
# OCI distribution repository names: lower-case components joined by '/'.
_ENV_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_BASE = re.compile(r"(?P<name>[^:]+):(?P<version>[1-9][0-9]*)")


def check_digest(digest: str, where: str = "digest") -> None:
    if not _DIGEST.fullmatch(digest):
        raise InvalidTask(where, f"{digest!r} is not 'sha256:<64 hex>' or 'sha512:<128 hex>'")


def parse_base(base: str) -> tuple[str, int]:
    """``"name:version"`` → ``(name, version)``."""
    match = _BASE.fullmatch(base)
    if not match or not _ENV_NAME.fullmatch(match["name"]):
        raise InvalidTask("base", f"{base!r} is not '<name>:<version>'")
    return match["name"], int(match["version"])


def _image_type_of(kind: Kind) -> ImageType:
    return ImageType.DECLARATIVE if kind is Kind.RECIPE else ImageType.IMPLICIT


@dataclass(frozen=True, kw_only=True)
class Environment:
    """One published version of a catalogue environment."""

    id: str  # ViCE image_id: unique per version
    name: str
    version: int
    kind: Kind
    digest: str  # of the published content (OCI manifest, disk file, SIF, recipe)
    classification: Classification
    created: datetime
    updated: datetime
    owner_id: str
    group_id: str | None = None
    permissions: Permissions = field(default_factory=Permissions)
    base: str | None = None  # ViCE base_image, as "name:version"
    status: Status = Status.ACTIVE
    review: Review = Review.DRAFT
    ratings: tuple[int, ...] = ()
    total_exports: int = 0
    active_deployments: int = 0
    interface: ToolInterface | None = None
    content: ContentInfo | None = None

    def __post_init__(self) -> None:
        set_field(self, "id", clean_text(self.id, "id"))
        if any(c.isspace() for c in self.id):
            raise InvalidTask("id", "must not contain white space")
        if not _ENV_NAME.fullmatch(self.name):
            raise InvalidTask(
                "name", f"{self.name!r} must be lower-case letters and digits joined by . _ - /"
            )
        if isinstance(self.version, bool) or self.version < 1:
            raise InvalidTask("version", "must be an integer of at least 1")
        check_digest(self.digest)
        allowed = KIND_CONTENT_TYPES[self.kind]
        if self.classification.content_type not in allowed:
            raise InvalidTask(
                "classification.content_type",
                f"{self.classification.content_type!r} does not fit kind {self.kind}; use one of "
                + ", ".join(sorted(allowed)),
            )
        image_type = self.classification.image_type
        if image_type is not None and image_type is not _image_type_of(self.kind):
            raise InvalidTask(
                "classification.image_type",
                f"{image_type} does not fit kind {self.kind}; use {_image_type_of(self.kind)}",
            )
        if self.base is not None:
            base_name, base_version = parse_base(self.base)
            if base_name == self.name and base_version >= self.version:
                raise InvalidTask("base", f"{self.base!r} must be an earlier version")
        check_aware(self.created, "created")
        check_aware(self.updated, "updated")
        if self.updated < self.created:
            raise InvalidTask("updated", "must not be before 'created'")
        set_field(self, "owner_id", clean_text(self.owner_id, "owner_id"))
        set_field(self, "group_id", clean_opt_text(self.group_id, "group_id"))
        set_field(self, "ratings", tuple(self.ratings))
        for i, rating in enumerate(self.ratings):
            _check_rating(rating, f"ratings[{i}]")
        for name in ("total_exports", "active_deployments"):
            value = getattr(self, name)
            if isinstance(value, bool) or value < 0:
                raise InvalidTask(name, "must be an integer of at least 0")

    @property
    def ref(self) -> str:
        """``"name:version"``, the form a later version's ``base`` takes."""
        return f"{self.name}:{self.version}"

    @property
    def runnable(self) -> bool:
        return self.status is not Status.DELETED

    @property
    def average_rating(self) -> float | None:
        return sum(self.ratings) / len(self.ratings) if self.ratings else None

    def allows(self, *, user: str, groups: Collection[str], action: Action) -> bool:
        """Permissions, then the tombstone rule: a deleted entry can only be read."""
        if action is not Action.READ and not self.runnable:
            return False
        return self.permissions.allows(
            user=user, groups=groups, owner=self.owner_id, group=self.group_id, action=action
        )

    # Bookkeeping: each returns a new object; the content stays as published.

    def with_rating(self, rating: int) -> Environment:
        _check_rating(rating, "rating")
        return replace(self, ratings=(*self.ratings, rating))

    def with_export(self) -> Environment:
        return replace(self, total_exports=self.total_exports + 1)

    def with_active_deployments(self, count: int) -> Environment:
        return replace(self, active_deployments=count)

    def with_status(self, status: Status, *, now: datetime) -> Environment:
        validate_status_transition(self.status, status)
        return replace(self, status=status, updated=now)

    def deprecate(self, *, now: datetime) -> Environment:
        return self.with_status(Status.DEPRECATED, now=now)

    def delete(self, *, now: datetime) -> Environment:
        """A tombstone: listed and readable, never run, never undeleted."""
        return self.with_status(Status.DELETED, now=now)

    def with_review(self, review: Review, *, now: datetime) -> Environment:
        validate_review_transition(self.review, review)
        return replace(self, review=review, updated=now)

    def with_access(
        self,
        *,
        now: datetime,
        owner_id: str | None = None,
        group_id: str | None = None,
        permissions: Permissions | None = None,
    ) -> Environment:
        return replace(
            self,
            owner_id=self.owner_id if owner_id is None else owner_id,
            group_id=self.group_id if group_id is None else group_id,
            permissions=self.permissions if permissions is None else permissions,
            updated=now,
        )

    def next_version(
        self,
        *,
        id: str,
        now: datetime,
        digest: str | None = None,
        kind: Kind | None = None,
        classification: Classification | None = None,
        interface: ToolInterface | None = None,
        drop_interface: bool = False,
    ) -> Environment:
        """Version + 1 with ``base`` pointing here: status active, review draft, no ratings or
        counters, fresh timestamps; access is inherited. Unchanged content is carried over."""
        if not self.runnable:
            raise InvalidTransition(f"{self.ref} is deleted; no new version can follow it")
        return Environment(
            id=id,
            name=self.name,
            version=self.version + 1,
            kind=self.kind if kind is None else kind,
            digest=self.digest if digest is None else digest,
            classification=self.classification if classification is None else classification,
            interface=None if drop_interface else (interface or self.interface),
            created=now,
            updated=now,
            owner_id=self.owner_id,
            group_id=self.group_id,
            permissions=self.permissions,
            base=self.ref,
        )


def _check_rating(rating: int, where: str) -> None:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidTask(where, f"{rating!r} is not an integer from 1 to 5")
