"""Data sites at the hub: enrolment, routing tasks to a site, and the agent's side of the
protocol (heartbeats, long-polled hand-out, events back, cancel requests).

The protocol, outbound from the site only (the agent calls; the hub never does):

* ``heartbeat``: the agent reports its capacity, execution-environment classification,
  datasets (metadata only) and policy; a site not heard from for ``offline_after`` is offline
  (its tasks stay QUEUED).
* ``poll`` (long-poll): the hub hands out the site's QUEUED tasks and the cancels users asked
  for; the agent confirms on its next poll the tasks it stored. Unconfirmed tasks are handed
  out again (the agent may have lost them), so nothing is lost; the agent ignores a task it
  has, so nothing runs twice.
* ``events``: the agent sends each task's events from its own store, numbered; the hub appends
  those it lacks (:meth:`SqlTaskStore.append_from`), so a batch sent twice after a cut link is
  applied once. Once handed out, only the agent writes a task's events.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from toolferry.domain.errors import Conflict, InvalidTask, InvalidTransition, NotFound
from toolferry.domain.events import Event, EventKind, now
from toolferry.domain.limits import TimeLimits
from toolferry.domain.rules import has_wildcard
from toolferry.domain.site_policy import (
    BadDatasetUrl,
    DatasetUrl,
    check_site_name,
    is_dataset_url,
    lowered_parameters,
    sealed,
)
from toolferry.domain.states import State
from toolferry.domain.task import FileType, Resources, Task, TaskSpec
from toolferry.security.audit import AuditRecord, continue_from
from toolferry.security.identity import Identity
from toolferry.store.keys import SqlKeyStore
from toolferry.store.sites import SiteRecord, SqlSiteStore
from toolferry.store.sql import SqlTaskStore


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def site_of(spec: TaskSpec) -> str | None:
    """The data site a task must run at: named by its dataset:// inputs (all the same) or by
    the backend parameter ``site``; None: the hub's own site. InvalidTask if they disagree."""
    named: dict[str, str] = {}
    asked = spec.backend_parameter("site")
    if asked:
        named["resources.backend_parameters.site"] = asked
    for i, inp in enumerate(spec.inputs):
        if inp.content is None and is_dataset_url(inp.url):
            named[f"inputs[{i}].url"] = _parse(f"inputs[{i}].url", inp.url or "").site
    for i, out in enumerate(spec.outputs):
        if is_dataset_url(out.url):
            raise InvalidTask(f"outputs[{i}].url", "outputs are never written to a dataset")
    sites = set(named.values())
    if len(sites) > 1:
        raise InvalidTask(
            next(iter(named)),
            "a task runs at one site, but these name several: "
            + ", ".join(f"{field} → {site}" for field, site in named.items()),
        )
    return sites.pop() if sites else None


def _parse(field: str, url: str) -> DatasetUrl:
    try:
        return DatasetUrl.parse(url)
    except BadDatasetUrl as exc:
        raise InvalidTask(field, str(exc)) from None


CANCEL_REPEAT_S = 10.0
_OPEN = frozenset(s for s in State if not s.terminal)


@dataclass(frozen=True, kw_only=True)
class Handout:
    tasks: list[Task]
    cancel: list[str]
    decisions: list[dict[str, str]]
    outputs: list[dict[str, str]]  # stewards' decisions on held outputs


class SiteService:
    def __init__(
        self,
        sites: SqlSiteStore,
        tasks: SqlTaskStore,
        keys: SqlKeyStore,
        *,
        offline_after: timedelta = timedelta(seconds=30),
        redeliver_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self.sites = sites
        self.tasks = tasks
        self.keys = keys
        self.offline_after = offline_after
        self.redeliver_after = redeliver_after
        self._changed = threading.Condition()
        self._cancels_sent: dict[str, float] = {}  # task id → when last sent to its agent
        tasks.subscribe(self._on_change)

    def _on_change(self, task: Task) -> None:
        if task.spec.backend_parameter("site"):
            self._wake()

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- operators -------------------------------------------------------------------------------
    def enrol(self, name: str, description: str = "") -> tuple[SiteRecord, str]:
        """Register a site; return it and its enrolment token (shown once)."""
        check_site_name(name)
        token = "tfs_" + secrets.token_urlsafe(32)
        return self.sites.add(name, description, token_hash(token)), token

    def online(self, record: SiteRecord) -> bool:
        return record.seen_at is not None and now() - record.seen_at <= self.offline_after

    # -- submission ------------------------------------------------------------------------------
    def route(self, spec: TaskSpec, who: Identity) -> TaskSpec | None:
        """``spec`` bound to the data site it must run at (backend parameter ``site``), or
        None for the hub's own site. InvalidTask for an unknown site or dataset."""
        spec = lowered_parameters(spec)
        name = site_of(spec)
        if name is None:
            return None
        value = (spec.backend_parameter("encrypt_outputs") or "false").strip().lower()
        if value not in ("true", "false"):
            raise InvalidTask(
                "resources.backend_parameters.encrypt_outputs",
                f"must be true or false, got {value!r}",
            )
        try:
            record = self.sites.get(name)
        except NotFound:
            field = next(
                (
                    f"inputs[{i}].url"
                    for i, inp in enumerate(spec.inputs)
                    if is_dataset_url(inp.url)
                ),
                "resources.backend_parameters.site",
            )
            raise InvalidTask(field, f"no site {name!r} is enrolled at this hub") from None
        datasets = {d.get("name") for d in record.info.get("datasets", [])}
        for i, inp in enumerate(spec.inputs):
            if inp.content is None and is_dataset_url(inp.url):
                dataset = _parse(f"inputs[{i}].url", inp.url or "").dataset
                if record.seen_at is not None and dataset not in datasets:
                    raise InvalidTask(
                        f"inputs[{i}].url",
                        f"site {name} has no dataset {dataset!r}; it has: "
                        + (", ".join(sorted(d for d in datasets if d)) or "none"),
                    )
        params = dict((spec.resources.backend_parameters if spec.resources else None) or {})
        params["site"] = name
        if sealed(spec) and self.keys.get(who.user) is None:
            raise InvalidTask(
                "resources.backend_parameters.encrypt_outputs",
                f"user {who.user} has no public key to seal results to: run `toolferry keys "
                "create` first",
            )
        resources = replace(spec.resources or Resources(), backend_parameters=params)
        return replace(spec, resources=resources)

    def cancel(self, task: Task) -> Task | None:
        """Cancel a task bound to a data site: at once while the hub still holds it, else as a
        request its agent carries out (None: not a site's task)."""
        if not task.spec.backend_parameter("site"):
            return None
        if task.state.terminal:
            return task
        site = str(task.spec.backend_parameter("site"))
        if task.state is State.QUEUED and self.sites.withhold(task.id, site):
            try:
                return self.tasks.append(
                    Event.state(task.id, State.CANCELED, "canceled by the user")
                )
            except InvalidTransition:
                return self.tasks.get(task.id)  # it ended meanwhile
        self.sites.request_cancel(task.id)
        return self.tasks.get(task.id)

    # -- agents ------------------------------------------------------------------------------------
    def authenticate(self, token: str) -> SiteRecord | None:
        return self.sites.by_token(token_hash(token))

    def heartbeat(self, site: str, info: dict[str, Any]) -> None:
        self.sites.report(site, info)

    def poll(self, site: str, *, confirm: list[str], wait_s: float, limit: int = 32) -> Handout:
        """What the agent should do now: tasks to take and cancels to carry out; waits up to
        ``wait_s`` for some to appear."""
        self.sites.confirm(site, confirm)
        deadline = now() + timedelta(seconds=wait_s)
        while True:
            handed = self.sites.hand_out(site, limit=limit, redeliver_after=self.redeliver_after)
            cancels = self._due(self.sites.cancel_requests(site))
            decisions = self.sites.decisions(site)
            outputs = self.sites.output_decisions(site)
            left = (deadline - now()).total_seconds()
            if handed or cancels or decisions or outputs or left <= 0:
                return Handout(tasks=handed, cancel=cancels, decisions=decisions, outputs=outputs)
            with self._changed:
                # Tasks queued by another replica wake nobody here: look again within 1 s.
                self._changed.wait(min(left, 1.0))

    def _due(self, cancels: list[str]) -> list[str]:
        """Cancel requests to send now: each again only after CANCEL_REPEAT_S (the agent
        carries one out and reports; repeating it at once would only spin)."""
        at = time.monotonic()
        due = [
            t
            for t in cancels
            if at - self._cancels_sent.get(t, -CANCEL_REPEAT_S) >= CANCEL_REPEAT_S
        ]
        for task_id in due:
            self._cancels_sent[task_id] = at
        for task_id in set(self._cancels_sent) - set(cancels):
            del self._cancels_sent[task_id]
        return due

    def receive(self, site: str, batches: list[dict[str, Any]]) -> dict[str, int]:
        """Append the events of each task the agent sent; return how many events the hub has
        of each (the agent resends from there)."""
        versions: dict[str, int] = {}
        for batch in batches:
            task_id = str(batch["task_id"])
            try:
                task = self.tasks.get(task_id)
            except NotFound:
                continue
            if task.spec.backend_parameter("site") != site:
                continue  # not this site's task: say nothing about it
            events = [
                Event(
                    task_id=task_id,
                    kind=EventKind(e["kind"]),
                    data=dict(e["data"]),
                    time=datetime.fromisoformat(e["time"]),
                )
                for e in batch["events"]
            ]
            try:
                if events:
                    task = self.tasks.append_from(int(batch["first_seq"]), events)
            except (Conflict, InvalidTransition, KeyError, TypeError, ValueError):
                # A gap, or events this task cannot take: the hub keeps what it has and says
                # how far that is, so the agent resends from there.
                task = self.tasks.get(task_id)
            versions[task_id] = task.version
        return versions

    def may_transfer(self, site: str, url: str, *, write: bool) -> bool:
        """Whether the site's agent may read (an input) or write (an output) ``url`` of the
        hub's file store: only for a task of that site, not ended, that names it (or a
        folder above it)."""
        for task in self.tasks.in_states(_OPEN, limit=100_000, site=site):
            # (url, whether files below it count: a DIRECTORY, or a wildcard's folder)
            named = (
                [
                    (o.url, o.type is FileType.DIRECTORY or has_wildcard(o.path))
                    for o in task.spec.outputs
                ]
                if write
                else [
                    (i.url, i.type is FileType.DIRECTORY)
                    for i in task.spec.inputs
                    if i.url and i.content is None
                ]
            )
            for named_url, folder in named:
                if url == named_url or (folder and url.startswith(named_url.rstrip("/") + "/")):
                    return True
        return False

    # -- stewards ----------------------------------------------------------------------------------
    def stewarded_by(self, who: Identity) -> list[str]:
        """The sites whose reported policy names ``who`` a steward."""
        names = []
        for record in self.sites.all():
            stewards = (record.info.get("policy") or {}).get("stewards", [])
            if isinstance(stewards, list) and who.user in stewards:
                names.append(record.name)
        return names

    def approvals(self, who: Identity) -> list[tuple[str, Task]]:
        """(site, task) for each task waiting for a decision by ``who`` as a steward."""
        return [
            (str(t.spec.backend_parameter("site")), t)
            for t in self.sites.awaiting_decision(self.stewarded_by(who))
        ]

    def decide(self, task_id: str, who: Identity, *, approve: bool, reason: str) -> None:
        """A steward's decision on a task waiting at one of their sites; the site's agent
        carries it out (and checks again that ``who`` is its steward)."""
        task = self.tasks.get(task_id)
        site = task.spec.backend_parameter("site")
        if not site or site not in self.stewarded_by(who):
            raise NotFound(f"no task {task_id} waits for your decision")
        if not approve and not reason.strip():
            raise InvalidTask("reason", "say why the task is rejected: its owner reads it")
        self.sites.decide(task_id, "approved" if approve else "rejected", who.user, reason)
        self._wake()

    # -- audit -------------------------------------------------------------------------------------
    def receive_audit(self, site: str, records: list[dict[str, Any]]) -> tuple[int, str]:
        """Keep the records that continue the site's chain as the hub holds it; Conflict
        naming what is wrong when they do not. Returns the hub's head (seq, hash)."""
        head = self.sites.audit_head(site)
        try:
            parsed = [AuditRecord.from_dict(r) for r in records]
        except (TypeError, ValueError) as exc:
            raise InvalidTask("records", f"not an audit record: {exc}") from None
        if any(r.site != site for r in parsed):
            raise InvalidTask("records", f"records of another site than {site}")
        fresh = [r.to_dict() for r in parsed if r.seq > head[0]]
        if fresh:
            problems = continue_from(head, fresh)
            errors = [p for p in problems if not p.is_warning]
            if errors:
                raise Conflict(
                    f"the audit records of site {site} do not continue its log at the hub: "
                    + "; ".join(str(p) for p in errors)
                )
            self.sites.add_audit(site, fresh)
        return self.sites.audit_head(site)

    # -- airlock -----------------------------------------------------------------------------------
    def hold(self, site: str, task_id: str, files: list[dict[str, Any]]) -> None:
        task = self.tasks.get(task_id)
        if task.spec.backend_parameter("site") != site:
            raise NotFound(f"no task {task_id} at site {site}")
        self.sites.hold(site, task_id, files)

    def held_outputs(self, who: Identity) -> list[dict[str, Any]]:
        return self.sites.held(self.stewarded_by(who))

    def decide_outputs(self, task_id: str, who: Identity, *, release: bool, reason: str) -> None:
        """A steward releases or rejects a task's held outputs; the agent carries it out."""
        held = {h["id"]: h for h in self.held_outputs(who)}
        if task_id not in held:
            raise NotFound(f"no outputs of task {task_id} wait for your decision")
        if not release and not reason.strip():
            raise InvalidTask(
                "reason", "say why the outputs are rejected: the task's owner reads it"
            )
        self.sites.decide_outputs(task_id, "released" if release else "rejected", who.user, reason)
        self._wake()

    # -- time limits -------------------------------------------------------------------------------
    def end_overdue(self, limits: TimeLimits) -> int:
        """End in SYSTEM_ERROR every task still waiting at the hub for its site (not handed
        out: the site is offline, or busy) past its queue time limit; how many."""
        ended = 0
        at = now()
        for record in self.sites.all():
            for task in self.tasks.in_states(frozenset({State.QUEUED}), site=record.name):
                reason = limits.overdue_in_queue(task, at)
                if reason is None or not self.sites.withhold(task.id, record.name):
                    continue
                if not self.online(record):
                    reason += f"; site {record.name} is offline"
                try:
                    self.tasks.append(Event.state(task.id, State.SYSTEM_ERROR, reason))
                    ended += 1
                except InvalidTransition:
                    pass
        return ended
