"""Data sites in the database: enrolment, what their agents report, and the tasks handed to
them (see :mod:`toolferry.agent.remote` for the protocol)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from toolferry.domain.errors import Conflict, NotFound
from toolferry.domain.events import now
from toolferry.domain.states import State
from toolferry.domain.task import Task
from toolferry.security.audit import GENESIS
from toolferry.store.db import Database
from toolferry.store.sql import SqlTaskStore
from toolferry.store.tables import airlock, audit_records, site_deliveries, sites, tasks


@dataclass(frozen=True, kw_only=True)
class SiteRecord:
    name: str
    description: str
    created_at: datetime
    seen_at: datetime | None
    info: dict[str, Any] = field(default_factory=dict)


def _record(row: Any) -> SiteRecord:
    return SiteRecord(
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        seen_at=row.seen_at,
        info=dict(row.info or {}),
    )


class SqlSiteStore:
    def __init__(self, db: Database, tasks_store: SqlTaskStore) -> None:
        self._db = db
        self._tasks = tasks_store

    # -- sites ---------------------------------------------------------------------------------
    def add(self, name: str, description: str, token_hash: str) -> SiteRecord:
        """Enrol a site; Conflict if the name is taken."""
        at = now()
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(sites).values(
                        name=name,
                        description=description,
                        token_hash=token_hash,
                        created_at=at,
                        seen_at=None,
                        info={},
                    )
                )
        except IntegrityError:
            raise Conflict(f"a site named {name!r} exists already") from None
        return SiteRecord(name=name, description=description, created_at=at, seen_at=None)

    def renew_token(self, name: str, token_hash: str) -> None:
        with self._db.write() as conn:
            done = conn.execute(
                update(sites).where(sites.c.name == name).values(token_hash=token_hash)
            )
            if done.rowcount != 1:
                raise NotFound(f"no site {name}")

    def by_token(self, token_hash: str) -> SiteRecord | None:
        with self._db.read() as conn:
            row = conn.execute(select(sites).where(sites.c.token_hash == token_hash)).one_or_none()
        return _record(row) if row is not None else None

    def get(self, name: str) -> SiteRecord:
        with self._db.read() as conn:
            row = conn.execute(select(sites).where(sites.c.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"no site {name}")
        return _record(row)

    def all(self) -> list[SiteRecord]:
        with self._db.read() as conn:
            rows = conn.execute(select(sites).order_by(sites.c.name)).all()
        return [_record(r) for r in rows]

    def report(self, name: str, info: dict[str, Any]) -> None:
        """Record an agent's heartbeat and what it said about its site."""
        with self._db.write() as conn:
            conn.execute(update(sites).where(sites.c.name == name).values(seen_at=now(), info=info))

    # -- deliveries --------------------------------------------------------------------------------
    def hand_out(self, site: str, *, limit: int, redeliver_after: timedelta) -> list[Task]:
        """QUEUED tasks of ``site`` to give its agent: those never handed out, and those
        handed out but not confirmed for ``redeliver_after`` (the agent may have lost them).
        Each is recorded as delivered under its row lock, so a cancel at the hub either ends
        it first or becomes a request to the agent."""
        cutoff = now() - redeliver_after
        pending = (
            select(tasks.c.id)
            .select_from(tasks.outerjoin(site_deliveries, site_deliveries.c.task_id == tasks.c.id))
            .where(
                tasks.c.site == site,
                tasks.c.state == str(State.QUEUED),
                (site_deliveries.c.task_id.is_(None))
                | and_(
                    site_deliveries.c.confirmed.is_(False),
                    site_deliveries.c.delivered_at < cutoff,
                ),
            )
            .order_by(tasks.c.id)
            .limit(limit)
        )
        with self._db.read() as conn:
            ids = [r.id for r in conn.execute(pending).all()]
        handed = []
        for task_id in ids:
            with self._db.write() as conn:
                state = conn.execute(
                    select(tasks.c.state).where(tasks.c.id == task_id).with_for_update()
                ).scalar_one_or_none()
                if state != str(State.QUEUED):
                    continue
                done = conn.execute(
                    update(site_deliveries)
                    .where(site_deliveries.c.task_id == task_id)
                    .values(delivered_at=now(), confirmed=False)
                )
                if done.rowcount == 0:
                    conn.execute(
                        insert(site_deliveries).values(
                            task_id=task_id,
                            site=site,
                            delivered_at=now(),
                            confirmed=False,
                            cancel_requested=False,
                        )
                    )
            handed.append(self._tasks.get(task_id))
        return handed

    def confirm(self, site: str, task_ids: list[str]) -> None:
        """The agent holds these tasks now: they are not handed out again."""
        if not task_ids:
            return
        with self._db.write() as conn:
            conn.execute(
                update(site_deliveries)
                .where(site_deliveries.c.site == site, site_deliveries.c.task_id.in_(task_ids))
                .values(confirmed=True)
            )

    def withhold(self, task_id: str, site: str) -> bool:
        """Make sure the task is never handed out (to cancel it at the hub); False when it
        was handed out already (then only its agent may end it). One insert decides it, so
        a cancel and a hand-out racing each other cannot both win."""
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(site_deliveries).values(
                        task_id=task_id,
                        site=site,
                        delivered_at=now(),
                        confirmed=True,
                        cancel_requested=True,
                    )
                )
        except IntegrityError:
            return False
        return True

    def delivered(self, task_id: str) -> bool:
        """Whether the task was handed to its site's agent (only the agent ends it then)."""
        with self._db.read() as conn:
            row = conn.execute(
                select(site_deliveries.c.task_id).where(site_deliveries.c.task_id == task_id)
            ).one_or_none()
        return row is not None

    def request_cancel(self, task_id: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                update(site_deliveries)
                .where(site_deliveries.c.task_id == task_id)
                .values(cancel_requested=True)
            )

    def cancel_requests(self, site: str) -> list[str]:
        """Tasks of ``site`` whose cancel the agent has yet to carry out."""
        stmt = (
            select(site_deliveries.c.task_id)
            .select_from(site_deliveries.join(tasks, tasks.c.id == site_deliveries.c.task_id))
            .where(
                site_deliveries.c.site == site,
                site_deliveries.c.cancel_requested.is_(True),
                tasks.c.state.not_in([str(s) for s in State if s.terminal]),
            )
        )
        with self._db.read() as conn:
            return [r.task_id for r in conn.execute(stmt).all()]

    # -- approvals ---------------------------------------------------------------------------------
    def awaiting_decision(self, sites_: list[str]) -> list[Task]:
        """Tasks handed to these sites that wait, QUEUED, for a steward's decision."""
        if not sites_:
            return []
        stmt = (
            select(site_deliveries.c.task_id)
            .select_from(site_deliveries.join(tasks, tasks.c.id == site_deliveries.c.task_id))
            .where(
                site_deliveries.c.site.in_(sites_),
                site_deliveries.c.decision.is_(None),
                tasks.c.state == str(State.QUEUED),
            )
            .order_by(site_deliveries.c.task_id)
        )
        with self._db.read() as conn:
            ids = [r.task_id for r in conn.execute(stmt).all()]
        return [self._tasks.get(i) for i in ids]

    def decide(self, task_id: str, decision: str, steward: str, reason: str) -> None:
        """Record a steward's decision once; Conflict if the task is decided or not waiting."""
        with self._db.write() as conn:
            state = conn.execute(
                select(tasks.c.state).where(tasks.c.id == task_id).with_for_update()
            ).scalar_one_or_none()
            if state is None:
                raise NotFound(f"no task {task_id}")
            done = conn.execute(
                update(site_deliveries)
                .where(site_deliveries.c.task_id == task_id, site_deliveries.c.decision.is_(None))
                .values(decision=decision, decided_by=steward, reason=reason)
            )
            if done.rowcount != 1 or state != str(State.QUEUED):
                raise Conflict(f"task {task_id} does not wait for a decision")

    def decisions(self, site: str) -> list[dict[str, str]]:
        """Decisions on the site's tasks that are still QUEUED at the hub (the agent has yet to
        act on them; sent again until it has)."""
        return self._decided(site_deliveries, site, tasks.c.state == str(State.QUEUED))

    def _decided(self, table: Any, site: str, still: Any) -> list[dict[str, str]]:
        """Stewards' decisions recorded in ``table`` (deliveries or the airlock) for the
        site's tasks whose state satisfies ``still``, as the agent receives them."""
        stmt = (
            select(table.c.task_id, table.c.decision, table.c.decided_by, table.c.reason)
            .select_from(table.join(tasks, tasks.c.id == table.c.task_id))
            .where(table.c.site == site, table.c.decision.is_not(None), still)
        )
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            {
                "id": r.task_id,
                "decision": r.decision,
                "steward": r.decided_by,
                "reason": r.reason or "",
            }
            for r in rows
        ]

    # -- audit -------------------------------------------------------------------------------------
    def audit_head(self, site: str) -> tuple[int, str]:
        stmt = (
            select(audit_records.c.seq, audit_records.c.hash)
            .where(audit_records.c.site == site)
            .order_by(audit_records.c.seq.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(stmt).one_or_none()
        return (row.seq, row.hash) if row is not None else (0, GENESIS)

    def add_audit(self, site: str, records: list[dict[str, Any]]) -> None:
        with self._db.write() as conn:
            conn.execute(
                insert(audit_records),
                [{"site": site, "seq": r["seq"], "hash": r["hash"], "record": r} for r in records],
            )

    def audit(self, site: str) -> list[dict[str, Any]]:
        stmt = (
            select(audit_records.c.record)
            .where(audit_records.c.site == site)
            .order_by(audit_records.c.seq)
        )
        with self._db.read() as conn:
            return [dict(r.record) for r in conn.execute(stmt).all()]

    # -- airlock -----------------------------------------------------------------------------------
    def hold(self, site: str, task_id: str, files: list[dict[str, Any]]) -> None:
        """The site holds these outputs of the task for review (again: no change)."""
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(airlock).values(task_id=task_id, site=site, files=files, held_at=now())
                )
        except IntegrityError:
            pass

    def held(self, sites_: list[str]) -> list[dict[str, Any]]:
        """Outputs waiting for a steward of these sites."""
        if not sites_:
            return []
        stmt = (
            select(airlock)
            .select_from(airlock.join(tasks, tasks.c.id == airlock.c.task_id))
            .where(
                airlock.c.site.in_(sites_),
                airlock.c.decision.is_(None),
                tasks.c.state.not_in([str(s) for s in State if s.terminal]),
            )
            .order_by(airlock.c.task_id)
        )
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            {
                "id": r.task_id,
                "site": r.site,
                "files": list(r.files),
                "held_at": r.held_at.isoformat(),
            }
            for r in rows
        ]

    def decide_outputs(self, task_id: str, decision: str, steward: str, reason: str) -> str:
        """Record a steward's decision on held outputs once; the task's site. Conflict if
        they are not held or decided already."""
        with self._db.write() as conn:
            row = conn.execute(
                select(airlock.c.site).where(airlock.c.task_id == task_id)
            ).one_or_none()
            done = conn.execute(
                update(airlock)
                .where(airlock.c.task_id == task_id, airlock.c.decision.is_(None))
                .values(decision=decision, decided_by=steward, reason=reason)
            )
            if row is None or done.rowcount != 1:
                raise Conflict(f"task {task_id} has no outputs waiting for a decision")
            return str(row.site)

    def output_decisions(self, site: str) -> list[dict[str, str]]:
        """Decisions on the site's held outputs whose tasks have not ended at the hub."""
        open_ = tasks.c.state.not_in([str(s) for s in State if s.terminal])
        return self._decided(airlock, site, open_)
