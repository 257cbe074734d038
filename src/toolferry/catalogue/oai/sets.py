"""Sets: ``community:<slug>`` per community and ``kind:<kind>``, under the parents ``community``
and ``kind``. A record is in a parent set when it is in one of its children."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from toolferry.domain.environment import Environment, Kind

__all__ = ["PARENTS", "SET_SPEC", "SetInfo", "in_set", "set_specs", "sets_in_use", "slug"]

# The protocol's setSpec syntax.
SET_SPEC = re.compile(r"[A-Za-z0-9\-_.!~*'()]+(?::[A-Za-z0-9\-_.!~*'()]+)*")

PARENTS: dict[str, str] = {
    "community": "Environments by target community",
    "kind": "Environments by kind",
}
_KIND_NAMES: dict[str, str] = {
    Kind.OCI_IMAGE: "OCI container images",
    Kind.RECIPE: "Recipes (Dockerfile, Containerfile, Packerfile)",
    Kind.VM_DISK: "Virtual machine disk images",
    Kind.APPTAINER_SIF: "Apptainer SIF images",
}


@dataclass(frozen=True, order=True)
class SetInfo:
    spec: str
    name: str


def slug(text: str) -> str:
    """``"Life Sciences"`` → ``life-sciences``; accents are dropped. Text with no Latin letter
    or digit gets a stable hash (``h-<12 hex>``), so that every community has a set."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    return words or "h-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _members(env: Environment) -> list[SetInfo]:
    found = [SetInfo(f"community:{slug(c)}", c) for c in env.classification.community]
    found.append(SetInfo(f"kind:{env.kind.value}", _KIND_NAMES.get(env.kind, env.kind.value)))
    return found


def set_specs(env: Environment) -> tuple[str, ...]:
    """The (leaf) sets ``env`` belongs to, as its record header lists them."""
    return tuple(dict.fromkeys(s.spec for s in _members(env)))


def in_set(spec: str, specs: Iterable[str]) -> bool:
    """Whether a record in the sets ``specs`` is in ``spec`` or one of its descendants."""
    return any(s == spec or s.startswith(spec + ":") for s in specs)


def sets_in_use(envs: Iterable[Environment]) -> list[SetInfo]:
    """The parent sets, then every set some environment is in, by spec; a set whose
    communities differ only in spelling is named after the first spelling in order."""
    named: dict[str, str] = {}
    for member in sorted(m for env in envs for m in _members(env)):
        named.setdefault(member.spec, member.name)
    parents = [SetInfo(spec, name) for spec, name in PARENTS.items()]
    return parents + [SetInfo(spec, name) for spec, name in sorted(named.items())]
