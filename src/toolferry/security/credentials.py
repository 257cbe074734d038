"""Which storage secrets a transfer gets: the task owner's own first, then the site's.

A credential applies to every URL starting with its ``prefix``; the longest matching prefix
wins, and a user's credential beats a site credential with the same prefix. The lookup is
built once per task attempt, so a worker never sees another user's secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from toolferry.config import StorageCredential
from toolferry.storage.base import Credential

__all__ = ["CredentialResolver", "UserCredentials", "from_setting"]


class UserCredentials(Protocol):
    def credentials_of(self, owner: str) -> list[Credential]:
        """Every credential ``owner`` stored, with its secrets."""
        ...


def from_setting(setting: StorageCredential) -> Credential:
    def reveal(value: object) -> str | None:
        return None if value is None else value.get_secret_value()  # type: ignore[attr-defined]

    return Credential(
        prefix=setting.prefix,
        username=setting.username,
        password=reveal(setting.password),
        token=reveal(setting.token),
        access_key=setting.access_key,
        secret_key=reveal(setting.secret_key),
        session_token=reveal(setting.session_token),
        headers={k: v.get_secret_value() for k, v in setting.headers.items()},
    )


def _best(candidates: Sequence[Credential], url: str) -> Credential | None:
    matching = [c for c in candidates if c.applies_to(url)]
    return max(matching, key=lambda c: len(c.prefix), default=None)


class CredentialResolver:
    def __init__(self, site: Sequence[Credential], users: UserCredentials | None = None) -> None:
        self.site = tuple(site)
        self.users = users

    def for_owner(self, owner: str) -> Callable[[str], Credential | None]:
        """The lookup for one attempt of ``owner``'s task. The user's credentials are read on
        first use, in the transfer, so that one that cannot be decrypted fails that task
        (naming the cause) rather than the dispatch."""
        loaded: list[list[Credential]] = []
        lock = threading.Lock()

        def own() -> list[Credential]:
            with lock:
                if not loaded:
                    users = self.users
                    loaded.append(users.credentials_of(owner) if users is not None else [])
                return loaded[0]

        def lookup(url: str) -> Credential | None:
            mine, site = _best(own(), url), _best(self.site, url)
            if mine is None or (site is not None and len(site.prefix) > len(mine.prefix)):
                return site
            return mine

        return lookup
