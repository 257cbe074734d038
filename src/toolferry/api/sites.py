"""Data sites (/api/v1/sites) for users and operators, and the agent protocol
(/api/v1/agent/*) that site agents call with their enrolment token (see
:mod:`toolferry.scheduler.sites`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, Field

from toolferry.api import errors
from toolferry.api.files import receive_file, send_file
from toolferry.api.schemas import ErrorOut
from toolferry.api.tes import Who
from toolferry.domain.errors import Forbidden, InvalidTask, NotFound
from toolferry.domain.events import EventKind
from toolferry.domain.site_policy import sealed
from toolferry.domain.task import Task
from toolferry.scheduler.sites import SiteService
from toolferry.security.audit import verify
from toolferry.security.identity import Identity
from toolferry.security.sealing import SealingError, check_public_key
from toolferry.storage.hubfiles import NoSuchSpace, hub_url
from toolferry.store import codec
from toolferry.store.sites import SiteRecord

__all__ = ["install"]

_ERROR: dict[str, Any] = {"model": ErrorOut}
ADMIN = Identity(user="hub", admin=True)  # reads catalogue facts on a site's behalf
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="toolferry-agent"'}


class SiteIn(BaseModel):
    name: str = Field(description="1-63 lower-case letters, digits and dashes.")
    description: str = ""


class EnrolledOut(BaseModel):
    name: str
    token: str = Field(description="The agent's enrolment token; shown this once.")


class KeyIn(BaseModel):
    public_key: str = Field(description="base64 of a 32-byte X25519 public key")


class DatasetMeta(BaseModel):
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=4096)


class PolicyMeta(BaseModel):
    """What a site tells the hub of its policy (it enforces it itself)."""

    require_approval: bool = False
    output_review: bool = False
    max_output_bytes: int | None = Field(default=None, ge=0)
    restricts_images: bool = False
    stewards: list[str] = Field(default_factory=list)


class HeartbeatIn(BaseModel):
    capacity: dict[str, Any] = Field(default_factory=dict)
    classification: dict[str, Any] = Field(default_factory=dict)
    datasets: list[DatasetMeta] = Field(
        default_factory=list, description="Metadata only: name, description."
    )
    policy: PolicyMeta = Field(default_factory=PolicyMeta)
    version: str = ""


class PollIn(BaseModel):
    confirm: list[str] = Field(default_factory=list, description="Tasks the agent now holds.")
    wait_s: float = Field(default=20, ge=0, le=60)


class EventIn(BaseModel):
    kind: EventKind
    time: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)


class EventBatch(BaseModel):
    task_id: str = Field(max_length=32)
    first_seq: int = Field(ge=1, description="The number of the first event in the task.")
    events: list[EventIn]


class EventsIn(BaseModel):
    tasks: list[EventBatch] = Field(description="Per task, its events from first_seq on.")


class AuditIn(BaseModel):
    records: list[dict[str, Any]]


class HeldIn(BaseModel):
    task_id: str
    files: list[dict[str, Any]] = Field(description="path (in the task) and size of each")


class DecisionIn(BaseModel):
    reason: str = Field(default="", description="Why (required to reject).")


def _service(request: Request) -> SiteService:
    return request.app.state.hub.sites  # type: ignore[no-any-return]


Sites = Annotated[SiteService, Depends(_service)]


def _agent_site(request: Request, sites: Sites) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    record = sites.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if record is None:
        raise HTTPException(401, "a site's enrolment token is required", _CHALLENGE)
    return record.name


AgentSite = Annotated[str, Depends(_agent_site)]


def site_out(sites: SiteService, record: SiteRecord) -> dict[str, Any]:
    info = record.info
    return {
        "name": record.name,
        "description": record.description,
        "online": sites.online(record),
        "seen_at": record.seen_at.isoformat() if record.seen_at else None,
        "capacity": info.get("capacity", {}),
        "classification": info.get("classification", {}),
        "datasets": [
            {"name": d.get("name"), "description": d.get("description", "")}
            for d in info.get("datasets", [])
        ],
        "policy": info.get("policy", {}),
    }


def _image_facts(hub: Any, task: Task) -> dict[str, dict[str, str]]:
    """What the catalogue knows of each executor image that came from it, for site policies
    that allow images by publisher or review."""
    facts = {}
    for use in task.spec.environments:
        name, _, version = use.entry.rpartition(":")
        try:
            entry = hub.catalogue.get(name, int(version), ADMIN)
        except (NotFound, ValueError):
            continue
        facts[str(use.executor)] = {
            "digest": use.digest,
            "entry": use.entry,
            "publisher": entry.owner_id,
            "review": str(entry.review),
        }
    return facts


def router() -> APIRouter:
    api = APIRouter(tags=["sites"])

    @api.post(
        "/api/v1/sites",
        summary="Enrol a data site (admins)",
        response_model=EnrolledOut,
        responses={400: _ERROR, 401: _ERROR, 403: _ERROR, 409: _ERROR},
    )
    def enrol(body: SiteIn, who: Who, sites: Sites) -> dict[str, str]:
        """Registers a site and returns the token its agent connects with
        (`toolferry agent --hub URL --token T --config site.toml`)."""
        if not who.admin:
            raise Forbidden("only administrators enrol sites")
        record, token = sites.enrol(body.name, body.description)
        return {"name": record.name, "token": token}

    @api.get("/api/v1/sites", summary="List data sites", responses={401: _ERROR})
    def list_sites(who: Who, sites: Sites) -> list[dict[str, Any]]:
        """Every site: online or not, capacity, classification, and its datasets' metadata
        (the data never leaves the site)."""
        return [site_out(sites, r) for r in sites.sites.all()]

    @api.get("/api/v1/sites/{name}", summary="One data site", responses={401: _ERROR, 404: _ERROR})
    def get_site(name: str, who: Who, sites: Sites) -> dict[str, Any]:
        return site_out(sites, sites.sites.get(name))

    @api.put(
        "/api/v1/keys/me", summary="Register your public key", responses={400: _ERROR, 401: _ERROR}
    )
    def put_key(body: KeyIn, who: Who, request: Request) -> dict[str, str]:
        """Data sites seal the outputs of your tasks that set `encrypt_outputs=true` to this
        key (base64 X25519, as `toolferry keys create` makes); only your private key opens them."""
        try:
            key = check_public_key(body.public_key)
        except SealingError as exc:
            raise InvalidTask("public_key", str(exc)) from None
        request.app.state.hub.keys.put(who.user, key)
        return {"user": who.user, "public_key": key}

    @api.get("/api/v1/keys/me", summary="Your public key", responses={401: _ERROR, 404: _ERROR})
    def get_key(who: Who, request: Request) -> dict[str, str]:
        key = request.app.state.hub.keys.get(who.user)
        if key is None:
            raise NotFound(f"user {who.user} has registered no public key")
        return {"user": who.user, "public_key": key}

    @api.post("/api/v1/agent/heartbeat", summary="Agent: report the site", responses={401: _ERROR})
    def heartbeat(body: HeartbeatIn, site: AgentSite, sites: Sites) -> dict[str, Any]:
        sites.heartbeat(site, body.model_dump())
        return {"site": site, "offline_after_s": sites.offline_after.total_seconds()}

    @api.post("/api/v1/agent/poll", summary="Agent: take work (long-poll)", responses={401: _ERROR})
    def poll(body: PollIn, site: AgentSite, sites: Sites, request: Request) -> dict[str, Any]:
        """Tasks for the site (with their specs, the owner's groups and what the catalogue
        knows of their images) and cancels to carry out; waits up to `wait_s` seconds."""
        hub = request.app.state.hub
        handout = sites.poll(site, confirm=body.confirm, wait_s=body.wait_s)
        return {
            "tasks": [
                {
                    "id": t.id,
                    "owner": t.owner,
                    "groups": sorted(
                        g for g, members in hub.settings.groups.items() if t.owner in members
                    ),
                    "creation_time": t.creation_time.isoformat(),
                    "spec": codec.spec_to_json(t.spec),
                    "images": _image_facts(hub, t),
                    "public_key": hub.keys.get(t.owner) if sealed(t.spec) else None,
                }
                for t in handout.tasks
            ],
            "cancel": handout.cancel,
            "decisions": handout.decisions,
            "outputs": handout.outputs,
        }

    @api.post("/api/v1/agent/events", summary="Agent: send task events", responses={401: _ERROR})
    def events(body: EventsIn, site: AgentSite, sites: Sites) -> dict[str, Any]:
        """Appends each task's events the hub lacks; answers how many each task has."""
        return {"versions": sites.receive(site, [b.model_dump(mode="json") for b in body.tasks])}

    @api.post(
        "/api/v1/agent/audit",
        summary="Agent: ship audit records",
        responses={401: _ERROR, 409: _ERROR},
    )
    def audit_in(body: AuditIn, site: AgentSite, sites: Sites) -> dict[str, Any]:
        """Keeps the records that continue the site's audit chain as the hub holds it (409
        naming the break otherwise); answers the hub's head, from which the agent goes on."""
        seq, digest = sites.receive_audit(site, body.records)
        return {"seq": seq, "hash": digest}

    @api.get(
        "/api/v1/sites/{name}/audit",
        summary="A site's audit log, verified",
        responses={401: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def audit_out(name: str, who: Who, sites: Sites) -> dict[str, Any]:
        """The audit records the site shipped, and every problem the hash chain shows (an
        edited, removed or reordered record); for admins and the site's stewards."""
        sites.sites.get(name)
        if not (who.admin or name in sites.stewarded_by(who)):
            raise Forbidden("only administrators and the site's stewards read its audit log")
        records = sites.sites.audit(name)
        return {
            "site": name,
            "records": records,
            "problems": [str(p) for p in verify(records) if not p.is_warning],
        }

    @api.get(
        "/api/v1/agent/files/{space}/{path:path}",
        summary="Agent: read an input from the hub's file store",
        response_class=FileResponse,
        responses={401: _ERROR, 404: _ERROR},
    )
    def agent_download(
        space: str, path: str, site: AgentSite, sites: Sites, request: Request
    ) -> FileResponse:
        """Only files a task of the site names as an input (or inside one)."""
        if not sites.may_transfer(site, hub_url(space, path), write=False):
            raise HTTPException(404, f"no input of this site's tasks is {hub_url(space, path)}")
        return send_file(request.app.state.hub.files, space, path)

    @api.get(
        "/api/v1/agent/files/{space}",
        summary="Agent: list an input folder in the hub's file store",
        responses={401: _ERROR, 404: _ERROR},
    )
    def agent_list(
        space: str, site: AgentSite, sites: Sites, request: Request, under: str = ""
    ) -> dict[str, Any]:
        """The files below ``under`` (a folder a task of the site names as an input)."""
        if not sites.may_transfer(site, hub_url(space, under), write=False):
            raise HTTPException(404, f"no input of this site's tasks is {hub_url(space, under)}")
        prefix = under.strip("/")
        try:
            listed = request.app.state.hub.files.list(space)
        except NoSuchSpace:
            raise HTTPException(404, f"no file space {space}") from None
        files = [
            {"path": f.path, "size": f.size}
            for f in listed
            if not prefix or f.path == prefix or f.path.startswith(prefix + "/")
        ]
        return {"files": files}

    @api.put(
        "/api/v1/agent/files/{space}/{path:path}",
        summary="Agent: write an output into the hub's file store",
        status_code=201,
        responses={400: _ERROR, 401: _ERROR, 404: _ERROR, 409: _ERROR, 507: _ERROR},
    )
    async def agent_upload(
        space: str,
        path: str,
        site: AgentSite,
        sites: Sites,
        request: Request,
        directory: bool = False,
        sha256: Annotated[str | None, Header(alias="X-Content-SHA256")] = None,
    ) -> dict[str, Any]:
        """Only where a task of the site sends an output (or inside such a folder)."""
        url = hub_url(space, path)
        if not await run_in_threadpool(sites.may_transfer, site, url, write=True):
            raise HTTPException(404, f"no output of this site's tasks goes to {url}")
        store = request.app.state.hub.files
        return await receive_file(store, space, path, request, sha256=sha256, directory=directory)

    @api.post(
        "/api/v1/agent/outputs",
        summary="Agent: outputs held for review",
        responses={401: _ERROR, 404: _ERROR},
    )
    def outputs_held(body: HeldIn, site: AgentSite, sites: Sites) -> dict[str, str]:
        """The site holds these outputs of the task until a steward releases them."""
        sites.hold(site, body.task_id, body.files)
        return {"id": body.task_id, "state": "held"}

    @api.get("/api/v1/outputs", summary="Outputs waiting for your review", responses={401: _ERROR})
    def held_outputs(who: Who, sites: Sites) -> list[dict[str, Any]]:
        """Outputs held at sites where you are a steward: each task's files and sizes."""
        return sites.held_outputs(who)

    @api.post(
        "/api/v1/outputs/{task_id}:release",
        summary="Release held outputs",
        responses={401: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def release(task_id: str, body: DecisionIn, who: Who, sites: Sites) -> dict[str, str]:
        """The site uploads them to the task's output URLs and the task ends."""
        sites.decide_outputs(task_id, who, release=True, reason=body.reason)
        return {"id": task_id, "decision": "released"}

    @api.post(
        "/api/v1/outputs/{task_id}:reject",
        summary="Reject held outputs",
        responses={400: _ERROR, 401: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def reject_outputs(task_id: str, body: DecisionIn, who: Who, sites: Sites) -> dict[str, str]:
        """Nothing leaves the site; the task ends SYSTEM_ERROR with your reason."""
        sites.decide_outputs(task_id, who, release=False, reason=body.reason)
        return {"id": task_id, "decision": "rejected"}

    @api.get(
        "/api/v1/approvals", summary="Tasks waiting for your decision", responses={401: _ERROR}
    )
    def approvals(who: Who, sites: Sites) -> list[dict[str, Any]]:
        """Tasks at sites where you are a steward that wait for approval before they run:
        who asked, which images, which data."""
        return [
            {
                "id": t.id,
                "site": site,
                "owner": t.owner,
                "name": t.spec.name,
                "images": [e.image for e in t.spec.executors],
                "commands": [list(e.command) for e in t.spec.executors],
                "inputs": [i.url for i in t.spec.inputs if i.url],
                "outputs": [o.url for o in t.spec.outputs],
                "creation_time": t.creation_time.isoformat(),
            }
            for site, t in sites.approvals(who)
        ]

    @api.post(
        "/api/v1/approvals/{task_id}:approve",
        summary="Approve a task",
        responses={400: _ERROR, 401: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def approve(task_id: str, body: DecisionIn, who: Who, sites: Sites) -> dict[str, str]:
        sites.decide(task_id, who, approve=True, reason=body.reason)
        return {"id": task_id, "decision": "approved"}

    @api.post(
        "/api/v1/approvals/{task_id}:reject",
        summary="Reject a task",
        responses={400: _ERROR, 401: _ERROR, 404: _ERROR, 409: _ERROR},
    )
    def reject(task_id: str, body: DecisionIn, who: Who, sites: Sites) -> dict[str, str]:
        """The task ends CANCELED with your reason, which its owner reads."""
        sites.decide(task_id, who, approve=False, reason=body.reason)
        return {"id": task_id, "decision": "rejected"}

    return api


def install(app: FastAPI) -> None:
    api = router()
    app.include_router(api)
    errors.record_methods(app, "", api.routes)
