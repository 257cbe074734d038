"""A data site's agent: runs the site's own hub core (store, site, scheduler, backends,
runtimes) in this process and talks to the central hub outbound only.

Three loops (the protocol is in :mod:`toolferry.scheduler.sites`):

* heartbeat: capacity, execution-environment classification, datasets (metadata only) and
  policy, every few seconds;
* poll: take the tasks the hub hands out — each is checked against the site's policy and what
  the site can run, then stored here with its hub id (a task already here is only confirmed
  again) — and carry out the cancels users asked for;
* forward: every event of a task here goes to the hub, numbered; what the hub confirmed is
  kept in ``outbox.json`` beside the store, so after a cut link or a restart the agent resends
  from there and the hub applies each event once.

Tasks run here even while the hub cannot be reached; their events wait in the local store.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx

from toolferry import __version__
from toolferry.agent.site_config import SiteConfig
from toolferry.domain.environment import Review
from toolferry.domain.errors import InvalidTask, NotFound
from toolferry.domain.events import Event, EventKind
from toolferry.domain.rules import has_wildcard
from toolferry.domain.site_policy import (
    ImageFacts,
    Refusal,
    check_task,
    is_dataset_url,
    lowered_parameters,
    outputs_within,
    sealed,
)
from toolferry.domain.states import State
from toolferry.domain.task import FileType, Output, Resources, Task, spec_from_dict
from toolferry.hub import Hub
from toolferry.security.audit import AuditKind, AuditLog
from toolferry.security.identity import Identity
from toolferry.security.sealing import seal_file
from toolferry.storage.dataset import DatasetStorage
from toolferry.storage.hubremote import RemoteHubFiles

log = logging.getLogger(__name__)

_BACKOFF_MAX = 30.0


class HubLink:
    """The agent's HTTP calls to the hub, with its enrolment token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        read_timeout: float = 40,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``read_timeout``: longer than a long-poll lasts (20 s), short enough that a
        connection whose link died silently is given up soon."""
        self.url = url.rstrip("/")
        self.token = token
        self._client = httpx.Client(
            base_url=self.url,
            headers={
                "authorization": f"Bearer {token}",
                "user-agent": f"toolferry-agent/{__version__}",
            },
            timeout=httpx.Timeout(10, read=read_timeout),
            transport=transport,
        )

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self._client.post(path, json=body)
        if answer.status_code == 401:
            raise PermissionError("the hub refused this agent's token: enrol the site again")
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def close(self) -> None:
        self._client.close()


class Ledger:
    """A small JSON object on disk (task id → value), replaced atomically on every change:
    what the agent must remember across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._items: dict[str, Any] = dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            self._items = {}

    def pending(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._items)

    def track(self, task_id: str, value: Any) -> None:
        """Remember ``value`` for the task unless it has one."""
        with self._lock:
            if task_id not in self._items:
                self._items[task_id] = value
                self._save()

    def put(self, task_id: str, value: Any) -> None:
        with self._lock:
            self._items[task_id] = value
            self._save()

    def update(self, values: dict[str, Any], *, forget: Collection[str] = ()) -> None:
        """Set the values of tasks already remembered; forget ``forget``."""
        with self._lock:
            for task_id, value in values.items():
                if task_id in self._items:
                    self._items[task_id] = value
            for task_id in forget:
                self._items.pop(task_id, None)
            self._save()

    def forget(self, task_id: str) -> None:
        self.update({}, forget={task_id})

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._items))
        os.replace(tmp, self.path)


class Agent:
    def __init__(
        self,
        config: SiteConfig,
        link: HubLink,
        *,
        heartbeat_s: float = 5.0,
        poll_wait_s: float = 20.0,
    ) -> None:
        self.config = config
        self.link = link
        self.heartbeat_s = heartbeat_s
        self.poll_wait_s = poll_wait_s
        # hub:// inputs and outputs (files users sent with their tasks) go through the hub.
        self.hub_files = RemoteHubFiles(link.url, link.token)
        # Outputs under review wait in the airlock folder, which tasks may write as file://.
        self.airlock_dir = config.data_dir / "airlock"
        settings = config.settings.model_copy(
            update={
                "data_dir": config.data_dir,
                "file_allowed_dirs": [*config.settings.file_allowed_dirs, self.airlock_dir],
            }
        )
        self.core = Hub(
            settings, storages=[DatasetStorage(config.name, config.datasets), self.hub_files]
        )
        # Events the hub has, per task; tasks held for approval; what the audit log recorded.
        self.outbox = Ledger(config.data_dir / "outbox.json")
        self.pending = Ledger(config.data_dir / "approvals.json")
        self.audited = Ledger(config.data_dir / "audited.json")
        self.airlock = Ledger(config.data_dir / "airlock.json")  # task → its real outputs
        self.audit = AuditLog(config.data_dir / "audit.log", config.name)
        self._audit_shipped = 0
        self._confirm: set[str] = set()
        self._stop = threading.Event()
        self.refused = threading.Event()  # the hub refused the token: nothing more to do
        self._wake_forward = threading.Event()
        self._threads: list[threading.Thread] = []
        self.core.store.subscribe(self._observe)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.core.start()
        for name, loop in (
            ("heartbeat", self._heartbeat_loop),
            ("poll", self._poll_loop),
            ("forward", self._forward_loop),
        ):
            thread = threading.Thread(
                target=self._forever(name, loop), name=f"agent-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake_forward.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.core.close()
        self.audit.close()
        self.hub_files.close()
        self.link.close()

    def _observe(self, task: Task) -> None:
        """Audit each task's start (with the datasets it reads) and end, once each."""
        self._wake_forward.set()
        seen = self.audited.pending().get(task.id)
        if task.state is State.RUNNING and seen is None:
            self.audited.track(task.id, "started")
            self.audit.append(AuditKind.TASK_START, task_id=task.id, actor=task.owner, details={})
            for inp in task.spec.inputs:
                if is_dataset_url(inp.url):
                    self.audit.append(
                        AuditKind.DATA_ACCESS,
                        task_id=task.id,
                        actor=task.owner,
                        details={"url": inp.url, "path": inp.path, "mode": "read-only"},
                    )
        elif task.state.terminal and seen != "ended":
            self.audited.put(task.id, "ended")
            kind = AuditKind.ERROR if task.state is State.SYSTEM_ERROR else AuditKind.TASK_END
            reason = (
                task.logs[-1].system_logs[-1] if task.logs and task.logs[-1].system_logs else ""
            )
            self.audit.append(
                kind,
                task_id=task.id,
                actor=task.owner,
                details={"state": str(task.state), "reason": reason},
            )

    def _forever(self, name: str, step: Callable[[], None]) -> Callable[[], None]:
        """Run ``step`` until stopped; back off while the hub cannot be reached."""

        def run() -> None:
            delay = 0.5
            while not self._stop.is_set():
                try:
                    step()
                    delay = 0.5
                except PermissionError:
                    log.critical("the hub refused this agent's token; stopping %s", name)
                    self.refused.set()
                    return
                except (httpx.HTTPError, OSError) as exc:
                    log.warning(
                        "%s: the hub cannot be reached (%s); again in %.1f s", name, exc, delay
                    )
                    self._stop.wait(delay)
                    delay = min(delay * 2, _BACKOFF_MAX)
                except Exception:
                    log.exception("%s failed; again in %.1f s", name, delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, _BACKOFF_MAX)

        return run

    # -- heartbeat ---------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """What the hub may know of this site: never a dataset's path or who may use it."""
        core = self.core
        environment = core.execution_environments()[0]
        policy = self.config.policy
        return {
            "capacity": {
                name: {"cpu_cores": cap.cpus, "ram_gb": cap.ram_gb}
                for name, cap in core.site.capacities.items()
            },
            "classification": _jsonable(asdict(environment)),
            "datasets": [d.metadata() for d in self.config.datasets.values()],
            "policy": {
                "require_approval": policy.require_approval,
                "output_review": policy.output_review,
                "max_output_bytes": policy.max_output_bytes,
                "restricts_images": policy.restricts_images,
                "stewards": sorted(policy.stewards),
            },
            "version": __version__,
        }

    def _heartbeat_loop(self) -> None:
        self.link.call("/api/v1/agent/heartbeat", self.report())
        self._stop.wait(self.heartbeat_s)

    # -- taking work -------------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        confirm = sorted(self._confirm)
        answer = self.link.call(
            "/api/v1/agent/poll", {"confirm": confirm, "wait_s": self.poll_wait_s}
        )
        self._confirm -= set(confirm)
        for doc in answer.get("tasks", []):
            self.take(doc)
            self._confirm.add(str(doc["id"]))
        for task_id in answer.get("cancel", []):
            self.cancel(str(task_id))
        for decision in answer.get("decisions", []):
            self.decide(decision)
        for decision in answer.get("outputs", []):
            self.release(decision)

    def take(self, doc: dict[str, Any]) -> None:
        """Store a task the hub handed out, hold it for a steward's approval, or refuse it
        saying why (idempotent)."""
        task_id = str(doc["id"])
        if self._known(task_id) or task_id in self.pending.pending():
            return  # handed out again before our confirmation arrived
        try:
            spec = lowered_parameters(spec_from_dict(doc["spec"]))
        except InvalidTask as exc:
            self._refuse(task_id, [Refusal(field=exc.field, message=exc.message)])
            return
        who = _caller(doc)
        refusals = check_task(
            spec, who, self.config.policy, self.config.datasets, self.config.name, _images(doc)
        )
        if refusals:
            self._refuse(task_id, refusals)
            return
        if self.config.policy.require_approval:
            self.pending.track(task_id, doc)
            self.audit.append(
                AuditKind.APPROVAL,
                task_id=task_id,
                actor="agent",
                details={"decision": "awaiting", "owner": who.user},
            )
            log.info("task %s of %s waits for a steward's approval", task_id, who.user)
            return
        self._store(doc)

    def decide(self, decision: dict[str, str]) -> None:
        """Carry out a steward's decision on a task held for approval (idempotent)."""
        task_id, steward = decision["id"], decision["steward"]
        doc = self.pending.pending().get(task_id)
        if doc is None:
            return  # carried out already, or not held here
        if not self.config.policy.is_steward(steward):
            log.warning(
                "ignoring a decision on task %s by %s, who is no steward here", task_id, steward
            )
            return
        approved = decision["decision"] == "approved"
        self.audit.append(
            AuditKind.APPROVAL,
            task_id=task_id,
            actor=steward,
            details={"decision": decision["decision"], "reason": decision.get("reason", "")},
        )
        if approved:
            self._store(doc)
        else:
            reason = f"rejected by {steward}, steward of site {self.config.name}: {decision.get('reason', '')}"
            event = Event.state(task_id, State.CANCELED, reason)
            self.link.call("/api/v1/agent/events", {"tasks": [_batch(task_id, 2, [event])]})
        self.pending.forget(task_id)

    def _known(self, task_id: str) -> bool:
        try:
            self.core.store.get(task_id)
        except NotFound:
            return False
        return True

    def _store(self, doc: dict[str, Any]) -> None:
        """Admit the task as this site runs it and store it here, where it runs."""
        task_id = str(doc["id"])
        spec = lowered_parameters(spec_from_dict(doc["spec"]))
        who = _caller(doc)
        # Dataset inputs are read where they lie, mounted read-only; never copied.
        inputs = tuple(
            replace(i, streamable=True) if is_dataset_url(i.url) else i for i in spec.inputs
        )
        params = dict((spec.resources.backend_parameters if spec.resources else None) or {})
        params.pop("site", None)
        seal_to = doc.get("public_key") if sealed(spec) else None
        params.pop("encrypt_outputs", None)
        if any(is_dataset_url(i.url) for i in spec.inputs):
            params["network"] = "none"  # whatever the policy check said: data stays put
        outputs = spec.outputs
        held = bool(self.config.policy.output_review or seal_to)
        if held and outputs:
            outputs = tuple(
                replace(o, url=self._airlock_url(task_id, i, o)) for i, o in enumerate(outputs)
            )
        local = replace(
            spec,
            inputs=inputs,
            outputs=outputs,
            resources=replace(spec.resources or Resources(), backend_parameters=params or None),
        )
        try:
            admitted, notes = self.core.site.admission.admit(local, who)
        except InvalidTask as exc:
            self._refuse(task_id, [Refusal(field=exc.field, message=exc.message)])
            return
        task = Task(
            id=task_id,
            owner=who.user,
            spec=admitted,
            creation_time=datetime.fromisoformat(doc["creation_time"]),
            notes=tuple(notes),
        )
        self.outbox.track(task_id, 1)  # the hub has its QUEUED already
        if held:
            # Held in the airlock (outputs and executor logs): for a steward's review, or to
            # be sealed before they leave.
            self.airlock.put(
                task_id,
                {
                    "outputs": [asdict(o) for o in spec.outputs],
                    "review": self.config.policy.output_review,
                    "seal_to": seal_to,
                },
            )
        self.core.store.create(task)
        log.info("took task %s of %s", task_id, who.user)

    def _refuse(self, task_id: str, refusals: list[Refusal]) -> None:
        reason = f"refused by site {self.config.name}: " + "; ".join(str(r) for r in refusals)
        log.info("task %s %s", task_id, reason)
        self.audit.append(
            AuditKind.POLICY_REFUSAL,
            task_id=task_id,
            actor="agent",
            details={"reason": reason},
        )
        event = Event.state(task_id, State.SYSTEM_ERROR, reason)
        self.link.call("/api/v1/agent/events", {"tasks": [_batch(task_id, 2, [event])]})

    def cancel(self, task_id: str) -> None:
        try:
            task = self.core.store.get(task_id)
        except NotFound:
            # Never stored here (refused, held for approval, or lost before it was): end it
            # at the hub, and forget it, so that an approval arriving now cannot start it.
            self.pending.forget(task_id)
            self.audit.append(
                AuditKind.TASK_END, task_id=task_id, actor="agent", details={"state": "CANCELED"}
            )
            event = Event.state(task_id, State.CANCELED, "canceled by the user")
            self.link.call("/api/v1/agent/events", {"tasks": [_batch(task_id, 2, [event])]})
            return
        held = self.airlock.pending().get(task_id)
        if held is not None and not held.get("released") and task.state in _REVIEWED:
            # Ended here, its outputs waiting for review: they never leave; the task ends.
            self.audit.append(
                AuditKind.OUTPUT_REJECT,
                task_id=task_id,
                actor=task.owner,
                details={"reason": "canceled by the user"},
            )
            acked = int(self.outbox.pending().get(task_id, task.version - 1))
            ending = [
                Event.state(task_id, State.CANCELING),
                Event.state(
                    task_id, State.CANCELED, "canceled by the user; its outputs never left the site"
                ),
            ]
            self.link.call("/api/v1/agent/events", {"tasks": [_batch(task_id, acked + 1, ending)]})
            self.outbox.update({}, forget={task_id})
            self.airlock.forget(task_id)
            return
        self.core.site.cancel(task)

    # -- events back -------------------------------------------------------------------------------
    def _forward_loop(self) -> None:
        self._wake_forward.wait(2.0)
        self._wake_forward.clear()
        self.forward()

    # -- the airlock ---------------------------------------------------------------------------
    def _airlock_url(self, task_id: str, index: int, output: Output) -> str:
        folder = self.airlock_dir / task_id / str(index)
        if output.type is FileType.DIRECTORY or has_wildcard(output.path):
            return folder.as_uri()
        return (folder / PurePosixPath(output.path).name).as_uri()

    def _report_held(self, task: Task) -> None:
        """Tell the hub (once) which outputs wait for review, with their sizes."""
        entry = self.airlock.pending()[task.id]
        if entry.get("reported"):
            return
        root = self.airlock_dir / task.id
        files = [
            {"path": str(p.relative_to(root)), "size": p.stat().st_size}
            for p in sorted(root.rglob("*"))
            if p.is_file()
        ]
        # What the executors printed leaves with the outputs, so the steward sees it too.
        for i, entry_log in enumerate(task.logs[-1].logs if task.logs else ()):
            for stream in ("stdout", "stderr"):
                text = getattr(entry_log, stream) or ""
                if text:
                    files.append({"path": f"executor {i} {stream}", "size": len(text.encode())})
        self.link.call("/api/v1/agent/outputs", {"task_id": task.id, "files": files})
        self.airlock.put(task.id, {**entry, "reported": True, "files": files})

    def release(self, decision: dict[str, str]) -> None:
        """Carry out a steward's decision on held outputs (idempotent)."""
        task_id, steward = decision["id"], decision["steward"]
        entry = self.airlock.pending().get(task_id)
        if entry is None or not entry.get("reported"):
            return
        if not self.config.policy.is_steward(steward):
            log.warning(
                "ignoring a decision on outputs of %s by %s, who is no steward here",
                task_id,
                steward,
            )
            return
        task = self.core.store.get(task_id)
        reason = decision.get("reason", "")
        if decision["decision"] == "released":
            refusal = outputs_within(
                [int(f["size"]) for f in entry.get("files", [])], self.config.policy
            )
            if refusal is None:
                self._send_held(task, entry)
                self.audit.append(
                    AuditKind.OUTPUT_RELEASE,
                    task_id=task_id,
                    actor=steward,
                    details={"files": len(entry.get("files", [])), "reason": reason},
                )
                self._wake_forward.set()
                return
            reason = str(refusal)
        self.audit.append(
            AuditKind.OUTPUT_REJECT, task_id=task_id, actor=steward, details={"reason": reason}
        )
        end = Event.state(
            task_id,
            State.SYSTEM_ERROR,
            f"outputs kept at site {self.config.name} by {steward}: {reason}",
        )
        # Right after what the hub has: the held stage-out is never sent, nothing left.
        acked = int(self.outbox.pending().get(task_id, task.version - 1))
        self.link.call("/api/v1/agent/events", {"tasks": [_batch(task_id, acked + 1, [end])]})
        self.outbox.update({}, forget={task_id})
        self.airlock.forget(task_id)

    def _send_held(self, task: Task, entry: dict[str, Any]) -> None:
        """Send each held output to where the task asked for it, sealed to the owner's key
        when the task asked for that; then let its stage-out and end go to the hub, naming
        where the outputs went."""
        lookup = self.core.site.credentials.for_owner(task.owner)
        seal_to = entry.get("seal_to")
        for i, data in enumerate(entry["outputs"]):
            url = str(data["url"])
            source = Path(urlsplit(task.spec.outputs[i].url).path)  # where the airlock has it
            if not source.exists():
                continue  # a wildcard that matched nothing, an output never written
            if seal_to:
                files = (
                    [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
                )
                for path in files:
                    seal_file(path, str(seal_to))
            self.core.site.storage.put(
                source, url, directory=source.is_dir(), credential=lookup(url)
            )
        self.airlock.put(task.id, {**entry, "released": True})

    def ship_audit(self) -> None:
        """Send the audit records the hub lacks; it refuses (409) records that do not continue
        its copy, which is how a log rewritten at the site shows."""
        records = [r.to_dict() for r in self.audit.records(after_seq=self._audit_shipped)]
        if not records:
            return
        try:
            answer = self.link.call("/api/v1/agent/audit", {"records": records})
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 409:
                raise
            log.error("the hub refused this site's audit records: %s", exc.response.text)
            return
        self._audit_shipped = int(answer["seq"])

    def forward(self) -> int:
        """Send every event the hub lacks; how many were sent. A task is forgotten once it
        ended and the hub has all its events, judged on one snapshot of it taken before
        sending (it may end while the answer travels)."""
        batches = []
        sent: dict[str, int] = {}  # events of each task as sent
        ended: set[str] = set()  # tasks that had ended when looked at
        done: set[str] = set()  # ... and that the hub had entirely already
        airlock = self.airlock.pending()
        for task_id, acked in self.outbox.pending().items():
            task = self.core.store.get(task_id)
            events = self.core.store.events(task_id)[: task.version]
            entry = airlock.get(task_id)
            upto = task.version
            if entry is not None and not entry.get("released"):
                # Stage-out and the end wait for a steward's look at the outputs.
                upto = next(
                    (i for i, e in enumerate(events) if e.kind in _HELD_FROM),
                    upto - 1 if task.state in _REVIEWED else upto,
                )
                if task.state in _REVIEWED and entry.get("review"):
                    self._report_held(task)
                elif task.state in _REVIEWED:
                    self._send_held(task, entry)  # sealed, with no review: at once
                    entry = self.airlock.pending()[task_id]
                    events = _released(events, task, entry)
                    upto = task.version
            elif entry is not None:
                events = _released(events, task, entry)
            sent[task_id] = upto
            if task.state.terminal and upto == task.version:
                ended.add(task_id)
            if upto > acked:
                batches.append(_batch(task_id, acked + 1, events[acked:upto]))
            elif task_id in ended:
                done.add(task_id)
        self.ship_audit()
        if not batches:
            if done:
                self.outbox.update({}, forget=done)
            return 0
        answer = self.link.call("/api/v1/agent/events", {"tasks": batches})
        hub = {str(k): int(v) for k, v in answer.get("versions", {}).items()}
        done |= {t for t, v in hub.items() if t in ended and v == sent.get(t)}
        self.outbox.update(hub, forget=done)
        for task_id in done & set(airlock):
            self.airlock.forget(task_id)
        return sum(len(b["events"]) for b in batches)


def _batch(task_id: str, first_seq: int, events: list[Event]) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "first_seq": first_seq,
        "events": [
            {"kind": str(e.kind), "time": e.time.isoformat(), "data": _json(e.data)} for e in events
        ],
    }


def _json(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def _images(doc: dict[str, Any]) -> dict[int, ImageFacts]:
    facts = {}
    for key, value in (doc.get("images") or {}).items():
        facts[int(key)] = ImageFacts(
            digest=value["digest"],
            entry=value["entry"],
            publisher=value["publisher"],
            review=Review(value["review"]),
        )
    return facts


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _caller(doc: dict[str, Any]) -> Identity:
    return Identity(user=str(doc["owner"]), groups=frozenset(doc.get("groups", [])))


def _released(events: list[Event], task: Task, entry: dict[str, Any]) -> list[Event]:
    """``events`` with each held output's airlock URL replaced by where it was released to."""
    moved = [
        (o.url, str(d["url"])) for o, d in zip(task.spec.outputs, entry["outputs"], strict=True)
    ]
    kept = f"(kept at the site: the task's results are sealed to {task.owner})"
    result = []
    for event in events:
        if event.kind is EventKind.EXECUTOR_FINISHED and entry.get("seal_to"):
            # What the executors printed is a result too: it stays at the site.
            event = replace(event, data={**event.data, "stdout": kept, "stderr": kept})
        url = event.data.get("url") if event.kind is EventKind.OUTPUT_UPLOADED else None
        for local, real in moved:
            if isinstance(url, str) and (url == local or url.startswith(local.rstrip("/") + "/")):
                event = replace(event, data={**event.data, "url": real + url[len(local) :]})
                break
        result.append(event)
    return result


_REVIEWED = frozenset({State.COMPLETE, State.EXECUTOR_ERROR})  # ends whose outputs are reviewed
# Held in the airlock from the first of these: executor logs, outputs, the end.
_HELD_FROM = frozenset({EventKind.EXECUTOR_FINISHED, EventKind.OUTPUT_UPLOADED})
