"""Who may read, write or run an environment: ViCE permission pairs and their check."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from toolferry.domain.environment.checks import parse_enum
from toolferry.domain.environment.vocabulary import Action
from toolferry.domain.errors import InvalidTask


class Access(StrEnum):
    """One ViCE permission pair."""

    READ_WRITE = "rw"
    READ = "r-"
    WRITE = "-w"
    NONE = "--"

    @property
    def read(self) -> bool:
        return self.value[0] == "r"

    @property
    def write(self) -> bool:
        return self.value[1] == "w"


@dataclass(frozen=True, kw_only=True)
class Permissions:
    """ViCE ``permissions``: owner, group and others, written ``"rw,r-,--"``."""

    owner: Access = Access.READ_WRITE
    group: Access = Access.READ
    others: Access = Access.NONE

    @classmethod
    def parse(cls, text: str) -> Permissions:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3:
            raise InvalidTask("", f"{text!r} is not three comma-separated pairs like 'rw,r-,--'")
        owner, group, others = (
            parse_enum(Access, p, name)
            for p, name in zip(parts, ("owner", "group", "others"), strict=True)
        )
        return cls(owner=owner, group=group, others=others)

    def __str__(self) -> str:
        return f"{self.owner},{self.group},{self.others}"

    def allows(
        self,
        *,
        user: str,
        groups: Collection[str],
        owner: str,
        group: str | None,
        action: Action,
    ) -> bool:
        """Whether ``user`` (a member of ``groups``) may do ``action`` on an entry owned by
        ``owner`` and ``group``.

        A user gets the rights of every class they belong to (so ``others`` is a floor that
        everyone has, unlike POSIX where the owner class alone applies). ``run`` needs read.
        Administrators are the caller's business.
        """
        held = [self.others]
        if user == owner:
            held.append(self.owner)
        if group is not None and group in groups:
            held.append(self.group)
        if action is Action.WRITE:
            return any(a.write for a in held)
        return any(a.read for a in held)
