"""TES 1.1 routes; the same routes in TES 1.0 shape serve /v1 for older clients."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.convertors import Convertor, register_url_convertor

from toolferry.api.schemas import (
    CreateTaskResponse,
    ErrorOut,
    LegacyServiceInfoOut,
    ListTasksOut,
    ServiceInfoOut,
    TaskIn,
    TaskOut,
)
from toolferry.api.service_info import legacy_service_info, service_info
from toolferry.api.views import View, minimal, render, render_legacy
from toolferry.domain.errors import InvalidTask
from toolferry.domain.states import State
from toolferry.scheduler.service import TaskService
from toolferry.security.identity import Identity
from toolferry.store.base import TaskQuery

MAX_PAGE_SIZE = 2047
_ERROR: dict[str, Any] = {"model": ErrorOut}
DEFAULT_PAGE_SIZE = 256


class TaskIdConvertor(Convertor[str]):
    """Task ids never hold ':' or '/': GET /tasks/ID:cancel is then no GetTask call for the id
    'ID:cancel' but a wrong method on CancelTask (405)."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("taskid", TaskIdConvertor())


def _hub(request: Request) -> Any:
    return request.app.state.hub


# Dependencies are ``async`` so they run on the event loop: a sync dependency costs a hop
# through the thread pool on every request, which a polling client pays again and again.
async def _service(request: Request) -> TaskService:
    return _hub(request).tasks  # type: ignore[no-any-return]


async def _who(request: Request) -> Identity:
    return _hub(request).authenticate(request)  # type: ignore[no-any-return]


Who = Annotated[Identity, Depends(_who)]
Service = Annotated[TaskService, Depends(_service)]

_VIEWS: dict[str, Any] = {"enum": [v.value for v in View]}
_VIEW_DOC = (
    "MINIMAL: id and state only. BASIC: everything except executor stdout/stderr, input "
    "content and system logs. FULL: everything."
)


def parse_view(value: str | None) -> View:
    # Only an absent view means MINIMAL: "view=" is none of the documented values.
    try:
        return View("MINIMAL" if value is None else value)
    except ValueError:
        raise InvalidTask("view", f"must be MINIMAL, BASIC or FULL, got {value!r}") from None


def parse_state(value: str | None) -> State | None:
    if value is None or value == "":
        return None
    try:
        return State(value)
    except ValueError:
        raise InvalidTask("state", f"unknown state {value!r}") from None


def parse_tags(keys: list[str], values: list[str]) -> dict[str, str]:
    """Zip tag_key with tag_value as TES describes; a key without a value matches any value."""
    if len(values) > len(keys):
        raise InvalidTask("tag_value", "more tag_value than tag_key parameters")
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise InvalidTask("tag_key", f"{twice!r} is given twice")
    return {key: values[i] if i < len(values) else "" for i, key in enumerate(keys)}


def router(*, legacy: bool) -> APIRouter:
    """The five TES operations; ``legacy`` renders TES 1.0 documents for /v1 clients."""
    shape = render_legacy if legacy else render
    api = APIRouter(tags=["TaskService (TES 1.0 shape)" if legacy else "TaskService"])

    if legacy:

        @api.get(
            "/tasks/service-info",
            summary="GetServiceInfo (TES 1.0)",
            response_model=None,
            responses={200: {"model": LegacyServiceInfoOut}},
        )
        def get_legacy_service_info(request: Request) -> dict[str, Any]:
            """Name, doc and storage of this service, as TES 1.0 clients (py-tes 0.4) read it."""
            hub = _hub(request)
            return legacy_service_info(hub.settings, hub.site)

    @api.get(
        "/service-info",
        summary="GetServiceInfo",
        operation_id=None if not legacy else "GetServiceInfoV1",
        response_model=None,
        responses={200: {"model": ServiceInfoOut}},
    )
    def get_service_info(request: Request) -> dict[str, Any]:
        """GA4GH service-info with the storage locations and backend parameters this service supports."""
        hub = _hub(request)
        return service_info(hub.settings, hub.site)

    @api.post(
        "/tasks",
        summary="CreateTask",
        response_model=CreateTaskResponse,
        responses={400: _ERROR, 401: _ERROR},
    )
    def create_task(body: TaskIn, service: Service, who: Who) -> dict[str, str]:
        """Validate and queue a task. A task this service cannot run is refused with 400."""
        task = service.submit(body.to_domain(), who)
        return {"id": task.id}

    @api.get(
        "/tasks",
        summary="ListTasks",
        response_model=None,
        responses={200: {"model": ListTasksOut}, 400: _ERROR, 401: _ERROR},
    )
    def list_tasks(
        service: Service,
        who: Who,
        name_prefix: str | None = Query(
            default=None, description="Only tasks whose name starts with this."
        ),
        state: str | None = Query(
            default=None,
            description="Only tasks in this state.",
            json_schema_extra={"enum": [s.value for s in State]},
        ),
        tag_key: list[str] = Query(default=[], description="Tag keys to match (see TES)."),
        tag_value: list[str] = Query(
            default=[], description="Values for tag_key, zipped in order; empty matches any value."
        ),
        page_size: int | None = Query(
            default=None,
            description="At most 2047; default 256.",
            json_schema_extra={"minimum": 1, "maximum": MAX_PAGE_SIZE},
        ),
        page_token: str | None = Query(
            default=None, description="next_page_token of the previous page."
        ),
        view: str | None = Query(default=None, description=_VIEW_DOC, json_schema_extra=_VIEWS),
    ) -> JSONResponse:
        """List the caller's tasks (all tasks for admins), newest first."""
        size = DEFAULT_PAGE_SIZE if page_size is None else page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidTask("page_size", f"must be between 1 and {MAX_PAGE_SIZE}, got {size}")
        chosen = parse_view(view)
        query = TaskQuery(
            name_prefix=name_prefix or None,
            state=parse_state(state),
            tags=parse_tags(tag_key, tag_value),
            page_size=size,
            page_token=page_token or None,
        )
        result: dict[str, Any]
        if chosen is View.MINIMAL:
            states = service.list_states(query, who)
            result = {"tasks": [minimal(i, s, legacy=legacy) for i, s in states.states]}
            token = states.next_page_token
        else:
            page = service.list(query, who)
            result = {"tasks": [shape(t, chosen) for t in page.tasks]}
            token = page.next_page_token
        if token:
            result["next_page_token"] = token
        return JSONResponse(result)

    @api.get(
        "/tasks/{id:taskid}",
        summary="GetTask",
        response_model=None,
        responses={200: {"model": TaskOut}, 400: _ERROR, 401: _ERROR, 404: _ERROR},
    )
    def get_task(
        id: str,
        service: Service,
        who: Who,
        view: str | None = Query(default=None, description=_VIEW_DOC, json_schema_extra=_VIEWS),
    ) -> JSONResponse:
        """One task by its id."""
        chosen = parse_view(view)
        if chosen is View.MINIMAL:
            return JSONResponse(minimal(id, service.state(id, who), legacy=legacy))
        return JSONResponse(shape(service.get(id, who), chosen))

    @api.post(
        "/tasks/{id:taskid}:cancel",
        summary="CancelTask",
        responses={401: _ERROR, 404: _ERROR},
    )
    def cancel_task(id: str, service: Service, who: Who) -> dict[str, Any]:
        """Cancel a task: a queued task ends CANCELED at once; a running one goes through
        CANCELING while its executor is stopped. Canceling an ended task changes nothing."""
        service.cancel(id, who)
        return {}

    return api
