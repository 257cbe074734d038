"""The none runtime: executors run as host processes in a bubblewrap sandbox, image ignored.

bubblewrap builds a private root (a tmpfs with the host's system directories bound read-only)
in which the task's container paths resolve to its own work directory, so commands written for
containers run unchanged on hosts without a container engine. There is no CPU or RAM limit.

A ref is ``pid:<pid>:<starttime>:<status file>``: the start time (from ``/proc/<pid>/stat``)
tells our bwrap from a later process that got the same pid, and bwrap writes the exit code
into the status file itself, so it survives the hub process (no ``--die-with-parent``).
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from toolferry.runtimes.base import ExecSpec, RuntimeCapabilities, RuntimeFailure

# The host directories a program needs to run; each is bound read-only if it exists.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
}
INSTALL_HINT = "install it with `apt-get install bubblewrap` (scripts/setup.sh does this)"
POLL_SECONDS = 0.05
_SIGNAL_EXIT_BASE = 128  # shell convention, also used by bwrap: death by signal N exits 128+N


@dataclass(frozen=True, kw_only=True)
class HostRoot:
    """The host's system directories as found on disk: real directories and symlinks."""

    dirs: tuple[str, ...]
    symlinks: tuple[tuple[str, str], ...] = ()  # (path, link target), e.g. ("/bin", "usr/bin")

    def resolve(self, path: str) -> str:
        """``path`` with a leading symlinked system directory replaced by its target."""
        for link, target in self.symlinks:
            if path == link or path.startswith(link + "/"):
                return (
                    posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
                    + (path[len(link) :])
                )
        return path

    def system_dir_of(self, path: str) -> str | None:
        """The read-only system directory that ``path`` lies in, if any."""
        for directory in self.dirs:
            if path == directory or path.startswith(directory + "/"):
                return directory
        return None


def scan_host_root(root: str = "/") -> HostRoot:
    """Find which of :data:`SYSTEM_DIRS` exist under ``root`` and which are symlinks."""
    dirs: list[str] = []
    symlinks: list[tuple[str, str]] = []
    for directory in SYSTEM_DIRS:
        on_disk = posixpath.join(root, directory.lstrip("/"))
        if os.path.islink(on_disk):
            symlinks.append((directory, os.readlink(on_disk)))
        elif os.path.isdir(on_disk):
            dirs.append(directory)
    return HostRoot(dirs=tuple(dirs), symlinks=tuple(symlinks))


def bwrap_args(
    spec: ExecSpec,
    *,
    host_root: HostRoot,
    status_fd: int,
    exists: Callable[[str], bool],
    bwrap_path: str = "bwrap",
) -> list[str]:
    """The bwrap command line that runs ``spec`` (pure: ``exists`` answers for host paths).

    Raises RuntimeFailure for a mount target that cannot be created: one below a read-only
    system directory that does not exist on the host."""
    args = [bwrap_path, "--tmpfs", "/"]
    for directory in host_root.dirs:
        args += ["--ro-bind", directory, directory]
    for link, target in host_root.symlinks:
        args += ["--symlink", target, link]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for mount in spec.mounts:
        target = _checked_target(mount.container, host_root, exists, what="mount target")
        args += ["--ro-bind" if mount.read_only else "--bind", str(mount.host), target]
    workdir = "/"
    if spec.workdir:
        workdir = _checked_target(spec.workdir, host_root, exists, what="workdir")
        if host_root.system_dir_of(host_root.resolve(workdir)) is None:
            args += ["--dir", workdir]  # created like docker does; system dirs already exist
    args += ["--chdir", workdir, "--clearenv"]
    for key, value in {**DEFAULT_ENV, **spec.env}.items():
        args += ["--setenv", key, value]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not spec.network:
        args.append("--unshare-net")
    # --cap-drop ALL: when the hub runs as root, the executor would otherwise keep every
    # capability and could remount the read-only system directories writable.
    args += ["--new-session", "--cap-drop", "ALL", "--json-status-fd", str(status_fd)]
    return [*args, "--", *spec.command]


def _checked_target(
    path: str, host_root: HostRoot, exists: Callable[[str], bool], what: str
) -> str:
    if not posixpath.isabs(path):
        raise RuntimeFailure(f"{what} {path!r} is not an absolute path")
    target = posixpath.normpath(path)
    if target == "/":
        raise RuntimeFailure(f"{what} '/' cannot be used with the none runtime")
    real = host_root.resolve(target)
    system_dir = host_root.system_dir_of(real)
    if system_dir is not None and not exists(real):
        raise RuntimeFailure(
            f"{what} {path} cannot be used with the none runtime: it lies in the host's "
            f"read-only {system_dir}, where {real} does not exist and cannot be created; "
            f"use a path outside {', '.join(host_root.dirs)} or the docker runtime"
        )
    return target


class NoneRuntime:
    """Runs each executor as a sandboxed host process; refs name the bwrap process."""

    name = "none"
    capabilities = RuntimeCapabilities(
        name="none",
        uses_images=False,
        enforces_cpu=False,
        enforces_ram=False,
        isolates_network=True,
    )

    def __init__(self, bwrap_path: str = "bwrap") -> None:
        self._bwrap = bwrap_path
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # refs this process started
        self._host_root: HostRoot | None = None

    def unavailable_reason(self) -> str | None:
        """None when bwrap can build a sandbox here, else why not and how to fix it."""
        # The options start() relies on, so that an old or restricted bwrap is caught here.
        probe = [self._bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
        probe += ["--unshare-pid", "--unshare-net", "--clearenv", "--new-session"]
        probe += ["--cap-drop", "ALL", "--json-status-fd", "1", "--", "true"]
        try:
            done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
        except FileNotFoundError:
            return f"bubblewrap ({self._bwrap}) is not installed; {INSTALL_HINT}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap ({self._bwrap}) cannot be run: {exc}; {INSTALL_HINT}"
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
            return (
                f"bubblewrap cannot create a sandbox here ({reason}); run the hub as root or "
                "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                "or the container's seccomp/AppArmor profile)"
            )
        return None

    def start(self, spec: ExecSpec) -> str:
        """Start bwrap detached (own session) with the executor's stdio on the spec's files."""
        if self._host_root is None:
            self._host_root = scan_host_root()
        for mount in spec.mounts:
            if not mount.host.exists():
                raise RuntimeFailure(
                    f"mount source {mount.host} (for {mount.container}) does not exist"
                )
        status_path = spec.scratch / f"bwrap-status-{spec.index}.json"
        opened: list[IO[bytes]] = []
        try:
            _mkdir(spec.scratch)
            status = _open(status_path, "wb", opened, "state file")
            args = bwrap_args(
                spec,
                host_root=self._host_root,
                status_fd=status.fileno(),
                exists=os.path.exists,
                bwrap_path=self._bwrap,
            )
            stdin = _open(spec.stdin, "rb", opened, "stdin file") if spec.stdin else None
            for path in (spec.stdout, spec.stderr):
                _mkdir(path.parent)
            stdout = _open(spec.stdout, "wb", opened, "stdout file")
            stderr = _open(spec.stderr, "wb", opened, "stderr file")
            try:
                child = subprocess.Popen(
                    args,
                    stdin=stdin if stdin else subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    pass_fds=(status.fileno(),),
                    start_new_session=True,  # a hub's Ctrl-C or exit must not reach executors
                    env={},  # bwrap gets the executor's environment from --setenv only
                )
            except OSError as exc:
                raise RuntimeFailure(f"cannot run bubblewrap ({self._bwrap}): {exc}") from exc
        finally:
            for fh in opened:  # the child holds its own copies
                fh.close()
        starttime = _start_time(child.pid)
        ref = f"pid:{child.pid}:{starttime}:{status_path}"
        with self._lock:
            self._children[ref] = child
        return ref

    def wait(self, ref: str, spec: ExecSpec) -> int:
        """Wait for bwrap to end and return the executor's exit code (re-attach: poll /proc)."""
        proc = _Ref.parse(ref)
        with self._lock:
            child = self._children.get(ref)
        if child is not None:
            code = child.wait()
            with self._lock:
                self._children.pop(ref, None)
            return code if code >= 0 else _SIGNAL_EXIT_BASE - code
        while proc.alive():
            time.sleep(POLL_SECONDS)
        recorded = _read_status(proc.status)
        exit_code = recorded.get("exit-code")
        if isinstance(exit_code, int):
            return exit_code
        if "child-pid" in recorded:
            # bwrap itself was SIGKILLed (it records the code for any other end).
            note = "toolferry: the sandbox was killed before it could record the exit code\n"
            with suppress(OSError), spec.stderr.open("ab") as fh:
                fh.write(note.encode())
            return _SIGNAL_EXIT_BASE + signal.SIGKILL
        raise RuntimeFailure(
            f"executor {ref} ended without recording an exit code in {proc.status}: "
            "it never started or its state file was removed"
        )

    def is_alive(self, ref: str) -> bool | None:
        """True while bwrap runs, False once ended with a readable end, None if unknown."""
        proc = _Ref.parse(ref)
        if proc.alive():
            return True
        with self._lock:
            if ref in self._children:
                return False
        return False if _read_status(proc.status) else None

    def kill(self, ref: str) -> None:
        """SIGKILL the sandbox's pid-namespace init, so everything in it dies; bwrap stays to
        record the exit code. Falls back to bwrap's process group if the sandbox is not up."""
        proc = _Ref.parse(ref)
        deadline = time.monotonic() + 1.0
        while proc.alive():
            sandbox = _read_status(proc.status).get("child-pid")
            if isinstance(sandbox, int) and _parent_of(sandbox) == proc.pid:
                _signal(sandbox, signal.SIGKILL)
                if _gone_within(proc, seconds=2.0):
                    return
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)  # bwrap writes the child's pid right after cloning it
        if proc.alive():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def cleanup(self, ref: str) -> None:
        """Kill the executor if it still runs, reap it and remove its state file."""
        proc = _Ref.parse(ref)
        if proc.alive():
            self.kill(ref)
        with self._lock:
            child = self._children.pop(ref, None)
        if child is not None:
            child.wait()
        proc.status.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Ref:
    pid: int
    starttime: int
    status: Path

    @classmethod
    def parse(cls, ref: str) -> _Ref:
        try:
            kind, pid, starttime, status = ref.split(":", 3)
            if kind != "pid" or not status:
                raise ValueError(ref)
            return cls(int(pid), int(starttime), Path(status))
        except ValueError as exc:
            raise RuntimeFailure(f"not a none-runtime executor ref: {ref!r}") from exc

    def alive(self) -> bool:
        """Our bwrap still runs (not a zombie, and not another process that reused the pid)."""
        stat = _proc_stat(self.pid)
        return stat is not None and stat[2] == self.starttime and stat[0] not in "ZX"


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; the fields follow the last ")".
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _start_time(pid: int) -> int:
    stat = _proc_stat(pid)
    if stat is None:  # cannot happen before we reap it, but fail clearly rather than wrongly
        raise RuntimeFailure(f"bubblewrap (pid {pid}) vanished before it could be identified")
    return stat[2]


def _parent_of(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def _gone_within(proc: _Ref, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while proc.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _signal(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signum)


def _read_status(path: Path) -> dict[str, object]:
    """Merge the JSON lines bwrap wrote to its status file ({} if there is none)."""
    merged: dict[str, object] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return merged
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if isinstance(item, dict):
            merged.update(item)
    return merged


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(f"cannot create {path}: {exc}") from exc


def _open(path: Path, mode: str, opened: list[IO[bytes]], what: str) -> IO[bytes]:
    try:
        fh = path.open("wb") if mode == "wb" else path.open("rb")
    except OSError as exc:
        raise RuntimeFailure(f"cannot open the executor's {what} {path}: {exc}") from exc
    opened.append(fh)
    return fh
