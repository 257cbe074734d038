"""This hub among the replicas that share its database: heartbeats, and adopting the tasks of
replicas that died.

Every hub process registers itself as a replica and beats every ``lease/5`` seconds. A
replica not seen for a whole lease is dead: the first live replica to *retire* it (a
conditional delete, so exactly one does) adopts its tasks — re-attaching to executors and
batch jobs that outlived it, ending or retrying the others — and records itself as their
replica. A replica that finds itself retired (its database link was cut for longer than a
lease) stops running tasks at once: another replica took them over.

Double dispatch needs nothing of this: a worker claims its task through the state machine
under a row lock (QUEUED → INITIALIZING), so of two replicas that pick the same task one
claim fails and that worker leaves it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from toolferry.agent import recovery
from toolferry.agent.site import Site
from toolferry.domain.events import now
from toolferry.domain.states import ACTIVE
from toolferry.domain.task import Task
from toolferry.store.replicas import Replica, SqlReplicaStore

log = logging.getLogger(__name__)

_ORPHAN_EVERY = 15  # heartbeats between looks for tasks of replicas that have no row
# Far in the future: "not seen since then" is true of every other replica.
_ANY_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def replica_of(task: Task) -> str:
    """The replica running the task's current attempt ('' when none was recorded)."""
    return str(task.logs[-1].metadata.get("replica", "")) if task.logs else ""


class ReplicaMonitor:
    def __init__(
        self,
        store: SqlReplicaStore,
        site: Site,
        *,
        url: str,
        lease_s: float,
        exclusive: bool,
        on_lease_lost: Callable[[], None],
    ) -> None:
        """``exclusive``: no other hub can be using the database (SQLite, whose data
        directory this hub has locked), so every other replica is dead already."""
        self.store = store
        self.site = site
        self.id = site.replica_id
        self.url = url
        self.lease = timedelta(seconds=lease_s)
        self.exclusive = exclusive
        self.on_lease_lost = on_lease_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Register, adopt what dead replicas left, then beat in the background."""
        at = now()
        self.store.register(
            Replica(
                id=self.id,
                host=socket.gethostname(),
                pid=os.getpid(),
                url=self.url,
                started_at=at,
                seen_at=at,
            )
        )
        others = [r for r in self.store.all() if r.id != self.id]
        alive = [r for r in others if r.seen_at >= at - self.lease]
        self._bury_orphans()
        retired = self._retire(_ANY_TIME if self.exclusive else at - self.lease)
        if self.exclusive:  # every task of another hub is this one's now, row or no row
            recovery.recover(self.site, lambda task: replica_of(task) != self.id)
        else:
            # Tasks that name no replica (written before replicas were recorded) belong to
            # whoever starts when no other replica is alive.
            if not alive:
                retired.add("")
            self._adopt(retired)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="replica", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.store.stop(self.id)
        except Exception:
            log.exception("could not record that replica %s stopped", self.id)

    def _loop(self) -> None:
        interval = self.lease.total_seconds() / 5
        beats = 0
        while not self._stop.wait(interval):
            try:
                if not self.store.beat(self.id, now()):
                    log.critical(
                        "replica %s was declared dead by the others (no heartbeat for %s); "
                        "it stops running tasks: restart this hub",
                        self.id,
                        self.lease,
                    )
                    self.on_lease_lost()
                    return
                beats += 1
                if beats % _ORPHAN_EVERY == 0:
                    self._bury_orphans()
                retired = self._retire(now() - self.lease)
                if retired:
                    self._adopt(retired)
            except Exception:
                log.exception("replica heartbeat failed; trying again")

    def _bury_orphans(self) -> None:
        """Replicas that active tasks name but that have no row (an adopter died before it
        marked them as its own) get a dead row, to be retired and adopted like any dead one."""
        known = {r.id for r in self.store.all()}
        named = {replica_of(t) for t in self.site.store.in_states(ACTIVE, limit=100_000)}
        for replica_id in named - known - {"", self.id}:
            log.warning("tasks name replica %s, which has no row: adopting them", replica_id)
            self.store.bury(replica_id)

    def _retire(self, seen_before: datetime) -> set[str]:
        """Retire every other replica not seen since ``seen_before``; the ids this one won."""
        won = set()
        for replica in self.store.all():
            stale = replica.id != self.id and replica.seen_at < seen_before
            if stale and self.store.retire(replica.id, seen_before):
                log.warning(
                    "replica %s (%s, pid %d) is dead: adopting its tasks",
                    replica.id,
                    replica.host,
                    replica.pid,
                )
                won.add(replica.id)
        return won

    def _adopt(self, dead: set[str]) -> None:
        recovery.recover(self.site, lambda task: replica_of(task) in dead)
