"""The swarm runtime: each executor is one Docker Swarm service (one replica, never restarted).

The worker runs in the hub process and stages the attempt's files into its work directory,
which must be on a filesystem every swarm node shares at the same path: the executor's mounts
are bind mounts of those paths on whichever node runs it. Refs are service ids.

A service outlives a hub restart with its task's state, exit code and logs, so a new hub process
re-attaches with :meth:`SwarmRuntime.wait`; ``cleanup`` removes the service. Nothing is pulled:
an image the engine behind ``docker_host`` has is pinned by its id (the nodes do not ask a
registry for it), any other name is passed on for the node to find.

Swarm has no way to stop one task and keep it, so :meth:`SwarmRuntime.kill` kills the container
directly when it runs on this engine's node, and otherwise updates the service so that its task
is shut down (SIGKILL, no grace period) in favour of a placeholder task no node can take; the
placeholder is ignored and goes with the service.

Network: a service without networks joins its engine's default network, ``bridge`` (swarm
cannot attach a service to ``none``); toolferry's engines run without one (``dockerd
--bridge=none``), so such an executor has loopback only. Where the manager's engine has a default
bridge, :meth:`SwarmRuntime.unavailable_reason` says the runtime does not isolate executors from
the network (the nodes are assumed to be set up alike).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import docker.errors

from toolferry.runtimes.base import ExecSpec, RuntimeCapabilities, RuntimeFailure
from toolferry.runtimes.docker import (
    _LOG_CONFIG,
    EngineClients,
    _append,
    _container_name,
    _failure_note,
    _ram_bytes,
    root_mount_problem,
    write_log_stream,
)

SWARM_HINT = (
    "run `docker swarm init --advertise-addr 127.0.0.1` (scripts/setup.sh does this) "
    "or join this engine to a swarm as a manager"
)
TASK_LABEL = "toolferry.task"
EXECUTOR_LABEL = "toolferry.executor"
IMAGE_LABEL = "toolferry.image"  # the image as the task named it (the service may run its id)
KILLED_LABEL = "toolferry.killed"
# The constraint of the placeholder task a killing update leaves: no node has this id.
KILLED_CONSTRAINT = "node.id==toolferry-killed"

# Swarm task states after which nothing more happens to the task.
ENDED_STATES = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
_LOST_NODE_STATES = frozenset({"down", "disconnected"})
_SIGKILLED = 137
_EXEC_FAILED = (126, 127)
_START_FAILED = "starting container failed"

# Polling: 50 ms at first, then a tenth of the time waited so far, at most 0.5 s.
_POLL_FIRST = 0.05
_POLL_SHARE = 0.1
_POLL_MAX = 0.5
_NODE_CHECK_S = 10.0  # how often a waiting executor's node is checked
_TASK_APPEARS_S = 5.0  # how long a kill waits for a new service's task to be made
_KILLED_BEFORE_START = "toolferry: the executor was killed before it started"


class SwarmRuntime:
    """Runs each executor as a Docker Swarm service through a manager; refs are service ids."""

    name = "swarm"
    capabilities = RuntimeCapabilities(
        name="swarm",
        uses_images=True,
        enforces_cpu=True,
        enforces_ram=True,
        # A service without networks has loopback only on engines without a default bridge;
        # unavailable_reason() sets this instance's value from the manager's engine.
        isolates_network=True,
        stdin=False,  # a service's stdin cannot be attached
    )

    def __init__(self, docker_host: str | None = None) -> None:
        self._engine = EngineClients(docker_host)
        self._node_id: str | None = None  # this engine's swarm node

    # -- Runtime protocol ---------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """None when the engine answers and is a manager of an active swarm, else why not."""
        problem = self._engine.ping_problem()
        if problem:
            return problem
        try:
            with self._api("asking the engine for its swarm state") as api:
                swarm = api.info().get("Swarm") or {}
                problem = swarm_problem(swarm, self._engine.where())
                if problem:
                    return problem
                isolated = isolates_network(api.networks(names=["bridge"]))
        except RuntimeFailure as exc:
            return str(exc)
        if isolated != self.capabilities.isolates_network:
            self.capabilities = dataclasses.replace(self.capabilities, isolates_network=isolated)
        return None

    def path_problem(self, container_paths: list[str]) -> str | None:
        """``/`` cannot be a mount target or working directory (docker cannot mount over it)."""
        return root_mount_problem(container_paths, "swarm")

    def find(self, spec: ExecSpec) -> str | None:
        """The executor's service (by its name) if it was created."""
        name = service_name(spec)
        with self._api(f"looking for service {name}") as api:
            try:
                service = api.inspect_service(name)
            except docker.errors.NotFound:
                return None
        labels = service["Spec"].get("Labels") or {}
        if labels.get(TASK_LABEL) != spec.task_id:
            return None
        return str(service["ID"])

    def start(self, spec: ExecSpec) -> str:
        """Create the executor's service; return its id. The task is scheduled by the swarm."""
        if spec.stdin is not None:
            raise RuntimeFailure(
                "the swarm runtime cannot feed an executor's stdin (a service has no stdin to "
                "attach to); choose the docker runtime for executors that read stdin"
            )
        for mount in spec.mounts:
            # The work directory is shared at the same path by every node, so a source missing
            # here is missing there too; the node would only reject the task later.
            if not mount.host.exists():
                raise RuntimeFailure(
                    f"mount source {mount.host} (for {mount.container}) does not exist"
                )
        name = service_name(spec)
        with self._api(f"starting executor {spec.index} of task {spec.task_id}") as api:
            body = service_spec(spec, _local_image_id(api, spec.image))
            replaced = False
            while True:
                try:
                    created = api.create_service(
                        body["TaskTemplate"],
                        name=body["Name"],
                        labels=body["Labels"],
                        mode=body["Mode"],
                        update_config=body["UpdateConfig"],
                    )
                    return str(created["ID"])
                except docker.errors.APIError as exc:
                    if exc.status_code != 409 or replaced:  # 409: the name is taken
                        raise
                self._remove_stale(api, name)
                replaced = True

    def wait(self, ref: str, spec: ExecSpec) -> int:
        """Poll the service's task until it ended; write its stdout/stderr files (the service's
        logs); return the container's exit code. A task the swarm rejected (missing image, ...)
        or whose node was lost is a RuntimeFailure; one still pending waits."""
        began = time.monotonic()
        next_node_check = began + _NODE_CHECK_S
        with self._api(f"waiting for service {ref[:12]}") as api:
            while True:
                found = self._task(api, ref)
                if found is not None and task_state(found) in ENDED_STATES:
                    task = found
                    break
                now = time.monotonic()
                if found is None and now - began > 1 and self._killed(api, ref):
                    _write_empty(spec)  # killed before the swarm made its task
                    _append(spec.stderr, _KILLED_BEFORE_START)
                    return _SIGKILLED
                if found is not None and found.get("NodeID") and now >= next_node_check:
                    self._check_node(api, found, spec)
                    next_node_check = now + _NODE_CHECK_S
                time.sleep(poll_interval(now - began))
            killed = task_state(task) == "shutdown" and self._killed(api, ref)
            try:
                end = task_end(task, killed=killed)
            except TaskRejected as exc:
                raise RuntimeFailure(self._rejection(api, task, spec, exc.reason)) from None
            if end.ran:
                write_log_stream(api, f"/services/{quote(ref)}/logs", spec.stdout, spec.stderr)
            else:
                _write_empty(spec)
            note = end.note
            if end.exit_code == _SIGKILLED and note is None:
                note = self._kill_note(api, task, spec)
            if note:
                _append(spec.stderr, note)
        return end.exit_code

    def is_alive(self, ref: str) -> bool | None:
        """True until the service's task ended (pending counts as alive), None without the
        service."""
        with self._api(f"inspecting service {ref[:12]}") as api:
            try:
                task = self._task(api, ref)
            except _ServiceGone:
                return None
            if task is None:  # not made yet, unless a kill came first
                return not self._killed(api, ref)
        return task_state(task) not in ENDED_STATES

    def kill(self, ref: str) -> None:
        """Stop the executor now (SIGKILL); no error if it ended or its service is gone."""
        with self._api(f"killing service {ref[:12]}") as api:
            try:
                task = self._task(api, ref)
                # Just created: give the swarm a moment to make the task, which a kill
                # through the swarm would otherwise replace before it exists.
                deadline = time.monotonic() + _TASK_APPEARS_S
                while task is None and time.monotonic() < deadline:
                    time.sleep(_POLL_FIRST)
                    task = self._task(api, ref)
            except _ServiceGone:
                return
            if task is not None and task_state(task) in ENDED_STATES:
                return
            if task is not None and self._kill_local_container(api, task):
                return
            self._stop_through_swarm(api, ref)

    def cleanup(self, ref: str) -> None:
        """Remove the service (its container stops and goes with it); no error if it is gone."""
        with self._api(f"removing service {ref[:12]}") as api, suppress(docker.errors.NotFound):
            api.remove_service(ref)

    def sweep(self, keep: Callable[[str], bool]) -> int:
        """Remove toolferry's executor services whose tasks are not kept (by their task label)."""
        with self._api("listing toolferry's executor services") as api:
            found = api.services(filters={"label": [TASK_LABEL, EXECUTOR_LABEL]})
        removed = 0
        for service in found:
            task_id = (service["Spec"].get("Labels") or {}).get(TASK_LABEL, "")
            if task_id and not keep(task_id):
                self.cleanup(str(service["ID"]))
                removed += 1
        return removed

    def close(self) -> None:
        """Close the engine connections this runtime opened."""
        self._engine.close()

    # -- helpers -----------------------------------------------------------------------------

    def _api(self, doing: str) -> AbstractContextManager[Any]:
        return self._engine.api(doing)

    def _task(self, api: Any, ref: str) -> dict[str, Any] | None:
        """The executor's task (None until the swarm made it); RuntimeFailure without the
        service."""
        try:
            tasks = api.tasks(filters={"service": ref})
        except docker.errors.NotFound as exc:
            raise _ServiceGone(
                f"service {ref[:12]} no longer exists: it was removed before its end was read"
            ) from exc
        return own_task(tasks)

    def _local_node(self, api: Any) -> str:
        if self._node_id is None:
            self._node_id = str((api.info().get("Swarm") or {}).get("NodeID") or "")
        return self._node_id

    def _kill_local_container(self, api: Any, task: dict[str, Any]) -> bool:
        """SIGKILL the task's container if it runs on this engine; False if it cannot be (on
        another node, not created or not started yet)."""
        container = _container_id(task)
        if not container or task.get("NodeID") != self._local_node(api):
            return False
        try:
            api.kill(container)
        except docker.errors.APIError as exc:
            if exc.status_code in (404, 409):  # gone, or not running (yet)
                return False
            raise
        return True

    def _stop_through_swarm(self, api: Any, ref: str) -> None:
        """Shut the task down through the swarm: an update that replaces it with a placeholder
        no node can take (the task stops with its stop signal, SIGKILL, and is kept)."""
        for _attempt in range(3):
            try:
                service = api.inspect_service(ref)
            except docker.errors.NotFound:
                return
            spec = service["Spec"]
            template = spec["TaskTemplate"]
            placement = template.setdefault("Placement", {})
            constraints = list(placement.get("Constraints") or [])
            if KILLED_CONSTRAINT in constraints:
                return  # killed already
            placement["Constraints"] = [*constraints, KILLED_CONSTRAINT]
            template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
            try:
                api.update_service(
                    ref,
                    service["Version"]["Index"],
                    task_template=template,
                    name=spec["Name"],
                    labels={**(spec.get("Labels") or {}), KILLED_LABEL: "1"},
                    mode=spec.get("Mode"),
                    update_config=spec.get("UpdateConfig"),
                )
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if "out of sequence" not in str(exc.explanation):  # a concurrent update: retry
                    raise

    def _killed(self, api: Any, ref: str) -> bool:
        """Whether :meth:`kill` stopped the task through the swarm (else the swarm itself did)."""
        try:
            labels = api.inspect_service(ref)["Spec"].get("Labels") or {}
        except docker.errors.NotFound:
            return False
        return KILLED_LABEL in labels

    def _check_node(self, api: Any, task: dict[str, Any], spec: ExecSpec) -> None:
        """RuntimeFailure if the node running the task is down or left the swarm: its end
        would never be known."""
        node_id = str(task["NodeID"])
        try:
            node = api.inspect_node(node_id)
        except docker.errors.NotFound:
            node = None
        problem = node_problem(node, node_id, spec)
        if problem:
            raise RuntimeFailure(problem)

    def _node_name(self, api: Any, task: dict[str, Any]) -> str:
        node_id = str(task.get("NodeID") or "")
        if not node_id:
            return "(none)"
        try:
            node = api.inspect_node(node_id)
        except docker.errors.APIError:
            return node_id[:12]
        return str((node.get("Description") or {}).get("Hostname") or node_id[:12])

    def _rejection(self, api: Any, task: dict[str, Any], spec: ExecSpec, reason: str) -> str:
        node = self._node_name(api, task)
        if "no such image" in reason.lower():
            return (
                f"image '{spec.image}' is not available on swarm node {node} (nothing is "
                f"pulled: load it on every node that may run the executor): {reason}"
            )
        return (
            f"swarm node {node} could not run executor {spec.index} of task "
            f"{spec.task_id}: {reason}"
        )

    def _kill_note(self, api: Any, task: dict[str, Any], spec: ExecSpec) -> str | None:
        """Why a task that ended with 137 was killed, as far as the engine knows: out of memory
        (the container's state, readable on this engine's node only)."""
        container = _container_id(task)
        if not container or task.get("NodeID") != self._local_node(api):
            if spec.ram_gb and task_state(task) == "failed":
                return (
                    f"toolferry: the executor was killed (exit code 137) on swarm node "
                    f"{self._node_name(api, task)}, probably for exceeding its memory limit of "
                    f"{spec.ram_gb:g} GB"
                )
            return None
        try:
            state = api.inspect_container(container)["State"]
        except docker.errors.NotFound:
            return None
        return _failure_note({"OOMKilled": state.get("OOMKilled")}, spec.ram_gb)

    def _remove_stale(self, api: Any, name: str) -> None:
        """Remove an ended service left with our name (an earlier attempt of this executor)."""
        try:
            task = self._task(api, name)
        except _ServiceGone:
            return
        if task is None or task_state(task) not in ENDED_STATES:
            raise RuntimeFailure(
                f"a service named {name} is already running (started by an earlier worker?); "
                "kill it or wait for it before starting this executor again"
            )
        with suppress(docker.errors.NotFound):
            api.remove_service(name)


# -- pure parts -------------------------------------------------------------------------------


def swarm_problem(swarm: dict[str, Any], where: str) -> str | None:
    """Why the engine (its ``info()["Swarm"]``) cannot create services, or None."""
    state = swarm.get("LocalNodeState") or "unknown"
    if state != "active":
        error = f": {swarm['Error']}" if swarm.get("Error") else ""
        return (
            f"the Docker Engine at {where} is not in an active swarm (state {state}{error}); "
            f"{SWARM_HINT}"
        )
    if not swarm.get("ControlAvailable"):
        return (
            f"the Docker Engine at {where} is a swarm worker, not a manager: services are "
            "created through a manager; point docker_host at a manager node "
            "(`docker node ls` on a manager lists them)"
        )
    return None


def node_problem(node: dict[str, Any] | None, node_id: str, spec: ExecSpec) -> str | None:
    """Why the node running the executor (``docker node inspect`` form, None if it left the
    swarm) will never report the executor's end, or None while it is up."""
    where = f"running executor {spec.index} of task {spec.task_id}"
    if node is None:
        return f"swarm node {node_id[:12]} {where} left the swarm; the executor's end is unknown"
    status = node.get("Status") or {}
    if status.get("State") not in _LOST_NODE_STATES:
        return None
    host = (node.get("Description") or {}).get("Hostname") or node_id[:12]
    why = f": {status['Message']}" if status.get("Message") else ""
    return f"swarm node {host} {where} is {status['State']}{why}; the executor's end is unknown"


def isolates_network(networks: list[dict[str, Any]]) -> bool:
    """Whether an engine with these networks (``GET /networks`` form) gives a service without
    networks loopback only: its containers join the default network, ``bridge``, if it exists."""
    return not any(n.get("Name") == "bridge" and n.get("Driver") == "bridge" for n in networks)


def service_name(spec: ExecSpec) -> str:
    return _container_name(spec)


def service_spec(spec: ExecSpec, image: str) -> dict[str, Any]:
    """The engine's ServiceCreate body for one executor, running ``image`` (spec.image or its
    id)."""
    container: dict[str, Any] = {
        "Image": image,
        # TES: the first argument is the program, so it replaces the image's ENTRYPOINT.
        "Command": [spec.command[0]],
        "Args": list(spec.command[1:]),
        "Env": [f"{key}={value}" for key, value in spec.env.items()],
        "Mounts": [
            {"Type": "bind", "Source": str(m.host), "Target": m.container, "ReadOnly": m.read_only}
            for m in spec.mounts
        ],
        # How the swarm stops the task (kill through the swarm, service removal): at once.
        "StopSignal": "SIGKILL",
        "StopGracePeriod": 0,
    }
    if spec.workdir:
        container["Dir"] = spec.workdir
    resources: dict[str, Any] = {}
    if spec.cpu_cores or spec.ram_gb:
        # Reserved, so the swarm places the task where they are free (else it stays pending),
        # and the limit, so the executor cannot take more.
        amounts: dict[str, int] = {}
        if spec.cpu_cores:
            amounts["NanoCPUs"] = round(spec.cpu_cores * 1e9)
        if spec.ram_gb:
            amounts["MemoryBytes"] = _ram_bytes(spec.ram_gb)
        resources = {"Limits": dict(amounts), "Reservations": dict(amounts)}
    template: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": resources,
        "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
        "Placement": {"Constraints": list(spec.placement)},
        # As the docker runtime's containers: raw bytes kept, never rotated.
        "LogDriver": {"Name": _LOG_CONFIG.type, "Options": dict(_LOG_CONFIG.config)},
    }
    # Without networks a service's container has loopback only; "host" is the host's stack.
    if spec.network:
        template["Networks"] = [{"Target": "host"}]
    return {
        "Name": service_name(spec),
        "Labels": {
            TASK_LABEL: spec.task_id,
            EXECUTOR_LABEL: str(spec.index),
            IMAGE_LABEL: spec.image,
        },
        "TaskTemplate": template,
        "Mode": {"Replicated": {"Replicas": 1}},
        # Only kill updates the service: stop the task before its placeholder is made.
        "UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "continue"},
    }


def poll_interval(waited: float) -> float:
    """Seconds to sleep between polls after ``waited`` seconds: short at first, then growing
    with the wait, so a long executor costs few requests and a short one little latency."""
    return min(_POLL_MAX, _POLL_FIRST + _POLL_SHARE * waited)


def task_state(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State") or "")


def own_task(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The executor's task among a service's tasks: the first made, not a kill placeholder."""
    mine = [task for task in tasks if KILLED_CONSTRAINT not in _constraints(task)]
    return min(mine, key=_created, default=None)


class _ServiceGone(RuntimeFailure):
    """The executor's service does not exist (any more)."""


class TaskRejected(Exception):
    """The task never ran its program for a reason outside the executor (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TaskEnd:
    """How an ended task ended: its exit code, whether a container ran (and has logs), and a
    line for the stderr file when the executor could not report its failure itself."""

    exit_code: int
    ran: bool
    note: str | None = None


def task_end(task: dict[str, Any], *, killed: bool) -> TaskEnd:
    """Interpret an ended task; TaskRejected if the swarm or the node's engine failed it
    (``killed``: toolferry shut it down through the swarm)."""
    status = task.get("Status") or {}
    state = task_state(task)
    error = str(status.get("Err") or "")
    container = _container_id(task)
    code = int((status.get("ContainerStatus") or {}).get("ExitCode") or 0)
    if state == "orphaned":
        raise TaskRejected(f"its node was unavailable too long (task orphaned){_colon(error)}")
    if state == "rejected" or (state == "failed" and not container):
        raise TaskRejected(error or f"task {state}: {status.get('Message') or 'no reason given'}")
    if not container:  # shut down before it had a container
        if killed:
            return TaskEnd(_SIGKILLED, False, _KILLED_BEFORE_START)
        raise TaskRejected(
            f"Docker Swarm shut the task down before it started ({state}){_colon(error)}"
        )
    if state == "failed" and error.startswith(_START_FAILED):
        if code in _EXEC_FAILED:  # the program could not be run: the executor's fault
            return TaskEnd(code, True, f"toolferry: the executor could not be started: {error}")
        raise TaskRejected(error)
    if state == "failed" and code == 0:
        raise TaskRejected(error or "task failed without an exit code")
    if state in ("shutdown", "remove") and not killed:
        message = status.get("Message") or state
        return TaskEnd(
            code,
            True,
            f"toolferry: Docker Swarm stopped the executor ({message}): its service was updated "
            "or its node drained",
        )
    return TaskEnd(code, True)


def _colon(text: str) -> str:
    return f": {text}" if text else ""


def _constraints(task: dict[str, Any]) -> list[str]:
    placement = (task.get("Spec") or {}).get("Placement") or {}
    return list(placement.get("Constraints") or [])


def _created(task: dict[str, Any]) -> tuple[str, str]:
    """Sort key of a task's creation time (RFC 3339 with up to nine fraction digits)."""
    head, _, fraction = str(task.get("CreatedAt") or "").rstrip("Z").partition(".")
    return head, fraction.ljust(9, "0")


def _container_id(task: dict[str, Any]) -> str:
    status = task.get("Status") or {}
    return str((status.get("ContainerStatus") or {}).get("ContainerID") or "")


def _local_image_id(api: Any, image: str) -> str:
    """The id of ``image`` if this engine has it, else ``image``: a node then runs exactly this
    image and does not ask a registry for it (it tries to pull any tag first)."""
    try:
        return str(api.inspect_image(image)["Id"])
    except docker.errors.NotFound:
        return image


def _write_empty(spec: ExecSpec) -> None:
    try:
        for path in (spec.stdout, spec.stderr):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    except OSError as exc:
        raise RuntimeFailure(f"cannot write the executor's output files: {exc}") from exc
