"""Who is calling, and what that lets them see."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolferry.domain.task import Task


@dataclass(frozen=True, kw_only=True)
class Identity:
    user: str
    admin: bool = False
    # The site's groups the user belongs to (setting ``groups``): catalogue group permissions.
    groups: frozenset[str] = field(default_factory=frozenset)

    def may_see(self, task: Task) -> bool:
        return self.admin or task.owner == self.user


# The caller when authentication is off (embedded default on loopback): the machine's user.
LOCAL = Identity(user="local", admin=True)
