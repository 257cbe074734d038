"""The task use cases the API and CLI call: submit, read, list, cancel, with permissions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from toolferry.agent.site import Site
from toolferry.domain.errors import InvalidTask, NotFound
from toolferry.domain.events import now
from toolferry.domain.ids import new_task_id
from toolferry.domain.rules import check_spec
from toolferry.domain.states import State
from toolferry.domain.task import Task, TaskSpec
from toolferry.scheduler.sites import SiteService
from toolferry.security.identity import Identity
from toolferry.store.base import StatePage, TaskPage, TaskQuery, TaskStore


class TaskService:
    def __init__(
        self,
        store: TaskStore,
        site: Site,
        *,
        max_content_bytes: int,
        resolve_images: Callable[[TaskSpec, Identity], TaskSpec] | None = None,
        sites: SiteService | None = None,
    ) -> None:
        """``resolve_images``: pins executor images that name catalogue entries; ``sites``:
        routes tasks that name a data site (dataset:// inputs) to its agent."""
        self.store = store
        self.site = site
        self.sites = sites
        self.max_content_bytes = max_content_bytes
        self.resolve_images = resolve_images

    def submit(self, spec: TaskSpec, who: Identity) -> Task:
        """Validate, admit and store a task (QUEUED); raises InvalidTask and stores nothing."""
        check_spec(spec, max_content_bytes=self.max_content_bytes)
        if spec.environments:
            raise InvalidTask("environments", "is set by the hub at submission")
        if self.resolve_images is not None:
            spec = self.resolve_images(spec, who)
        routed = self.sites.route(spec, who) if self.sites is not None else None
        if routed is not None:
            # The site's agent checks it against what that site can do and allows; whose
            # files it may use (hub:// spaces) only the hub can tell.
            self.site.admission.check_access(routed, who)
            admitted, warnings = routed, list[str]()
        else:
            admitted, warnings = self.site.admission.admit(spec, who)
        task = Task(
            id=new_task_id(),
            owner=who.user,
            spec=admitted,
            creation_time=now(),
            notes=tuple(warnings),
        )
        return self.store.create(task)

    def get(self, task_id: str, who: Identity) -> Task:
        task = self.store.get(task_id)
        if not who.may_see(task):
            raise NotFound(f"no task {task_id}")  # do not reveal other users' task ids
        return task

    def state(self, task_id: str, who: Identity) -> State:
        """The task's state alone: the MINIMAL view, which clients poll, at a fraction of the cost."""
        owner, state = self.store.owner_and_state(task_id)
        if not (who.admin or owner == who.user):
            raise NotFound(f"no task {task_id}")
        return state

    def list(self, query: TaskQuery, who: Identity) -> TaskPage:
        return self.store.query(self._scoped(query, who))

    def list_states(self, query: TaskQuery, who: Identity) -> StatePage:
        """Like :meth:`list`, for the MINIMAL view: ids and states only, much cheaper."""
        return self.store.query_states(self._scoped(query, who))

    @staticmethod
    def _scoped(query: TaskQuery, who: Identity) -> TaskQuery:
        return query if who.admin else replace(query, owner=who.user)

    def cancel(self, task_id: str, who: Identity) -> Task:
        task = self.get(task_id, who)
        remote = self.sites.cancel(task) if self.sites is not None else None
        return remote if remote is not None else self.site.cancel(task)
