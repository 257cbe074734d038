"""The docker runtime: each executor is one container on a Docker Engine, driven over its API.

Containers are never auto-removed: their exit code and logs must outlive a hub restart, so a
new hub process can re-attach with :meth:`DockerRuntime.wait` and ``cleanup`` removes them.
"""

from __future__ import annotations

import os
import posixpath
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import docker
import docker.constants
import docker.errors
import requests
from docker.types import LogConfig
from docker.types import Mount as DockerMount

from toolferry.runtimes.base import ExecSpec, RuntimeCapabilities, RuntimeFailure

START_HINT = (
    "start it with `dockerd --iptables=false --bridge=none &` (scripts/setup.sh does this) "
    "or choose the 'none' runtime"
)

# The json-file driver replaces bytes that are not UTF-8 (binary stdout would be corrupted);
# "local" stores raw bytes. One uncompressed file of up to 1 TB means no rotation truncates it.
_LOG_CONFIG = LogConfig(
    type="local", config={"max-file": "1", "max-size": "1t", "compress": "false"}
)
_FRAME_HEADER = struct.Struct(">BxxxL")  # docker's multiplexed stream: stream id, payload length
_STDOUT, _STDERR = 1, 2
_CHUNK = 1 << 16


class DockerRuntime:
    """Runs each executor as a container; refs are container ids."""

    name = "docker"
    capabilities = RuntimeCapabilities(
        name="docker", uses_images=True, enforces_cpu=True, enforces_ram=True, isolates_network=True
    )

    def __init__(self, docker_host: str | None = None) -> None:
        self._engine = EngineClients(docker_host)
        self._lock = threading.Lock()
        self._stdin_pumps: dict[str, _StdinPump] = {}

    # -- Runtime protocol ---------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """None when the engine answers ``ping``, else why not and how to start it."""
        return self._engine.ping_problem()

    def path_problem(self, container_paths: list[str]) -> str | None:
        """Why the first of ``container_paths`` that docker cannot mount is unusable, or None:
        for admission, so such a task is refused at submission. Only ``/`` is: docker cannot
        mount over a container's root."""
        return root_mount_problem(container_paths, "docker")

    def find(self, spec: ExecSpec) -> str | None:
        """The executor's container (by its name) if it was started; one that was only
        created is removed, so that starting it again is safe."""
        name = _container_name(spec)
        with self._api(f"looking for container {name}") as api:
            try:
                state = api.inspect_container(name)
            except docker.errors.NotFound:
                return None
            if state["State"].get("Status") == "created":
                self.cleanup(str(state["Id"]))
                return None
        return str(state["Id"])

    def start(self, spec: ExecSpec) -> str:
        """Create and start the container (and feed it its stdin); return the container id."""
        stdin = _open_stdin(spec.stdin) if spec.stdin else None
        try:
            with self._api(f"starting executor {spec.index} of task {spec.task_id}") as api:
                container_id = self._create(api, spec)
                try:
                    attach = _attach_stdin(api, container_id) if stdin else None
                    try:
                        api.start(container_id)
                    except docker.errors.APIError:
                        if attach:
                            _close_attach(attach)
                        if self._failed_exec(api, container_id):
                            return container_id
                        raise
                except BaseException:
                    with suppress(docker.errors.DockerException, requests.RequestException):
                        api.remove_container(container_id, force=True)
                    raise
            if stdin and attach:
                pump = _StdinPump(stdin, attach, name=f"toolferry-stdin-{container_id[:12]}")
                with self._lock:
                    self._stdin_pumps[container_id] = pump
                pump.start()
                stdin = None  # the pump owns it now
            return container_id
        finally:
            if stdin:
                stdin.close()

    def wait(self, ref: str, spec: ExecSpec) -> int:
        """Block until the container ends, write its stdout/stderr files, return its exit code."""
        with self._api(f"waiting for container {ref[:12]}") as api:
            try:
                result = api.wait(ref, timeout=None)
            except docker.errors.NotFound as exc:
                raise RuntimeFailure(
                    f"container {ref[:12]} no longer exists: it was removed before its end was read"
                ) from exc
            self._join_pump(ref)
            exit_code = int(result["StatusCode"])
            _write_logs(api, ref, spec.stdout, spec.stderr)
            # Only a failed executor can have been OOM-killed or have failed to exec; skipping the
            # inspect for exit code 0 keeps the common path at one wait and one logs call.
            if exit_code != 0:
                note = _failure_note(api.inspect_container(ref)["State"], spec.ram_gb)
                if note:
                    _append(spec.stderr, note)
        return exit_code

    def is_alive(self, ref: str) -> bool | None:
        """True while the container runs, False once it ended, None if it no longer exists."""
        with self._api(f"inspecting container {ref[:12]}") as api:
            try:
                state = api.inspect_container(ref)["State"]
            except docker.errors.NotFound:
                return None
        return bool(state.get("Running"))

    def kill(self, ref: str) -> None:
        """SIGKILL the container; no error if it is gone or already stopped."""
        with self._api(f"killing container {ref[:12]}") as api:
            try:
                api.kill(ref)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: the container is not running
                    raise

    def cleanup(self, ref: str) -> None:
        """Remove the container (killing it if it still runs); no error if it is gone."""
        with self._api(f"removing container {ref[:12]}") as api:
            try:
                api.remove_container(ref, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: a removal is already in progress
                    raise
        self._join_pump(ref)

    def sweep(self, keep: Callable[[str], bool]) -> int:
        """Remove toolferry's containers whose tasks are not kept (by their task label)."""
        with self._api("listing toolferry's containers") as api:
            found = api.containers(all=True, filters={"label": "toolferry.task"})
        removed = 0
        for container in found:
            task_id = (container.get("Labels") or {}).get("toolferry.task", "")
            if task_id and not keep(task_id):
                self.cleanup(str(container["Id"]))
                removed += 1
        return removed

    def close(self) -> None:
        """Close the engine connections this runtime opened."""
        self._engine.close()

    # -- helpers -----------------------------------------------------------------------------

    def _api(self, doing: str) -> AbstractContextManager[Any]:
        return self._engine.api(doing)

    def _create(self, api: Any, spec: ExecSpec) -> str:
        """Create the container; pull a missing image and replace a stale namesake once each."""
        name = _container_name(spec)
        pulled = replaced = False
        while True:
            try:
                return str(_create_container(api, spec, name)["Id"])
            except docker.errors.ImageNotFound:
                if pulled:
                    raise
                _pull(api, spec.image)
                pulled = True
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or replaced:  # 409: the name is taken
                    raise
                _remove_stale(api, name)
                replaced = True

    def _failed_exec(self, api: Any, container_id: str) -> bool:
        """True if start failed because the program could not be run (docker: 126/127).

        That is the executor's fault, as with ``docker run``: keep the container so wait()
        reports the exit code and puts the engine's message in the stderr file."""
        try:
            state = api.inspect_container(container_id)["State"]
        except docker.errors.APIError:
            return False
        return state.get("ExitCode") in (126, 127) and not state.get("Running")

    def _join_pump(self, ref: str) -> None:
        """Stop feeding stdin to an ended container (input it did not read is dropped)."""
        with self._lock:
            pump = self._stdin_pumps.pop(ref, None)
        if pump:
            pump.abort()
            pump.join()


class EngineClients:
    """API clients of one Docker Engine, lent one per operation (shared by the docker and swarm
    runtimes).

    requests sessions are not documented as thread safe and a wait holds a connection for the
    whole run, so each operation borrows a client of its own from this pool."""

    def __init__(self, docker_host: str | None) -> None:
        self._docker_host = docker_host
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._clients: list[Any] = []
        self._api_version: str | None = None

    def where(self) -> str:
        return self._docker_host or "the default socket (DOCKER_HOST or /var/run/docker.sock)"

    def ping_problem(self) -> str | None:
        """None when the engine answers ``ping``, else why not and how to start it."""
        try:
            client = self.new_client(timeout=10)
        except RuntimeFailure as exc:
            return f"{exc}; {START_HINT}"
        try:
            client.ping()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            return f"the Docker Engine at {self.where()} does not answer ({exc}); {START_HINT}"
        finally:
            client.close()
        return None

    def new_client(self, timeout: int = 60) -> Any:
        """A client of its own (the caller closes it)."""
        kwargs: dict[str, Any] = docker.utils.kwargs_from_env()
        if self._docker_host:
            kwargs["base_url"] = self._docker_host
        # The first client asks the engine its API version; later ones reuse the answer.
        kwargs["version"] = self._api_version or "auto"
        _probe_unix_socket(kwargs.get("base_url") or docker.constants.DEFAULT_UNIX_SOCKET, timeout)
        try:
            client = docker.APIClient(timeout=timeout, **kwargs)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise RuntimeFailure(
                f"cannot reach the Docker Engine at {self.where()}: {exc}"
            ) from exc
        self._api_version = client.api_version
        return client

    @contextmanager
    def api(self, doing: str) -> Iterator[Any]:
        """Lend a client for one operation and turn engine errors into RuntimeFailure."""
        with self._lock:
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = self.new_client()
            with self._lock:
                self._clients.append(client)
        try:
            yield client
        except docker.errors.APIError as exc:
            raise RuntimeFailure(f"docker: {doing} failed: {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise RuntimeFailure(
                f"docker: {doing} failed: lost the Docker Engine at {self.where()} ({exc})"
            ) from exc
        finally:
            with self._lock:
                if client in self._clients:  # not closed meanwhile
                    self._idle.append(client)

    def close(self) -> None:
        """Close the connections of the clients lent so far."""
        with self._lock:
            clients, self._clients, self._idle = self._clients, [], []
        for client in clients:
            client.close()


def root_mount_problem(container_paths: list[str], runtime: str) -> str | None:
    """``/`` among ``container_paths`` (docker cannot mount over a container's root), or None."""
    for path in container_paths:
        if path.startswith("/") and not posixpath.normpath(path).strip("/"):
            return f"{path} cannot be used with the {runtime} runtime: docker cannot mount over /"
    return None


def _probe_unix_socket(base_url: str, timeout: float) -> None:
    """Fail clearly when nothing listens on a unix socket engine address.

    The SDK leaks the socket of a failed connect (a ResourceWarning later), so it is tried here
    first with a socket that is always closed."""
    for prefix in ("http+unix://", "unix://"):
        if base_url.startswith(prefix):
            path = base_url[len(prefix) :]
            break
    else:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
        except OSError as exc:
            raise RuntimeFailure(f"cannot reach the Docker Engine at {base_url}: {exc}") from exc


def _container_name(spec: ExecSpec) -> str:
    return f"toolferry-{spec.task_id}-{spec.index}"


def _create_container(api: Any, spec: ExecSpec, name: str) -> dict[str, Any]:
    host_config = api.create_host_config(
        mounts=[
            DockerMount(target=m.container, source=str(m.host), type="bind", read_only=m.read_only)
            for m in spec.mounts
        ],
        # "host" rather than the default bridge: toolferry's engines run with --bridge=none.
        network_mode="host" if spec.network else "none",
        # The engine refuses a limit above the host's cores (a site may be configured larger).
        nano_cpus=round(min(spec.cpu_cores, os.cpu_count() or 1) * 1e9) if spec.cpu_cores else None,
        mem_limit=_ram_bytes(spec.ram_gb) if spec.ram_gb else None,
        # Equal to mem_limit: no swap on top, so the limit cannot be escaped by swapping.
        memswap_limit=_ram_bytes(spec.ram_gb) if spec.ram_gb else None,
        log_config=_LOG_CONFIG,
    )
    result: dict[str, Any] = api.create_container(
        image=spec.image,
        # TES: the first argument is the program, so it replaces the image's ENTRYPOINT.
        entrypoint=[spec.command[0]],
        command=list(spec.command[1:]),
        name=name,
        working_dir=spec.workdir,
        environment=dict(spec.env),
        labels={"toolferry.task": spec.task_id, "toolferry.executor": str(spec.index)},
        stdin_open=spec.stdin is not None,  # with attach: StdinOnce, so closing it sends EOF
        host_config=host_config,
    )
    return result


def _ram_bytes(ram_gb: float) -> int:
    return round(ram_gb * 1024**3)


def _pull(api: Any, image: str) -> None:
    """Pull ``image`` once; RuntimeFailure with the registry's reason if that fails."""
    try:
        for event in api.pull(image, stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                raise RuntimeFailure(
                    f"image '{image}' is not available locally and could not be pulled: "
                    f"{event['error']}"
                )
    except docker.errors.APIError as exc:
        raise RuntimeFailure(
            f"image '{image}' is not available locally and could not be pulled: "
            f"{exc.explanation or exc}"
        ) from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise RuntimeFailure(
            f"image '{image}' is not available locally and could not be pulled: {exc}"
        ) from exc


def _remove_stale(api: Any, name: str) -> None:
    """Remove a stopped container left with our name (an earlier attempt of this executor)."""
    try:
        state = api.inspect_container(name)["State"]
    except docker.errors.NotFound:
        return
    if state.get("Running"):
        raise RuntimeFailure(
            f"a container named {name} is already running (started by an earlier worker?); "
            "kill it or wait for it before starting this executor again"
        )
    with suppress(docker.errors.NotFound):
        api.remove_container(name, force=True)


def _open_stdin(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise RuntimeFailure(f"cannot read the executor's stdin file {path}: {exc}") from exc


def _attach_stdin(api: Any, container_id: str) -> Any:
    """Attach to the container's stdin before it starts, so no input can be missed."""
    attach = api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
    # The engine may take longer than the client timeout to consume a large input.
    getattr(attach, "_sock", attach).settimeout(None)
    return attach


class _StdinPump(threading.Thread):
    """Copies the stdin file into the attached stream, then closes it so the executor sees EOF."""

    def __init__(self, source: IO[bytes], attach: Any, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._source = source
        self._attach = attach
        self._raw = getattr(attach, "_sock", attach)
        self._lock = threading.Lock()
        self._closed = False

    def run(self) -> None:
        try:
            with self._source:
                while chunk := self._source.read(_CHUNK):
                    self._raw.sendall(chunk)
            self._raw.shutdown(socket.SHUT_WR)
            # The engine closes the stream once it has passed EOF on; read until then so that
            # closing cannot reset the connection before all input was delivered.
            while self._raw.recv(_CHUNK):
                pass
        except OSError:
            pass  # the executor ended without reading all its input, as in a shell pipe
        finally:
            with self._lock:
                self._closed = True
                _close_attach(self._attach)

    def abort(self) -> None:
        """Unblock a send the engine will never read: it stops reading once the container ends
        but keeps the connection open."""
        with self._lock:
            if not self._closed:
                with suppress(OSError):
                    self._raw.shutdown(socket.SHUT_RDWR)


def _close_attach(attach: Any) -> None:
    raw = getattr(attach, "_sock", None)
    response = getattr(attach, "_response", None)
    if response is not None:
        with suppress(Exception):  # closing the HTTP wrapper of a hijacked socket may complain
            response.close()
    attach.close()
    if raw is not None:
        raw.close()


def _write_logs(api: Any, container_id: str, stdout: Path, stderr: Path) -> None:
    """Copy the container's stdout and stderr, demultiplexed, into two host files."""
    # The SDK's logs() inspects the container first (tty check) and cannot split the streams;
    # our containers never have a tty, so one plain request does it.
    write_log_stream(api, f"/containers/{quote(container_id)}/logs", stdout, stderr)


def write_log_stream(api: Any, endpoint: str, stdout: Path, stderr: Path) -> None:
    """Copy a multiplexed log stream (an engine API ``endpoint``: a container's or a service's
    logs, without a tty) into two host files: stdout and stderr."""
    url = f"{api.base_url}/v{api.api_version}{endpoint}"
    response = api.get(url, params={"stdout": 1, "stderr": 1}, stream=True)
    with response:
        try:
            response.raise_for_status()
        except requests.HTTPError as exc:
            docker.errors.create_api_error_from_http_exception(exc)  # raises the APIError
            raise
        try:
            for path in (stdout, stderr):
                path.parent.mkdir(parents=True, exist_ok=True)
            with stdout.open("wb") as out, stderr.open("wb") as err:
                targets = {_STDOUT: out, _STDERR: err}
                while header := _read_exact(response.raw, _FRAME_HEADER.size):
                    stream, length = _FRAME_HEADER.unpack(header)
                    target = targets.get(stream)
                    while length:
                        data = _read_exact(response.raw, min(length, _CHUNK))
                        if not data:
                            return
                        if target:
                            target.write(data)
                        length -= len(data)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write the executor's output files: {exc}") from exc


def _read_exact(raw: Any, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at the end of the stream."""
    data = raw.read(size)
    while data and len(data) < size:
        more = raw.read(size - len(data))
        if not more:
            break
        data += more
    return bytes(data)


def _failure_note(state: dict[str, Any], ram_gb: float | None) -> str | None:
    """A line for the stderr file explaining a failure the executor could not report itself."""
    if state.get("OOMKilled"):
        limit = f" of {ram_gb:g} GB" if ram_gb else ""
        return f"toolferry: the executor was killed for exceeding its memory limit{limit}"
    if state.get("Error"):
        return f"toolferry: the executor could not be started: {state['Error']}"
    return None


def _append(path: Path, line: str) -> None:
    try:
        with path.open("ab+") as fh:
            fh.seek(0, 2)
            if fh.tell():
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write(line.encode() + b"\n")
    except OSError as exc:
        raise RuntimeFailure(f"cannot write the executor's stderr file {path}: {exc}") from exc
