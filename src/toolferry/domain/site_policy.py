"""A data site's datasets and policy, ``dataset://`` URLs, and every reason a site refuses a task.

A data partner declares its datasets and decides who and what may touch them; the site's agent
enforces that with :func:`check_task` before a task runs, and :func:`outputs_within` before its
outputs leave. Each :class:`Refusal` names the task field at fault and says what would pass.

The rules, each applied only when the site configures it (nothing configured = allowed):

- images: an executor's image passes if its digest is listed, or its catalogue publisher is,
  or its catalogue entry is reviewed at least ``minimum_review``. With any image rule set the
  image must be pinned (``image@sha256:...``): a tag can move after the check.
- users: ``allowed_users`` / ``allowed_groups``.
- datasets: a ``dataset://`` input must name this site, one of its datasets, and one the user may
  use. A dataset with no users and no groups is closed to everyone; ``"*"`` opens it to every
  user. Hub admins get nothing here: only the site's own lists grant access to its data.
- a task that reads a dataset runs without network; no output may be written to a dataset.
- resources: cores, memory and disk at most the site's caps.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

from toolferry.domain.environment.model import check_digest
from toolferry.domain.environment.vocabulary import Review
from toolferry.domain.errors import InvalidTask
from toolferry.domain.task import TaskSpec

__all__ = [
    "EVERYONE",
    "SCHEME",
    "BadDatasetUrl",
    "Caller",
    "Dataset",
    "DatasetUrl",
    "ImageFacts",
    "Refusal",
    "SitePolicy",
    "check_dataset_name",
    "check_site_name",
    "check_task",
    "is_dataset_url",
    "outputs_within",
    "pinned_digest",
]

SCHEME = "dataset"
EVERYONE = "*"  # in a dataset's ``users``: every user the hub authenticates

# A site name is what the hub enrols (a DNS-label-like word); a dataset name is one URL path
# segment that never needs escaping.
_SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_DATASET_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")
_PINNED = re.compile(r"@(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_REVIEW_ORDER = (Review.DRAFT, Review.IN_REVIEW, Review.TRUSTED)
_PARAMS = "resources.backend_parameters"


def check_site_name(name: str, where: str = "name") -> str:
    """``name`` if a site may be called so, else :class:`InvalidTask` saying why."""
    return _check_name(name, where, _SITE_NAME, "1 to 63 lower-case letters, digits or '-'")


def check_dataset_name(name: str, where: str = "name") -> str:
    """``name`` if a dataset may be called so, else :class:`InvalidTask` saying why."""
    return _check_name(
        name,
        where,
        _DATASET_NAME,
        "1 to 63 lower-case letters, digits, '.', '_' or '-', starting and ending with a "
        "letter or digit",
    )


def _check_name(name: str, where: str, pattern: re.Pattern[str], rule: str) -> str:
    if isinstance(name, str) and pattern.fullmatch(name):
        return name
    hint = " (lower case only)" if isinstance(name, str) and pattern.fullmatch(name.lower()) else ""
    raise InvalidTask(where, f"{name!r} is not a name: {rule}{hint}")


class Caller(Protocol):
    """Who submitted the task (``toolferry.security.identity.Identity`` fits)."""

    @property
    def user(self) -> str: ...

    @property
    def groups(self) -> Collection[str]: ...


# --- dataset:// URLs ---------------------------------------------------------------------------


class BadDatasetUrl(ValueError):
    """A string that is not a well-formed ``dataset://SITE/DATASET/path``; the message says why."""


def _check_segment(segment: str, url: str) -> None:
    if segment in ("", ".", ".."):
        what = "an empty path segment ('//')" if not segment else f"a {segment!r} path segment"
        raise BadDatasetUrl(f"{url}: has {what}; name files inside the dataset directly")
    if "/" in segment:
        raise BadDatasetUrl(f"{url}: a path segment may not hold an encoded '/' (%2F)")
    if "\0" in segment:
        raise BadDatasetUrl(f"{url}: contains a NUL character")


@dataclass(frozen=True)
class DatasetUrl:
    """``dataset://SITE/DATASET/path``: ``path`` is relative to the dataset's root, decoded,
    ``""`` for the root itself; it never holds ``.``, ``..`` or empty segments."""

    site: str
    dataset: str
    path: str = ""

    def __post_init__(self) -> None:
        shown = f"{SCHEME}://{self.site}/{self.dataset}" + (f"/{self.path}" if self.path else "")
        for value, what, check in (
            (self.site, "site", check_site_name),
            (self.dataset, "dataset", check_dataset_name),
        ):
            try:
                check(value, what)
            except InvalidTask as exc:
                raise BadDatasetUrl(f"{shown}: the {what} {exc.message}") from None
        if self.path:
            for segment in self.path.split("/"):
                _check_segment(segment, shown)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/")) if self.path else ()

    def __str__(self) -> str:
        base = f"{SCHEME}://{self.site}/{self.dataset}"
        return f"{base}/{quote(self.path, safe='/')}" if self.path else base

    @classmethod
    def parse(cls, url: str) -> DatasetUrl:
        """The parts of ``url``; :class:`BadDatasetUrl` names what is missing or wrong."""
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            raise BadDatasetUrl(
                f"{url!r}: contains white space or a control character; percent-encode it"
            )
        parts = urlsplit(url)
        if parts.scheme != SCHEME:
            raise BadDatasetUrl(f"{url}: is not a {SCHEME}:// URL")
        if "?" in url or "#" in url:
            raise BadDatasetUrl(
                f"{url}: a dataset URL has no query or fragment; percent-encode '?' and '#' "
                "in file names"
            )
        if "@" in parts.netloc or ":" in parts.netloc:
            raise BadDatasetUrl(f"{url}: a dataset URL names a site, not a user or a port")
        if _BAD_ESCAPE.search(url):
            raise BadDatasetUrl(f"{url}: has a '%' not followed by two hex digits; write '%25'")
        if not parts.netloc:
            raise BadDatasetUrl(f"{url}: names no site; write {SCHEME}://SITE/DATASET/path")
        segments = parts.path.split("/")[1:]  # the path starts with '/' after a host
        if segments and segments[-1] == "" and len(segments) > 1:
            segments.pop()  # a trailing '/' (a directory) is allowed
        if not segments or not segments[0]:
            raise BadDatasetUrl(f"{url}: names no dataset; write {SCHEME}://SITE/DATASET/path")
        try:
            decoded = [unquote(s, errors="strict") for s in segments]
            site = unquote(parts.netloc, errors="strict")
        except UnicodeDecodeError:
            raise BadDatasetUrl(f"{url}: is not UTF-8 once percent-decoded") from None
        for segment in decoded[1:]:
            _check_segment(segment, url)
        return cls(site, decoded[0], "/".join(decoded[1:]))


def is_dataset_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme == SCHEME


# --- the site's datasets and policy ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """One dataset of a site. ``path`` never leaves the site: the hub sees :meth:`metadata`."""

    name: str
    path: PurePosixPath
    description: str = ""
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        check_dataset_name(self.name)
        if not self.path.is_absolute():
            raise InvalidTask("path", f"must be an absolute path, got {str(self.path)!r}")
        for what, names in (("users", self.users), ("groups", self.groups)):
            if any(not n.strip() for n in names):
                raise InvalidTask(what, "must not hold an empty name")

    def may_use(self, who: Caller) -> bool:
        return (
            EVERYONE in self.users or who.user in self.users or bool(self.groups & set(who.groups))
        )

    def metadata(self) -> dict[str, str]:
        """What the hub may list: never the path, nor who may use it."""
        return {"name": self.name, "description": self.description}


@dataclass(frozen=True, kw_only=True)
class SitePolicy:
    """What a site lets run next to its data; an empty rule does not restrict."""

    allowed_images: frozenset[str] = frozenset()  # digests
    allowed_publishers: frozenset[str] = frozenset()  # catalogue owners
    minimum_review: Review | None = None
    allowed_users: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()
    max_cpu_cores: int | None = None
    max_ram_gb: float | None = None
    max_disk_gb: float | None = None
    max_output_bytes: int | None = None  # all outputs of one task together
    require_approval: bool = False
    output_review: bool = False
    stewards: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("allowed_publishers", "allowed_users", "allowed_groups", "stewards"):
            if any(not n.strip() for n in getattr(self, name)):
                raise InvalidTask(name, "must not hold an empty name")
        for digest in sorted(self.allowed_images):
            check_digest(digest, "allowed_images")
        for name in ("max_cpu_cores", "max_ram_gb", "max_disk_gb"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise InvalidTask(name, f"must be above 0, got {value!r}")
        if self.max_output_bytes is not None and (
            isinstance(self.max_output_bytes, bool) or self.max_output_bytes < 0
        ):
            raise InvalidTask(
                "max_output_bytes", f"must be at least 0, got {self.max_output_bytes!r}"
            )
        if (self.require_approval or self.output_review) and not self.stewards:
            which = "require_approval" if self.require_approval else "output_review"
            raise InvalidTask(
                "stewards", f"{which} is on, so someone must approve: name at least one steward"
            )

    @property
    def restricts_images(self) -> bool:
        return bool(self.allowed_images or self.allowed_publishers or self.minimum_review)

    def is_steward(self, user: str) -> bool:
        return user in self.stewards


@dataclass(frozen=True, kw_only=True)
class ImageFacts:
    """What the hub's catalogue knows of an executor's image."""

    digest: str
    entry: str  # "name:version"
    publisher: str  # the entry's owner
    review: Review


@dataclass(frozen=True, kw_only=True)
class Refusal:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def error(self) -> InvalidTask:
        return InvalidTask(self.field, self.message)


def pinned_digest(image: str) -> str | None:
    """The digest an image reference is pinned to (``...@sha256:<hex>``), else ``None``."""
    match = _PINNED.search(image)
    return match[1] if match else None


# --- the checks --------------------------------------------------------------------------------


def check_task(
    spec: TaskSpec,
    who: Caller,
    policy: SitePolicy,
    datasets: Mapping[str, Dataset],
    site: str,
    images: Mapping[int, ImageFacts],
) -> list[Refusal]:
    """Every reason site ``site`` refuses ``spec`` submitted by ``who``; empty: it may run.

    ``images`` holds, by executor index, what the catalogue knows of that executor's image
    (absent: the image is not a catalogue entry)."""
    refusals = _check_user(who, policy, site)
    for i, ex in enumerate(spec.executors):
        refusal = _check_image(f"executors[{i}].image", ex.image, images.get(i), policy, site)
        if refusal is not None:
            refusals.append(refusal)
    reads: list[str] = []
    for i, inp in enumerate(spec.inputs):
        if inp.content is None and is_dataset_url(inp.url):
            assert inp.url is not None
            reads.append(f"inputs[{i}]")
            refusal = _check_dataset(f"inputs[{i}].url", inp.url, who, policy, datasets, site)
            if refusal is not None:
                refusals.append(refusal)
    for i, out in enumerate(spec.outputs):
        if is_dataset_url(out.url):
            refusals.append(
                Refusal(
                    field=f"outputs[{i}].url",
                    message="datasets are read-only: results are never written back into one; "
                    "send this output to another URL",
                )
            )
    asked = _parameter(spec, "site")
    if asked is not None and asked[1] != site:
        refusals.append(
            Refusal(
                field=f"{_PARAMS}.{asked[0]}",
                message=f"names site {asked[1]}, but this is site {site}",
            )
        )
    refusals += _check_resources(spec, policy, site)
    if reads:
        refusals += _check_network(spec, reads, site)
    return refusals


def outputs_within(sizes: Sequence[int], policy: SitePolicy) -> Refusal | None:
    """``None`` if outputs of these sizes (bytes) may leave the site together, else why not."""
    limit = policy.max_output_bytes
    total = sum(sizes)
    if limit is None or total <= limit:
        return None
    return Refusal(
        field="outputs",
        message=f"the outputs total {total:,} bytes; this site lets at most {limit:,} bytes "
        "leave per task: write smaller results (a summary, not the data)",
    )


def _check_user(who: Caller, policy: SitePolicy, site: str) -> list[Refusal]:
    if not (policy.allowed_users or policy.allowed_groups):
        return []
    if who.user in policy.allowed_users or policy.allowed_groups & set(who.groups):
        return []
    allowed = _alternatives(
        ("users", sorted(policy.allowed_users)),
        ("members of groups", sorted(policy.allowed_groups)),
    )
    return [
        Refusal(
            field="owner",
            message=f"user {who.user} may not run tasks at site {site}: only {allowed} may; "
            f"{_ask(policy)}",
        )
    ]


def _check_image(
    field: str, image: str, facts: ImageFacts | None, policy: SitePolicy, site: str
) -> Refusal | None:
    pinned = pinned_digest(image)
    if facts is not None and pinned is not None and pinned != facts.digest:
        return Refusal(
            field=field,
            message=f"image {image} is pinned to {_short(pinned)} but catalogue entry "
            f"{facts.entry} is {_short(facts.digest)}; submit the entry again",
        )
    if not policy.restricts_images:
        return None
    if pinned is None:
        why = "it is not pinned by digest (name it as image@sha256:...)"
    elif pinned in policy.allowed_images:
        return None
    elif facts is None:
        why = f"its digest {_short(pinned)} is not listed and it is no catalogue entry"
    elif facts.publisher in policy.allowed_publishers or _reviewed(facts.review, policy):
        return None
    else:
        why = (
            f"catalogue entry {facts.entry} is published by {facts.publisher} and reviewed "
            f"'{facts.review}'"
        )
    allowed = _alternatives(
        ("digests", [_short(d) for d in sorted(policy.allowed_images)]),
        ("images of publishers", sorted(policy.allowed_publishers)),
        (
            "catalogue entries reviewed",
            [f"'{policy.minimum_review}' or better"] if policy.minimum_review else [],
        ),
    )
    return Refusal(
        field=field,
        message=f"image {_short_ref(image)} is not allowed at site {site}: {why}; allowed are "
        f"{allowed}",
    )


def _reviewed(review: Review, policy: SitePolicy) -> bool:
    minimum = policy.minimum_review
    return minimum is not None and _REVIEW_ORDER.index(review) >= _REVIEW_ORDER.index(minimum)


def _check_dataset(
    field: str,
    url: str,
    who: Caller,
    policy: SitePolicy,
    datasets: Mapping[str, Dataset],
    site: str,
) -> Refusal | None:
    try:
        parsed = DatasetUrl.parse(url)
    except BadDatasetUrl as exc:
        return Refusal(field=field, message=str(exc))
    if parsed.site != site:
        return Refusal(
            field=field,
            message=f"names site {parsed.site}, but this is site {site}: a task that reads a "
            "dataset runs at the dataset's own site",
        )
    dataset = datasets.get(parsed.dataset)
    if dataset is None:
        known = ", ".join(sorted(datasets)) or "none"
        return Refusal(
            field=field,
            message=f"site {site} has no dataset {parsed.dataset!r}; its datasets: {known}",
        )
    if not dataset.may_use(who):
        return Refusal(
            field=field,
            message=f"user {who.user} may not use dataset {dataset.name} at site {site}; "
            f"{_ask(policy)}",
        )
    return None


def _check_resources(spec: TaskSpec, policy: SitePolicy, site: str) -> list[Refusal]:
    res = spec.resources
    if res is None:
        return []
    refusals = []
    for name, asked, cap, unit in (
        ("cpu_cores", res.cpu_cores, policy.max_cpu_cores, " cores"),
        ("ram_gb", res.ram_gb, policy.max_ram_gb, " GB of memory"),
        ("disk_gb", res.disk_gb, policy.max_disk_gb, " GB of disk"),
    ):
        if asked is not None and cap is not None and asked > cap:
            refusals.append(
                Refusal(
                    field=f"resources.{name}",
                    message=f"asks for {asked:g}{unit}; site {site} allows at most {cap:g} "
                    "per task",
                )
            )
    return refusals


def _parameter(spec: TaskSpec, name: str) -> tuple[str, str] | None:
    """The backend parameter ``name`` (any case) as the task spelled it: (key, value)."""
    params = (spec.resources and spec.resources.backend_parameters) or {}
    return next(((k, v) for k, v in params.items() if k.lower() == name), None)


def _check_network(spec: TaskSpec, reads: list[str], site: str) -> list[Refusal]:
    asked = _parameter(spec, "network")
    if asked is None or asked[1].strip().lower() == "none":
        return []
    key, value = asked
    return [
        Refusal(
            field=f"{_PARAMS}.{key}",
            message=f"a task that reads a dataset ({', '.join(reads)}) runs without network at "
            f"site {site}; remove {key}={value}",
        )
    ]


def _alternatives(*rules: tuple[str, Sequence[str]]) -> str:
    shown = []
    for what, names in rules:
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            shown.append(f"{what} {', '.join(names[:5])}{more}")
    return ", or ".join(shown)


def _ask(policy: SitePolicy) -> str:
    if policy.stewards:
        return "ask the site's data stewards (" + ", ".join(sorted(policy.stewards)) + ")"
    return "ask the site's operator"


def _short(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}:{hex_[:12]}…" if len(hex_) > 12 else digest


def _short_ref(image: str) -> str:
    pinned = pinned_digest(image)
    return image if pinned is None else image[: -len(pinned)] + _short(pinned)


def sealed(spec: TaskSpec) -> bool:
    """Whether the task asks for its outputs sealed to its owner's key."""
    return (spec.backend_parameter("encrypt_outputs") or "").strip().lower() == "true"


def lowered_parameters(spec: TaskSpec) -> TaskSpec:
    """``spec`` with its backend parameter keys in lower case (how every check reads them);
    InvalidTask when two keys differ only in case (which one would count is ambiguous)."""
    params = (spec.resources.backend_parameters if spec.resources else None) or {}
    lowered = {k.lower(): v for k, v in params.items()}
    if len(lowered) != len(params):
        seen: dict[str, str] = {}
        for key in params:
            if key.lower() in seen:
                raise InvalidTask(
                    f"resources.backend_parameters.{key}",
                    f"is given twice (also as {seen[key.lower()]!r}): keys are not case-sensitive",
                )
            seen[key.lower()] = key
    if lowered == params or spec.resources is None:
        return spec
    return replace(spec, resources=replace(spec.resources, backend_parameters=lowered))
