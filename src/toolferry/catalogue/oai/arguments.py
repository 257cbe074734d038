"""Which arguments each verb takes, and the badVerb and badArgument checks (section 3.6)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from toolferry.catalogue.oai.dates import parse_range
from toolferry.catalogue.oai.errors import ErrorCode, OaiError, Refusal
from toolferry.catalogue.oai.sets import SET_SPEC

__all__ = ["EXCLUSIVE", "VERBS", "VerbArguments", "check"]

EXCLUSIVE = "resumptionToken"
_PREFIX = re.compile(r"[A-Za-z0-9\-_.!~*'()]+")


@dataclass(frozen=True)
class VerbArguments:
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    resumable: bool = False  # takes an exclusive resumptionToken instead

    @property
    def known(self) -> frozenset[str]:
        return self.required | self.optional | ({EXCLUSIVE} if self.resumable else frozenset())


_LIST = VerbArguments(
    required=frozenset({"metadataPrefix"}),
    optional=frozenset({"from", "until", "set"}),
    resumable=True,
)
VERBS: dict[str, VerbArguments] = {
    "Identify": VerbArguments(),
    "ListMetadataFormats": VerbArguments(optional=frozenset({"identifier"})),
    "ListSets": VerbArguments(resumable=True),
    "GetRecord": VerbArguments(required=frozenset({"identifier", "metadataPrefix"})),
    "ListIdentifiers": _LIST,
    "ListRecords": _LIST,
}


def _bad(message: str) -> OaiError:
    return OaiError(ErrorCode.BAD_ARGUMENT, message)


def _verb(pairs: Sequence[tuple[str, str]]) -> str:
    verbs = [value for key, value in pairs if key == "verb"]
    if not verbs:
        raise OaiError(ErrorCode.BAD_VERB, "no verb given; use one of " + ", ".join(VERBS))
    if len(verbs) > 1:
        raise OaiError(ErrorCode.BAD_VERB, "the verb is given more than once")
    if verbs[0] not in VERBS:
        raise OaiError(
            ErrorCode.BAD_VERB,
            f"{verbs[0]!r} is not an OAI-PMH verb; use one of " + ", ".join(VERBS),
        )
    return verbs[0]


def _values(args: dict[str, str]) -> list[OaiError]:
    problems = [_bad(f"{key} is empty") for key, value in args.items() if not value]
    prefix = args.get("metadataPrefix")
    if prefix and not _PREFIX.fullmatch(prefix):
        problems.append(_bad(f"metadataPrefix={prefix!r} holds characters a prefix cannot"))
    spec = args.get("set")
    if spec and not SET_SPEC.fullmatch(spec):
        problems.append(_bad(f"set={spec!r} is not a setSpec (e.g. community:biology)"))
    try:
        parse_range(args.get("from") or None, args.get("until") or None)
    except OaiError as err:
        problems.append(err)
    return problems


def check(pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The verb and its arguments; raises :class:`OaiError` for a bad verb, or
    :class:`Refusal` with every badArgument found (unknown, repeated, missing or malformed
    arguments, or a resumptionToken with others)."""
    verb = _verb(pairs)
    rules = VERBS[verb]
    counts = Counter(key for key, _ in pairs if key != "verb")
    problems = [
        _bad(f"{key} is given {n} times")
        for key, n in counts.items()
        if n > 1 and key in rules.known
    ]
    problems += [
        _bad(f"{key!r} is not an argument of {verb}" + _known(rules))
        for key in counts
        if key not in rules.known
    ]
    args = {key: value for key, value in pairs if key != "verb"}
    if EXCLUSIVE in args and rules.resumable:
        others = sorted(set(args) - {EXCLUSIVE})
        if others:
            problems.append(
                _bad(
                    f"resumptionToken is exclusive: send it with the verb alone, not with {', '.join(others)}"
                )
            )
    else:
        problems += [_bad(f"{verb} needs {key}") for key in sorted(rules.required - set(args))]
    problems += _values({k: v for k, v in args.items() if k in rules.known and k != EXCLUSIVE})
    if problems:
        raise Refusal(problems)
    return verb, args


def _known(rules: VerbArguments) -> str:
    return f" (it takes {', '.join(sorted(rules.known))})" if rules.known else " (it takes none)"
