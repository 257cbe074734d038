"""The podman runtime: each executor is one detached container, driven through the podman CLI.

Why the CLI and not podman's REST API: podman has no daemon. Its API exists only while a
``podman system service`` runs, which would be one more server to start, supervise and secure;
the CLI needs nothing but the binary, and each container is watched by its own ``conmon``, so it
outlives the hub. The options a host needs (here ``--runtime runc --cgroup-manager=cgroupfs`` and
explicit ulimits) are plain arguments, taken from configuration (``podman_global_args``,
``podman_ulimits``).

Containers are never auto-removed, as with docker: their exit code and logs must outlive a hub
restart. A program that cannot be executed leaves podman's container in state ``created`` with
no exit code, so that outcome (126/127, as ``podman run`` reports it) is kept in a state file in
the attempt's scratch directory for :meth:`PodmanRuntime.wait`.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

from toolferry.runtimes.base import ExecSpec, RuntimeCapabilities, RuntimeFailure
from toolferry.runtimes.docker import _append, _container_name, _failure_note, _ram_bytes

_TRIAL_VALID_S = 3600.0
INSTALL_HINT = "install it with `apt-get install podman runc` (scripts/setup.sh does this)"
_CONFIG_HINT = (
    "set podman_global_args and podman_ulimits for this host "
    "(e.g. --runtime runc --cgroup-manager=cgroupfs; nofile=1024:1024, nproc=1024:1024)"
)
DEFAULT_GLOBAL_ARGS = ("--runtime", "runc", "--cgroup-manager=cgroupfs")
DEFAULT_ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")
# An image without files, made locally: the trial run needs no registry and no test image.
TRIAL_IMAGE = "localhost/toolferry-trial:1"

# ``podman run`` exit codes: 125 podman itself failed, 126/127 the program could not be run.
_PODMAN_ERROR = 125
_EXEC_FAILED = (126, 127)
# How runc (`exec: "prog": ...`) and crun (`executable file `prog` not found`) report a failed
# execve; other 126s (setting rlimits, cgroups) are the host's fault, not the executor's.
_EXEC_MESSAGE = re.compile(r'exec: "|executable file `')
_SIGKILLED = 137
_NO_SUCH_CONTAINER = "no such container"
_TIMEOUT = 120.0
_PULL_TIMEOUT = 1800.0


class PodmanRuntime:
    """Runs each executor as a podman container; refs are container ids."""

    name = "podman"
    capabilities = RuntimeCapabilities(
        name="podman", uses_images=True, enforces_cpu=True, enforces_ram=True, isolates_network=True
    )

    def __init__(
        self,
        podman_path: str = "podman",
        global_args: Sequence[str] = DEFAULT_GLOBAL_ARGS,
        ulimits: Sequence[str] = DEFAULT_ULIMITS,
    ) -> None:
        self._podman = podman_path
        self._global_args = tuple(global_args)
        self._ulimits = tuple(ulimits)
        self._lock = threading.Lock()
        self._stdin_pumps: dict[str, threading.Thread] = {}
        self._killed: set[str] = set()  # refs this instance killed: their 137 is no OOM kill

    # -- Runtime protocol ---------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """None when a trial container gets as far as executing its program, else why not.

        The trial runs a file-less image with the configured options and limits, so every
        step but the program itself (storage, OCI runtime, cgroups, rlimits) is exercised."""
        try:
            version = self._run("version", "--format", "{{.Client.Version}}", timeout=30)
        except RuntimeFailure as exc:
            return f"{exc}; {INSTALL_HINT}"
        if version.returncode != 0:
            command = " ".join(self._argv("version"))
            return f"`{command}` failed: {_message(version.stderr)}; {_CONFIG_HINT}"
        # A passed trial is remembered for a while (it costs a third of a second, and every
        # hub start, CLI commands with an in-command hub included, asks), keyed by everything
        # it depends on: podman's version and the configured options.
        key = json.dumps(
            [version.stdout.decode(errors="replace").strip(), self._argv(), self._ulimits]
        )
        stamp = Path(self._cwd()) / "trial-passed.json"
        try:
            remembered = json.loads(stamp.read_text())
            if remembered["key"] == key and time.time() - remembered["at"] < _TRIAL_VALID_S:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            problem = self._trial()
        except RuntimeFailure as exc:
            return str(exc)
        if problem is None:
            with contextlib.suppress(OSError):
                stamp.write_text(json.dumps({"key": key, "at": time.time()}))
        return problem

    def path_problem(self, container_paths: list[str]) -> str | None:
        """Why the first of ``container_paths`` podman cannot mount is unusable, or None: ``/``
        (podman cannot mount over a container's root) and paths with a comma (which
        ``--mount`` would split)."""
        for path in container_paths:
            if path.startswith("/") and not posixpath.normpath(path).strip("/"):
                return f"{path} cannot be used with the podman runtime: podman cannot mount over /"
            if "," in path:
                return (
                    f"{path} cannot be used with the podman runtime: podman's --mount option "
                    "cannot express a path containing a comma"
                )
        return None

    def find(self, spec: ExecSpec) -> str | None:
        """The executor's container (by its name) if it was started, or failed to execute; one
        that was only created is removed, so that starting it again is safe."""
        state = self._inspect(_container_name(spec))
        if state is None:
            return None
        ref = str(state["Id"])
        if state["State"].get("Status") == "created" and _read_exec_failure(spec, ref) is None:
            self.cleanup(ref)
            return None
        return ref

    def start(self, spec: ExecSpec) -> str:
        """Run the container detached (and feed it its stdin); return the container id."""
        if spec.stdin is not None:
            _check_readable(spec.stdin)
        for mount in spec.mounts:
            if not mount.host.exists():
                raise RuntimeFailure(f"mount source {mount.host} does not exist")
            if "," in str(mount.host) or "," in mount.container:
                raise RuntimeFailure(
                    f"cannot mount {mount.host} at {mount.container}: podman's --mount option "
                    "cannot express a path containing a comma"
                )
        args = run_args(spec, self._ulimits)
        pulled = replaced = False
        while True:
            proc = self._run(*args)
            if proc.returncode == 0:
                ref = proc.stdout.decode().strip()
                if spec.stdin is not None:
                    self._pump_stdin(ref, spec.stdin)
                return ref
            message = _message(proc.stderr)
            if proc.returncode in _EXEC_FAILED and _EXEC_MESSAGE.search(message):
                return self._record_exec_failure(spec, proc.returncode, message)
            if proc.returncode == _PODMAN_ERROR and "image not known" in message and not pulled:
                self._pull(spec.image)
                pulled = True
            elif proc.returncode == _PODMAN_ERROR and "already in use" in message and not replaced:
                self._remove_stale(_container_name(spec))
                replaced = True
            else:
                raise RuntimeFailure(
                    f"podman: starting executor {spec.index} of task {spec.task_id} failed: "
                    f"{message}"
                )

    def wait(self, ref: str, spec: ExecSpec) -> int:
        """Block until the container ends, write its stdout/stderr files, return its exit code."""
        state = self._inspect(ref)
        if state is None:
            raise RuntimeFailure(
                f"container {ref[:12]} no longer exists: it was removed before its end was read"
            )
        if state["State"].get("Status") == "created":
            failure = _read_exec_failure(spec, ref)
            if failure is None:
                raise RuntimeFailure(f"container {ref[:12]} was created but never started")
            code, message = failure
            _write_empty(spec.stdout, spec.stderr)
            _append(spec.stderr, f"toolferry: the executor could not be started: {message}")
            return code
        proc = self._run("wait", ref, timeout=None)
        self._join_pump(ref)
        if proc.returncode != 0:
            raise RuntimeFailure(
                f"podman: waiting for container {ref[:12]} failed: {_message(proc.stderr)}"
            )
        exit_code = int(proc.stdout.split()[-1])
        self._write_logs(ref, spec.stdout, spec.stderr)
        if exit_code != 0:
            ended = self._inspect(ref)
            note = _failure_note(ended["State"], spec.ram_gb) if ended else None
            with self._lock:
                killed_here = ref in self._killed
            if note is None and exit_code == _SIGKILLED and spec.ram_gb and not killed_here:
                # conmon does not see OOM kills under cgroup v1 (OOMKilled stays false), and
                # nothing else SIGKILLs an executor that toolferry did not kill.
                note = (
                    "toolferry: the executor was killed (SIGKILL), most likely for exceeding "
                    f"its memory limit of {spec.ram_gb:g} GB"
                )
            if note:
                _append(spec.stderr, note)
        return exit_code

    def is_alive(self, ref: str) -> bool | None:
        """True while the container runs, False once it ended, None if it no longer exists."""
        state = self._inspect(ref)
        if state is None:
            return None
        return bool(state["State"].get("Running"))

    def kill(self, ref: str) -> None:
        """SIGKILL the container; no error if it is gone or already stopped."""
        with self._lock:
            self._killed.add(ref)
        proc = self._run("kill", ref)
        if proc.returncode != 0 and self.is_alive(ref):
            raise RuntimeFailure(
                f"podman: killing container {ref[:12]} failed: {_message(proc.stderr)}"
            )

    def cleanup(self, ref: str) -> None:
        """Remove the container (killing it if it still runs); no error if it is gone."""
        proc = self._run("rm", "--force", "--time", "0", "--ignore", ref)
        if proc.returncode != 0 and _NO_SUCH_CONTAINER not in _message(proc.stderr):
            raise RuntimeFailure(
                f"podman: removing container {ref[:12]} failed: {_message(proc.stderr)}"
            )
        self._join_pump(ref)
        with self._lock:
            self._killed.discard(ref)

    def sweep(self, keep: Callable[[str], bool]) -> int:
        """Remove toolferry's containers whose tasks are not kept (by their task label)."""
        proc = self._run("ps", "--all", "--filter", "label=toolferry.task", "--format", "json")
        if proc.returncode != 0:
            raise RuntimeFailure(
                f"podman: listing toolferry's containers failed: {_message(proc.stderr)}"
            )
        removed = 0
        for container in json.loads(proc.stdout or b"[]") or []:
            task_id = (container.get("Labels") or {}).get("toolferry.task", "")
            if task_id and not keep(task_id):
                self.cleanup(str(container["Id"]))
                removed += 1
        return removed

    def close(self) -> None:
        """Nothing to close: every call is its own process; stdin pumps run on by design."""

    # -- podman CLI ----------------------------------------------------------------------------

    def _argv(self, *args: str) -> list[str]:
        return [self._podman, *self._global_args, *args]

    @staticmethod
    def _cwd() -> str:
        """Where podman (and the conmon it starts, which drops an ``oom`` file in its working
        directory after an out-of-memory kill) runs: never the hub's own directory."""
        path = Path(tempfile.gettempdir()) / f"toolferry-podman-{os.getuid()}"
        path.mkdir(mode=0o700, exist_ok=True)
        return str(path)

    def _run(
        self, *args: str, timeout: float | None = _TIMEOUT, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one podman command; RuntimeFailure if podman cannot be run or hangs."""
        try:
            return subprocess.run(
                self._argv(*args),
                cwd=self._cwd(),
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise RuntimeFailure(f"podman is not installed (no {self._podman})") from exc
        except OSError as exc:
            raise RuntimeFailure(f"cannot run {self._podman}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise RuntimeFailure(f"podman {args[0]} did not answer within {timeout:g}s") from exc

    def _inspect(self, ref: str) -> dict[str, Any] | None:
        """The container's inspect record, or None if it does not exist."""
        proc = self._run("container", "inspect", "--format", "json", ref)
        if proc.returncode != 0:
            message = _message(proc.stderr)
            if _NO_SUCH_CONTAINER in message:
                return None
            raise RuntimeFailure(f"podman: inspecting container {ref[:12]} failed: {message}")
        found: list[dict[str, Any]] = json.loads(proc.stdout)
        return found[0] if found else None

    def _trial(self) -> str | None:
        if self._run("image", "exists", TRIAL_IMAGE).returncode != 0:
            imported = self._run("import", "--quiet", "-", TRIAL_IMAGE, stdin=_empty_tar())
            if imported.returncode != 0:
                return f"podman cannot store images: {_message(imported.stderr)}"
        name = f"toolferry-trial-{uuid.uuid4().hex[:12]}"
        trial = [
            "run",
            "--rm",
            "--name",
            name,
            "--pull",
            "never",
            "--network",
            "none",
            *_limit_args(0.5, 0.0625, self._ulimits),
            "--entrypoint",
            '["/toolferry-trial"]',
            TRIAL_IMAGE,
        ]
        try:
            proc = self._run(*trial, timeout=60)
        finally:
            self._run("rm", "--force", "--time", "0", "--ignore", name)
        message = _message(proc.stderr)
        if proc.returncode == 127 and _EXEC_MESSAGE.search(message):
            return None  # everything up to executing the (absent) program worked
        return (
            f"a trial `{' '.join(self._argv(*trial))}` failed: {message or 'no message'} "
            f"(exit {proc.returncode}); {_CONFIG_HINT}"
        )

    def _pull(self, image: str) -> None:
        proc = self._run("pull", "--quiet", image, timeout=_PULL_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeFailure(
                f"image '{image}' is not available locally and could not be pulled: "
                f"{_message(proc.stderr)}"
            )

    def _remove_stale(self, name: str) -> None:
        """Remove a stopped container left with our name (an earlier attempt of this executor)."""
        state = self._inspect(name)
        if state is None:
            return
        if state["State"].get("Running"):
            raise RuntimeFailure(
                f"a container named {name} is already running (started by an earlier worker?); "
                "kill it or wait for it before starting this executor again"
            )
        self.cleanup(str(state["Id"]))

    def _record_exec_failure(self, spec: ExecSpec, code: int, message: str) -> str:
        """Keep the outcome of a program that could not be executed for wait(); the ref."""
        state = self._inspect(_container_name(spec))
        if state is None:
            raise RuntimeFailure(f"podman: executor {spec.index} failed to start: {message}")
        ref = str(state["Id"])
        record = {"container": ref, "exit_code": code, "message": message}
        try:
            spec.scratch.mkdir(parents=True, exist_ok=True)
            _exec_failure_file(spec).write_text(json.dumps(record))
        except OSError as exc:
            raise RuntimeFailure(f"cannot write the runtime's state file: {exc}") from exc
        return ref

    def _pump_stdin(self, ref: str, stdin: Path) -> None:
        """Attach to the container's stdin with a process of its own session, started before
        this returns: it keeps feeding the executor if the hub stops, and ends with the
        container. A thread only reaps it."""
        argv = self._argv("attach", "--sig-proxy=false", "--detach-keys=", ref)
        try:
            with stdin.open("rb") as source:
                process = subprocess.Popen(
                    argv,
                    cwd=self._cwd(),
                    stdin=source,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
        except OSError as exc:
            self.cleanup(ref)
            raise RuntimeFailure(f"cannot feed the executor's stdin from {stdin}: {exc}") from exc
        thread = threading.Thread(
            target=process.wait, name=f"toolferry-stdin-{ref[:12]}", daemon=True
        )
        with self._lock:
            self._stdin_pumps[ref] = thread
        thread.start()

    def _join_pump(self, ref: str) -> None:
        with self._lock:
            thread = self._stdin_pumps.pop(ref, None)
        if thread:
            thread.join(timeout=_TIMEOUT)

    def _write_logs(self, ref: str, stdout: Path, stderr: Path) -> None:
        """Copy the container's stdout and stderr, byte for byte, into two host files."""
        try:
            for path in (stdout, stderr):
                path.parent.mkdir(parents=True, exist_ok=True)
            with stdout.open("wb") as out, stderr.open("wb") as err:
                proc = subprocess.run(
                    self._argv("logs", ref),
                    cwd=self._cwd(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    check=False,
                )
        except OSError as exc:
            raise RuntimeFailure(f"cannot write the executor's output files: {exc}") from exc
        if proc.returncode != 0:
            # podman's complaint went to the stderr file after whatever the executor wrote.
            complaint = _last_line(stderr)
            raise RuntimeFailure(f"podman: reading the logs of {ref[:12]} failed: {complaint}")


def run_args(spec: ExecSpec, ulimits: Sequence[str]) -> list[str]:
    """The ``podman run`` arguments (after the global options) that start ``spec`` detached."""
    args = [
        "run",
        "--detach",
        "--name",
        _container_name(spec),
        "--label",
        f"toolferry.task={spec.task_id}",
        "--label",
        f"toolferry.executor={spec.index}",
        # "host" rather than a bridge: hosts like this one have no container networking set up.
        "--network",
        "host" if spec.network else "none",
        # Pulls happen apart (once, with a clear error) so that `run` never mixes in pull output.
        "--pull",
        "never",
        # The log driver that `podman logs` reads back byte for byte, whatever containers.conf says.
        "--log-driver",
        "k8s-file",
        *_limit_args(spec.cpu_cores, spec.ram_gb, ulimits),
    ]
    if spec.stdin is not None:
        args.append("--interactive")
    for mount in spec.mounts:
        option = f"type=bind,source={mount.host},target={mount.container}"
        args += ["--mount", option + (",readonly=true" if mount.read_only else "")]
    if spec.workdir:
        args += ["--workdir", spec.workdir]
    for key, value in spec.env.items():
        args += ["--env", f"{key}={value}"]
    # TES: the first argument is the program, so it replaces the image's ENTRYPOINT; JSON, so
    # that a program name is never split or read as a list.
    args += ["--entrypoint", json.dumps([spec.command[0]]), "--", spec.image, *spec.command[1:]]
    return args


def _limit_args(cpu_cores: float | None, ram_gb: float | None, ulimits: Sequence[str]) -> list[str]:
    args: list[str] = []
    for ulimit in ulimits:
        args += ["--ulimit", ulimit]
    if cpu_cores:
        # The engine refuses a limit above the host's cores (a site may be configured larger).
        args += ["--cpus", f"{min(cpu_cores, os.cpu_count() or 1):g}"]
    if ram_gb:
        # Swap limit equal to the memory limit: no swap on top, so the limit cannot be escaped.
        args += ["--memory", str(_ram_bytes(ram_gb)), "--memory-swap", str(_ram_bytes(ram_gb))]
    return args


def _message(stderr: bytes) -> str:
    """podman's error, without its ``Error: `` prefix; the last line if there are several."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last.removeprefix("Error: ")


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            return _message(fh.read())
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


def _exec_failure_file(spec: ExecSpec) -> Path:
    return spec.scratch / f"podman-exec-failure-{spec.index}.json"


def _read_exec_failure(spec: ExecSpec, ref: str) -> tuple[int, str] | None:
    """The exit code and message recorded when this container's program could not run."""
    try:
        record = json.loads(_exec_failure_file(spec).read_text())
    except (OSError, ValueError):
        return None
    if record.get("container") != ref:
        return None
    return int(record["exit_code"]), str(record["message"])


def _check_readable(path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise RuntimeFailure(f"cannot read the executor's stdin file {path}: {exc}") from exc


def _write_empty(*paths: Path) -> None:
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    except OSError as exc:
        raise RuntimeFailure(f"cannot write the executor's output files: {exc}") from exc


def _empty_tar() -> bytes:
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()
