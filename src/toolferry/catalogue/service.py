"""The catalogue's rules over its store: who may publish, read, deprecate, delete and rate.

An entry the caller may not read answers as if it did not exist (:class:`NotFound`); one they
may read but not change answers :class:`Forbidden`. Administrators may do anything the status
rules allow. Group permissions apply to the members of the entry's group (the site's ``groups``
setting says who is in which group).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from toolferry.domain.criteria import parse_criteria
from toolferry.domain.environment import (
    Action,
    Environment,
    Review,
    Status,
    environment_from_dict,
    parse_base,
)
from toolferry.domain.errors import Forbidden, InvalidTask, InvalidTransition, NotFound
from toolferry.security.identity import Identity
from toolferry.store.environments import DuplicateVersion, EnvironmentStore

__all__ = ["HUB_FIELDS", "MAX_NAME", "RESERVED_COMPONENT", "CatalogueService"]

MAX_NAME = 255
# A name component the REST paths use ("NAME/versions/N"), so no name may hold it.
RESERVED_COMPONENT = "versions"
# Set by the hub when a version is published, never by the publisher.
HUB_FIELDS = (
    "id",
    "owner_id",
    "status",
    "review",
    "ratings",
    "total_exports",
    "active_deployments",
    "created",
    "updated",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


def _may(who: Identity, env: Environment, action: Action) -> bool:
    if who.admin:
        return action is Action.READ or env.runnable
    return env.allows(user=who.user, groups=who.groups, action=action)


class CatalogueService:
    def __init__(
        self,
        store: EnvironmentStore,
        *,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], str] = _new_id,
        deployments: Callable[[], Mapping[str, int]] | None = None,
        recipes: Callable[[Environment], str | None] | None = None,
    ) -> None:
        """``deployments``: entry ref ("name:version") → its tasks not yet ended, read live
        each time entries are shown (the ``active_deployments`` counter). ``recipes``: the
        recipe text of a recipe version, from where the artifacts are kept."""
        self._store = store
        self._recipes = recipes
        self._clock = clock
        self._new_id = new_id
        self._deployments = deployments

    def _live(self, envs: list[Environment]) -> list[Environment]:
        counts = self._deployments() if self._deployments is not None else {}
        return [env.with_active_deployments(counts.get(env.ref, 0)) for env in envs]

    # Publishing

    def register(self, document: Mapping[str, Any], who: Identity) -> Environment:
        """Publish a version from its JSON form, without the fields in :data:`HUB_FIELDS`.

        A new name starts at version 1. A known name takes the next version (given, or
        assigned when left out) and its ``base`` is the latest version (given, or set); the
        caller needs write permission on that latest version, and group and permissions are
        inherited unless given. The caller becomes the owner.
        """
        return self.publish(self.prepare(document, who))

    def prepare(self, document: Mapping[str, Any], who: Identity) -> Environment:
        """Every check of :meth:`register`, and the version it would publish, storing
        nothing: importers check a document before they copy any artifact."""
        if not isinstance(document, Mapping):
            raise InvalidTask("", "an environment must be a JSON object")
        for field in HUB_FIELDS:
            if field in document:
                raise InvalidTask(field, "is set by the hub; leave it out")
        name = document.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidTask("name", "required: a non-empty string")
        if len(name) > MAX_NAME:
            raise InvalidTask("name", f"must be at most {MAX_NAME} characters")
        if RESERVED_COMPONENT in name.split("/"):
            raise InvalidTask("name", f"the component {RESERVED_COMPONENT!r} is reserved")
        latest = self._store.latest(name)
        full = dict(document)
        if latest is None:
            full.setdefault("version", 1)
            self._check_first(full, who)
        else:
            self._check_next(full, latest, who)
        now = self._clock().isoformat()
        full |= {"id": self._new_id(), "owner_id": who.user, "created": now, "updated": now}
        return environment_from_dict(full)

    def publish(self, env: Environment) -> Environment:
        """Store a version :meth:`prepare` made (a 409 when its version was taken since)."""
        self._store.add(env)
        return env

    def _check_first(self, full: dict[str, Any], who: Identity) -> None:
        version = full["version"]
        if isinstance(version, int) and not isinstance(version, bool) and version != 1:
            raise InvalidTask("version", f"{full['name']} is new: its first version is 1")
        base = full.get("base")
        if isinstance(base, str):
            base_name, base_version = parse_base(base)
            found = self._store.get(base_name, base_version)
            if found is None or not _may(who, found, Action.READ):
                raise InvalidTask("base", f"no environment {base}")

    def _check_next(self, full: dict[str, Any], latest: Environment, who: Identity) -> None:
        if not _may(who, latest, Action.READ):
            raise Forbidden(f"the name {latest.name} is taken by another owner")
        if not latest.runnable:
            raise InvalidTransition(f"{latest.ref} is deleted; no new version can follow it")
        if not _may(who, latest, Action.WRITE):
            raise Forbidden(
                f"only who may change {latest.ref} may publish the next version of {latest.name}"
            )
        version = full.setdefault("version", latest.version + 1)
        if isinstance(version, int) and not isinstance(version, bool):
            if version <= latest.version:
                raise DuplicateVersion(f"{latest.name}:{version}")
            if version != latest.version + 1:
                raise InvalidTask(
                    "version", f"must be {latest.version + 1}, the next after {latest.ref}"
                )
        base = full.setdefault("base", latest.ref)
        if isinstance(base, str) and base != latest.ref:
            # A branch in the lineage (e.g. an image built from an older recipe version).
            base_name, base_version = parse_base(base)
            if base_name != latest.name or self._store.get(base_name, base_version) is None:
                raise InvalidTask(
                    "base", f"must be an existing version of {latest.name} (default {latest.ref})"
                )
        full.setdefault("group_id", latest.group_id)
        full.setdefault("permissions", str(latest.permissions))

    # Reading

    def get(self, name: str, version: int | None, who: Identity) -> Environment:
        """The given version, or the latest one the caller may read."""
        if version is None:
            readable = self.versions(name, who)
            return readable[-1]
        env = self._store.get(name, version)
        if env is None or not _may(who, env, Action.READ):
            raise NotFound(f"no environment {name}:{version}")
        return self._live([env])[0]

    def versions(self, name: str, who: Identity) -> list[Environment]:
        """The versions of ``name`` the caller may read, oldest first; deleted ones included."""
        found = [env for env in self._store.versions(name) if _may(who, env, Action.READ)]
        if not found:
            raise NotFound(f"no environment {name}")
        return self._live(found)

    def recipe(self, env: Environment) -> str | None:
        """The Dockerfile/Containerfile of a recipe version the caller has read (None for
        other kinds). Cheap for other kinds; recipes are read once and remembered."""
        return self._recipes(env) if self._recipes is not None else None

    def count_export(self, env: Environment) -> Environment:
        """One more export of ``env`` (``total_exports``)."""
        return self._store.change(env.name, env.version, lambda e: e.with_export())

    def knows(self, name: str, who: Identity) -> bool:
        """Whether the caller may read some version of ``name``."""
        return any(_may(who, env, Action.READ) for env in self._store.versions(name))

    def latest_runnable(self, name: str, who: Identity) -> Environment:
        """The newest version of ``name`` that is not deleted and the caller may read."""
        for env in reversed(self.versions(name, who)):
            if env.runnable:
                return env
        raise NotFound(f"every version of {name} is deleted")

    def by_digest(
        self, digest: str, who: Identity, *, name: str | None = None
    ) -> Environment | None:
        """The newest readable version with this content digest (of ``name`` when given)."""
        pool = self._store.versions(name) if name is not None else self._store.list()
        found = [e for e in pool if e.digest == digest and _may(who, e, Action.READ)]
        return self._live([found[-1]])[0] if found else None

    def search(
        self, query: str | None, who: Identity, *, include_deleted: bool = False
    ) -> list[Environment]:
        """What the caller may read that matches the criteria ``query`` (everything when it is
        empty), by name then version; deleted versions only when asked."""
        criteria = parse_criteria(query) if query and query.strip() else None
        return self._live(
            [
                env
                for env in self._store.list()
                if (include_deleted or env.runnable)
                and _may(who, env, Action.READ)
                and (criteria is None or criteria.matches(env))
            ]
        )

    # Bookkeeping

    def deprecate(self, name: str, version: int, who: Identity) -> Environment:
        """Still runnable, but new work should move to a newer version."""
        return self._change(name, version, who, lambda env: env.deprecate(now=self._clock()))

    def delete(self, name: str, version: int, who: Identity) -> Environment:
        """A tombstone: listed and readable, never run again."""
        return self._change(name, version, who, lambda env: env.delete(now=self._clock()))

    def review(self, name: str, version: int, review: Review, who: Identity) -> Environment:
        """Move the review: whoever may change the entry asks for a review (draft → in-review)
        or withdraws it; only reviewers (administrators) accept it as trusted, send it back,
        or reopen a trusted one."""

        def reviewed(env: Environment) -> Environment:
            if not _may(who, env, Action.READ):
                raise NotFound(f"no environment {name}:{version}")
            if not env.runnable:
                raise InvalidTransition(f"{env.ref} is deleted; its review is closed")
            owner_steps = {(Review.DRAFT, Review.IN_REVIEW), (Review.IN_REVIEW, Review.DRAFT)}
            if not who.admin:
                if (env.review, review) not in owner_steps:
                    raise Forbidden(f"only a reviewer (an administrator) may set {review}")
                if not _may(who, env, Action.WRITE):
                    raise Forbidden(f"you may read {env.ref} but not change it")
            return env.with_review(review, now=self._clock())

        return self._store.change(name, version, reviewed)

    def rate(self, name: str, version: int, rating: int, who: Identity) -> Environment:
        """Add a rating from 1 to 5; anyone who may read the version may rate it."""

        def rated(env: Environment) -> Environment:
            if not _may(who, env, Action.READ):
                raise NotFound(f"no environment {name}:{version}")
            if env.status is Status.DELETED:
                raise InvalidTransition(f"{env.ref} is deleted; it cannot be rated")
            return env.with_rating(rating)

        return self._store.change(name, version, rated)

    def _change(
        self,
        name: str,
        version: int,
        who: Identity,
        how: Callable[[Environment], Environment],
    ) -> Environment:
        def checked(env: Environment) -> Environment:
            if not _may(who, env, Action.READ):
                raise NotFound(f"no environment {name}:{version}")
            if env.runnable and not _may(who, env, Action.WRITE):
                raise Forbidden(f"you may read {env.ref} but not change it")
            return how(env)  # a deleted entry fails here: its status is final

        try:
            return self._store.change(name, version, checked)
        except NotFound:
            raise NotFound(f"no environment {name}:{version}") from None
