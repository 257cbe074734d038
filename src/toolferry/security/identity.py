"""Who is calling, and what that lets them see."""

from __future__ import annotations

from dataclasses import dataclass

from toolferry.domain.task import Task


@dataclass(frozen=True, kw_only=True)
class Identity:
    user: str
    admin: bool = False

    def may_see(self, task: Task) -> bool:
        return self.admin or task.owner == self.user


# The caller when authentication is off (embedded default on loopback): the machine's user.
LOCAL = Identity(user="local", admin=True)
