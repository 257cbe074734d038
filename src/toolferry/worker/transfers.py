"""How a site moves task data: storages by URL scheme, the shared input cache, and one bound
on the transfers running at once over all the site's tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from toolferry.storage.base import Credential
from toolferry.storage.cache import InputCache
from toolferry.storage.router import StorageRouter

__all__ = ["BoundedRunner", "CredentialLookup", "Transfers", "no_credentials", "scrub"]

CredentialLookup = Callable[[str], Credential | None]
T = TypeVar("T")


def no_credentials(url: str) -> Credential | None:
    return None


def scrub(message: str, *credentials: Credential | None) -> str:
    """``message`` without any secret of ``credentials`` (a server may echo one back)."""
    for credential in credentials:
        if credential is not None:
            for secret in credential.secrets():
                message = message.replace(secret, "***")
    return message


class BoundedRunner:
    """Runs calls in daemon threads, at most ``limit`` at once; ``submit`` returns a Future.

    Unlike ThreadPoolExecutor, whose threads the interpreter joins at exit, a stopping hub
    does not wait here for a large download to end.
    """

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return  # canceled while it waited for a slot
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

        threading.Thread(target=run, name="toolferry-transfer", daemon=True).start()
        return future


@dataclass(kw_only=True)
class Transfers:
    """Shared by every worker of a site; ``parallelism`` transfers run at once, in all."""

    router: StorageRouter
    cache: InputCache
    parallelism: int = 4
    pool: BoundedRunner = field(init=False)

    def __post_init__(self) -> None:
        self.pool = BoundedRunner(self.parallelism)
