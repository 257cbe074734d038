"""Criteria queries over environments, as virtual workspaces queried their repository:
"at least 8 GB RAM, Ubuntu, has samtools".

A query is a list of terms separated by commas or spaces. Structured terms: ``ram>=8``,
``cores>=4``, ``disk>=100``, ``gpus>=1`` (the environment's minimal hardware must fit within),
``arch=amd64``, ``os=ubuntu``, ``has=samtools`` (a software package, optionally
``has=samtools>=1.17``), ``kind=``, ``community=``, ``purpose=``, ``interface=``,
``execution=``, ``runtime=``, ``status=``, ``review=``. Phrases: ``at least 8 GB RAM`` (also
cores, CPUs, disk, GPUs), ``has samtools``, ``with samtools``, and a known operating system
name on its own (``ubuntu``, ``debian``, ...). Any other word must appear in the title,
description, communities, purposes or packages. Matching is case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from toolferry.domain.environment import Environment
from toolferry.domain.errors import InvalidTask

__all__ = ["Criteria", "parse_criteria"]

KNOWN_OS = (
    "ubuntu",
    "debian",
    "centos",
    "rocky",
    "alma",
    "rhel",
    "fedora",
    "alpine",
    "opensuse",
    "windows",
    "macos",
)
_HARDWARE = {"ram": "ram_gb", "memory": "ram_gb", "disk": "disk_gb"}
_HARDWARE |= {name: "cpu_cores" for name in ("core", "cores", "cpu", "cpus")}
_HARDWARE |= {"gpu": "gpus", "gpus": "gpus"}
_PHRASE = re.compile(
    r"at\s+least\s+(?P<amount>\d+(?:\.\d+)?)\s*(?:gb|gib|g)?\s+(?P<what>ram|memory|cores?|cpus?|disk|gpus?)",
    re.IGNORECASE,
)
_HAS = re.compile(r"\b(?:has|with)\s+(?P<package>[\w.+\-]+(?:[<>=]=?[\w.\-]+)?)", re.IGNORECASE)
_TERM = re.compile(r"(?P<key>[a-z]+)\s*(?P<op>>=|=)\s*(?P<value>[^\s,]+)", re.IGNORECASE)
_VERSION = re.compile(r"^(?P<name>[\w.+\-]+?)(?P<op>>=|<=|==|=|>|<)(?P<version>[\w.\-]+)$")

Check = Callable[[Environment], str | None]


def _text(env: Environment) -> str:
    c = env.classification
    parts = [c.title, c.description, *c.community, *c.purpose, *c.software_packages, env.name]
    return " ".join(p for p in parts if p).lower()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)) or (0,)


def _package_check(spec: str) -> Check:
    match = _VERSION.match(spec)
    name = (match["name"] if match else spec).lower()
    op = match["op"] if match else None
    wanted = _version_tuple(match["version"]) if match else ()
    compare: dict[str, Callable[[tuple[int, ...]], bool]] = {
        ">=": lambda v: v >= wanted,
        ">": lambda v: v > wanted,
        "<=": lambda v: v <= wanted,
        "<": lambda v: v < wanted,
        "=": lambda v: v[: len(wanted)] == wanted,
        "==": lambda v: v[: len(wanted)] == wanted,
    }

    def check(env: Environment) -> str | None:
        for package in env.classification.software_packages:
            label, _, version = package.strip().partition(" ")
            if label.lower() != name and not label.lower().startswith(name + "/"):
                continue
            if op is None or compare[op](_version_tuple(version)):
                return None
        return f"has no {spec}"

    return check


def _hardware_check(field: str, amount: float, label: str) -> Check:
    def check(env: Environment) -> str | None:
        # As virtual workspaces matched descriptors: what the environment's virtual hardware
        # provides (else what it needs at least) must reach ``amount``.
        c = env.classification
        value = None
        for profile in (c.virtual_hardware, c.minimal_hardware):
            if value is None and profile is not None:
                value = getattr(profile, field)
        if value is None or value < amount:
            return f"{label} {'unknown' if value is None else f'{value:g}'} < {amount:g}"
        return None

    return check


def _in_list(
    label: str, values: Callable[[Environment], tuple[str, ...] | list[str]], want: str
) -> Check:
    def check(env: Environment) -> str | None:
        if any(want.lower() in v.lower() for v in values(env)):
            return None
        return f"{label} is not {want}"

    return check


def _equals(label: str, value: Callable[[Environment], object], want: str) -> Check:
    def check(env: Environment) -> str | None:
        got = value(env)
        return None if got is not None and str(got).lower() == want.lower() else f"{label} is {got}"

    return check


_FIELDS: dict[str, Callable[[str], Check]] = {
    "os": lambda v: _in_list("operating system", lambda e: e.classification.operating_system, v),
    "community": lambda v: _in_list("community", lambda e: e.classification.community, v),
    "purpose": lambda v: _in_list("purpose", lambda e: e.classification.purpose, v),
    "has": _package_check,
    "kind": lambda v: _equals("kind", lambda e: e.kind, v),
    "interface": lambda v: _equals("user interface", lambda e: e.classification.user_interface, v),
    "execution": lambda v: _equals("execution type", lambda e: e.classification.execution_type, v),
    "runtime": lambda v: _equals(
        "runtime technology", lambda e: e.classification.runtime_technology, v
    ),
    "status": lambda v: _equals("status", lambda e: e.status, v),
    "review": lambda v: _equals("review", lambda e: e.review, v),
    "arch": lambda v: _equals(
        "architecture",
        lambda e: (
            e.classification.minimal_hardware.cpu_architecture
            if e.classification.minimal_hardware
            else None
        ),
        v,
    ),
}


@dataclass(frozen=True)
class Criteria:
    """A parsed query: every check must pass."""

    query: str
    checks: tuple[Check, ...]

    def misses(self, env: Environment) -> list[str]:
        """Why ``env`` does not match (empty: it does)."""
        return [reason for check in self.checks if (reason := check(env)) is not None]

    def matches(self, env: Environment) -> bool:
        return not self.misses(env)


def parse_criteria(query: str) -> Criteria:
    """Parse ``query``; :class:`InvalidTask` (field ``q``) for a term it cannot use."""
    checks: list[Check] = []
    rest = query
    for match in _PHRASE.finditer(query):
        what = match["what"].lower()
        checks.append(_hardware_check(_HARDWARE[what], float(match["amount"]), what))
    rest = _PHRASE.sub(" ", rest)
    for match in _HAS.finditer(rest):
        checks.append(_package_check(match["package"]))
    rest = _HAS.sub(" ", rest)
    for match in _TERM.finditer(rest):
        key, op, value = match["key"].lower(), match["op"], match["value"]
        if key in _HARDWARE and op == ">=":
            try:
                amount = float(value.lower().removesuffix("gb"))
            except ValueError:
                raise InvalidTask("q", f"{match[0]!r}: {value!r} is not a number") from None
            checks.append(_hardware_check(_HARDWARE[key], amount, key))
        elif key in _FIELDS and op == "=":
            checks.append(_FIELDS[key](value))
        else:
            known = ", ".join(sorted([*_FIELDS, *(f"{k}>=" for k in _HARDWARE)]))
            raise InvalidTask("q", f"{match[0]!r} is not a criterion; known: {known}")
    rest = _TERM.sub(" ", rest)
    for word in re.findall(r"[\w.+\-]+", rest):
        lower = word.lower()
        if lower in ("and", "a", "an", "the"):
            continue
        if lower in KNOWN_OS:
            checks.append(_FIELDS["os"](lower))
        else:
            checks.append(_word_check(lower))
    return Criteria(query=query, checks=tuple(checks))


def _word_check(word: str) -> Check:
    def check(env: Environment) -> str | None:
        return None if word in _text(env) else f"does not mention {word!r}"

    return check
