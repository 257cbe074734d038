"""How a site moves task data: storages by URL scheme, the shared input cache, and one bound
on the transfers running at once over all the site's tasks."""

from __future__ import annotations

import queue
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
    """Runs calls on at most ``limit`` daemon threads; ``submit`` returns a Future.

    Unlike ThreadPoolExecutor, whose threads the interpreter joins at exit, a stopping hub
    does not wait here for a large download to end. Up to ``limit`` threads start as work
    arrives and then stay, however many calls wait (a task with 10,000 inputs queues them).
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]]
        self._queue = queue.SimpleQueue()
        self._threads = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn, args))
        with self._lock:
            if self._threads < self._limit:
                self._threads += 1
                threading.Thread(target=self._work, name="toolferry-transfer", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue  # canceled while it waited
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)


@dataclass(kw_only=True)
class Transfers:
    """Shared by every worker of a site; ``parallelism`` transfers run at once, in all."""

    router: StorageRouter
    cache: InputCache
    parallelism: int = 4
    pool: BoundedRunner = field(init=False)

    def __post_init__(self) -> None:
        self.pool = BoundedRunner(self.parallelism)
