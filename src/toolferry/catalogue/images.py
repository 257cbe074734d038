"""Executor images that name catalogue entries, resolved and pinned at submission.

An executor's ``image`` names a catalogue entry when it is

* ``catalogue:NAME:VERSION``, ``catalogue:NAME`` (the latest runnable version),
  ``catalogue:NAME@sha256:...`` or ``catalogue:sha256:...`` (explicit: an unknown entry is an
  error), or
* ``NAME:VERSION`` with a whole-number version naming an entry the caller owns or that
  reviewers trusted, or the bare digest ``sha256:...`` of an entry (implicit: anything else is
  an ordinary image reference, so nobody can take over an image name others use by
  publishing an entry of that name).

The executor then runs the entry's content pinned by digest, and the task records which entry
(name, version, digest) each executor ran. Ordinary images that would reach catalogue content
around these checks (the images the catalogue loads into the engine, its registry's
repositories) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from toolferry.catalogue.service import CatalogueService
from toolferry.domain.environment import Action, Environment, Kind, Review
from toolferry.domain.errors import InvalidTask, NotFound
from toolferry.domain.task import EnvironmentUse, TaskSpec
from toolferry.security.identity import Identity

__all__ = [
    "PREFIX",
    "REVIEW_ORDER",
    "ImageResolver",
    "ReservedImage",
    "RunnableImage",
    "pinned_location",
]

PREFIX = "catalogue:"
REVIEW_ORDER = (Review.DRAFT, Review.IN_REVIEW, Review.TRUSTED)
_NAME_VERSION = re.compile(r"(?P<name>[a-z0-9][a-z0-9._/-]*):(?P<version>[1-9][0-9]{0,8})")
_NAME_DIGEST = re.compile(r"(?P<name>[a-z0-9][a-z0-9._/-]*)@(?P<digest>sha(256|512):[0-9a-f]+)")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_NAME = re.compile(r"[a-z0-9][a-z0-9._/-]*")

# The entry → the image reference the site's container runtime runs (pinned by digest);
# raises InvalidTask (its field is replaced by the executor's) when it cannot be run here.
RunnableImage = Callable[[Environment], str]
# An ordinary executor image → why it may not be used (it is catalogue content), or None.
ReservedImage = Callable[[str], str | None]


def pinned_location(env: Environment) -> str:
    """The entry's registry location when it is pinned to the entry's digest."""
    location = env.classification.location
    if location and location.endswith("@" + env.digest) and "://" not in location:
        return location
    raise InvalidTask("image", f"{env.ref} has no registry location pinned to {env.digest}")


class ImageResolver:
    def __init__(
        self,
        catalogue: CatalogueService,
        runnable_image: RunnableImage,
        *,
        require_review: Review = Review.DRAFT,
        reserved: ReservedImage | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._runnable_image = runnable_image
        self._require_review = require_review
        self._reserved = reserved

    def resolve(self, spec: TaskSpec, who: Identity) -> TaskSpec:
        """``spec`` with every executor image that names an entry replaced by the entry's
        pinned image, and the entries recorded; raises :class:`InvalidTask` naming the
        executor when an entry is missing, unreadable, deleted, not runnable or not reviewed
        enough for this site."""
        executors = list(spec.executors)
        uses: list[EnvironmentUse] = []
        for i, executor in enumerate(spec.executors):
            field = f"executors[{i}].image"
            env = self._lookup(executor.image.strip(), who, field)
            if env is None:
                why = self._reserved(executor.image.strip()) if self._reserved else None
                if why:
                    raise InvalidTask(field, why)
                continue
            self._check(env, who, field)
            try:
                image = self._runnable_image(env)
            except InvalidTask as exc:
                raise InvalidTask(field, exc.message) from None
            except NotFound as exc:
                raise InvalidTask(field, f"the content of {env.ref} is missing: {exc}") from None
            executors[i] = replace(executor, image=image)
            uses.append(
                EnvironmentUse(
                    executor=i, requested=executor.image, entry=env.ref, digest=env.digest
                )
            )
        if not uses:
            return spec
        return replace(spec, executors=tuple(executors), environments=tuple(uses))

    def _lookup(self, image: str, who: Identity, field: str) -> Environment | None:
        explicit = image.startswith(PREFIX)
        target = image[len(PREFIX) :] if explicit else image
        try:
            if _DIGEST.fullmatch(target):
                return self._by_digest(target, None, who, explicit, field)
            if match := _NAME_DIGEST.fullmatch(target):
                return self._by_digest(match["digest"], match["name"], who, explicit, field)
            if match := _NAME_VERSION.fullmatch(target):
                if not explicit:
                    return self._implicit(match["name"], int(match["version"]), who)
                return self._catalogue.get(match["name"], int(match["version"]), who)
            if explicit and _NAME.fullmatch(target):
                return self._catalogue.latest_runnable(target, who)
        except NotFound as exc:
            raise InvalidTask(field, f"{exc}; find entries with `toolferry env search`") from None
        if explicit:
            raise InvalidTask(
                field,
                f"{image!r} is not 'catalogue:NAME', 'catalogue:NAME:VERSION', "
                "'catalogue:NAME@sha256:...' or 'catalogue:sha256:...'",
            )
        return None

    def _implicit(self, name: str, version: int, who: Identity) -> Environment | None:
        """A bare ``NAME:VERSION`` is an entry only if the caller owns it or reviewers trust
        it; otherwise it stays the ordinary image reference it also is."""
        try:
            env = self._catalogue.get(name, version, who)
        except NotFound:
            return None
        return env if env.owner_id == who.user or env.review is Review.TRUSTED else None

    def _by_digest(
        self, digest: str, name: str | None, who: Identity, explicit: bool, field: str
    ) -> Environment | None:
        found = self._catalogue.by_digest(digest, who, name=name)
        if found is None and explicit:
            where = f"{name}@" if name else ""
            raise InvalidTask(field, f"no catalogue entry {where}{digest} that you may read")
        return found

    def _check(self, env: Environment, who: Identity, field: str) -> None:
        if not env.runnable:
            raise InvalidTask(field, f"{env.ref} is deleted (a tombstone) and never runs again")
        if not (who.admin or env.allows(user=who.user, groups=who.groups, action=Action.RUN)):
            raise InvalidTask(field, f"you may not run {env.ref}")
        if env.kind is Kind.RECIPE:
            raise InvalidTask(
                field, f"{env.ref} is a recipe: build it into an image first (toolferry env build)"
            )
        if env.kind is not Kind.OCI_IMAGE:
            raise InvalidTask(
                field,
                f"{env.ref} is a {env.kind}; executors on this site run OCI container images",
            )
        if REVIEW_ORDER.index(env.review) < REVIEW_ORDER.index(self._require_review):
            raise InvalidTask(
                field,
                f"this site runs only environments reviewed as {self._require_review} or "
                f"better; {env.ref} is {env.review}",
            )
