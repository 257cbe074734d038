"""Search facets: the values of a few classification fields, to filter on and to count.

Within one facet the selected values are alternatives (any may match); across facets all must
match. Values compare case-insensitively; a software package is faceted by its name without
the version ("samtools 1.17" → "samtools").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from toolferry.domain.environment import Environment

__all__ = ["FACETS", "count_facets", "select"]


def _package_name(package: str) -> str:
    return re.split(r"[\s<>=@]", package.strip(), maxsplit=1)[0]


def _one(value: object) -> tuple[str, ...]:
    return () if value is None else (str(value),)


FACETS: dict[str, Callable[[Environment], Iterable[str]]] = {
    "kind": lambda e: (str(e.kind),),
    "community": lambda e: e.classification.community,
    "purpose": lambda e: e.classification.purpose,
    "os": lambda e: e.classification.operating_system,
    "software": lambda e: (_package_name(p) for p in e.classification.software_packages),
    "runtime": lambda e: _one(e.classification.runtime_technology),
    "content_type": lambda e: (str(e.classification.content_type),),
    "execution_type": lambda e: _one(e.classification.execution_type),
    "user_interface": lambda e: _one(e.classification.user_interface),
}


def _values(env: Environment, facet: str) -> set[str]:
    return {value.lower() for value in FACETS[facet](env)}


def select(envs: Iterable[Environment], chosen: Mapping[str, Sequence[str]]) -> list[Environment]:
    """The entries that have, for every facet in ``chosen``, one of its values."""
    wanted = {facet: {v.lower() for v in values} for facet, values in chosen.items() if values}
    return [env for env in envs if all(_values(env, f) & values for f, values in wanted.items())]


def count_facets(envs: Iterable[Environment]) -> dict[str, dict[str, int]]:
    """Facet → value → how many of ``envs`` have it, most frequent first (values as first
    written)."""
    counts = {facet: Counter[str]() for facet in FACETS}
    spelling: dict[tuple[str, str], str] = {}
    for env in envs:
        for facet, values in FACETS.items():
            seen = set()
            for value in values(env):
                key = value.lower()
                if key not in seen:
                    seen.add(key)
                    spelling.setdefault((facet, key), value)
                    counts[facet][key] += 1
    return {
        facet: {spelling[(facet, key)]: n for key, n in counter.most_common()}
        for facet, counter in counts.items()
    }
