"""The none runtime: executors run as host processes in a bubblewrap sandbox, image ignored.

bubblewrap builds a private root (a tmpfs) holding a few host paths read-only, in which the
task's container paths resolve to its own work directory, so commands written for containers
run unchanged on hosts without a container engine. There is no CPU or RAM limit.

What an executor sees (everything shared from the host is read-only):

* ``/usr``, ``/bin``, ``/sbin``, ``/lib``, ``/lib32``, ``/lib64``, ``/libx32`` of the host
  (:data:`SYSTEM_DIRS`; merged-/usr symlinks such as ``/bin -> usr/bin`` are recreated): the
  programs and libraries installed on the host, ``/usr/local`` included.
* In ``/etc``, only the entries of :data:`ETC_ENTRIES` that exist on the host: user and group
  names, name resolution, the dynamic linker's cache, Debian's alternatives (``/usr/bin/awk``
  links into them), CA certificates, time zone, locale aliases, OS release, MIME and magic
  databases, shell start-up files and the configuration of Java, Python, Perl, R and
  fontconfig. The rest of the host's ``/etc`` is absent: ``shadow``, ``gshadow``,
  ``sudoers``, ``ssh/``, ``ssl/private/``, ``profile.d/`` and ``environment`` (where sites
  keep credentials), package-manager settings (``pip.conf``, ``npmrc``), service
  configurations, ``machine-id``, ``ld.so.preload``.
* In ``/sys``, only :data:`SYS_ENTRIES`: the CPU and NUMA topology that the C library,
  OpenMP, OpenBLAS, hwloc and the JVM read to size their thread pools (without it they fall
  back to /proc). The rest of sysfs stays hidden on purpose: the executor is uid 0 (below)
  and could read root-only files there (DMI tables with serial numbers, EFI variables,
  debugfs, the host's cgroup tree).
* Its own ``/proc`` (a pid namespace: only the executor's processes), a minimal ``/dev``
  (null, zero, full, random, urandom, tty, pts, shm), an empty private ``/tmp``, and the
  task's mounts: inputs read-only; volumes, output and log folders read-write. Anything
  written elsewhere lands on the private root and is discarded, like a container's layer.
* Loopback only, unless the task asks for the network: then the host's interfaces.
* The environment: :data:`DEFAULT_ENV` and the task's variables, nothing of the hub's.

Not visible: ``/opt``, ``/home``, ``/root``, ``/var``, ``/srv``, ``/run``, ``/mnt``, other
tasks' files, the host's processes and IPC objects. Software installed under ``/opt`` (or an
alternative pointing there) is therefore not available to tasks: use the docker runtime.

Identity: the executor runs as the hub's uid (0: the hub runs as root) with every capability
dropped (``--cap-drop ALL``) and no_new_privs set, so it cannot remount anything, write to the
shared paths or regain privileges through setuid programs. Uid 0 still passes the owner
permission checks of root-owned files, so whatever is shared can be read even if its mode is
0600: the allow-lists above are the boundary. Files written in the mounts are owned by root,
as the worker expects when it stages outputs. An unprivileged uid was tried and rejected:

* ``--unshare-user --uid 65534``: when run by root, bwrap maps the sandbox uid to host uid 0,
  so the executor still owns every root-owned file (``/etc/shadow`` was readable that way).
* running bwrap itself as an unprivileged user (possible here, with unprivileged user
  namespaces): the worker creates the work area and the writable mounts as root (0755, under
  directories that may be 0700), so bwrap cannot even find the mount sources and the executor
  could not write its outputs; the runtime would have to chown the task's trees as root before
  each executor, itself a symlink-race hazard.

Container paths: one that lies in a shared read-only path must exist on the host (it is then
mounted over); nothing can be created there. ``/`` and ``/proc`` are never usable.
:meth:`NoneRuntime.path_problem` refuses such paths at submission, :func:`bwrap_args` at start.

A program that cannot be executed ends with 127 (not found) or 126 (found, not executable),
as on docker, with bwrap's ``execvp`` message naming it in stderr. How this is detected:
bwrap records an exit code in its status file only after it exec'd the program, and the
executor cannot write to that file. So an exit code there is always the program's, whatever
its stderr says; without one the program never ran (or bwrap was killed), and only then, if
the stderr file holds nothing but ``bwrap: ...`` lines, is bwrap's last line read:
``execvp <program>: No such file or directory`` gives 127, another ``execvp`` reason 126, and
any other message (the sandbox could not be set up) a :class:`RuntimeFailure`. Matching the
stderr's first line alone would let a program that prints such a line change its exit code.

A ref is ``pid:<pid>:<starttime>:<status file>``: the start time (from ``/proc/<pid>/stat``)
tells our bwrap from a later process that got the same pid, and bwrap writes the exit code
into the status file itself, so it survives the hub process (no ``--die-with-parent``).
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import posixpath
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from toolferry.runtimes.base import ExecSpec, RuntimeCapabilities, RuntimeFailure

# The host directories a program needs to run; each is bound read-only if it exists.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The host's /etc entries a program may need, shared read-only when they exist (glob patterns
# allowed). Curated: add only what holds no secret, since the executor can read any of it.
ETC_ENTRIES = (
    # user and group names (the password hashes are in shadow and gshadow, never shared)
    "passwd",
    "group",
    # name resolution and the network databases
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "resolv.conf",
    "gai.conf",
    "services",
    "protocols",
    "networks",
    # the dynamic linker's search path (without the cache, libraries in
    # /usr/lib/<triplet> subdirectories are not found); never ld.so.preload
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    # Debian's alternatives: /usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk
    "alternatives",
    # TLS trust anchors: certificates only (ssl/private holds the host's keys)
    "ssl/certs",
    "ssl/cert.pem",
    "ssl/openssl.cnf",
    "pki/tls/certs",
    "pki/ca-trust/extracted",
    # time, locale, platform
    "localtime",
    "timezone",
    "locale.alias",
    "locale.conf",
    "os-release",
    "lsb-release",
    "debian_version",
    "mtab",
    # file type databases (Python's mimetypes, file)
    "mime.types",
    "magic",
    "magic.mime",
    # shell start-up files; not profile.d or environment, where sites keep credentials
    "profile",
    "bash.bashrc",
    "inputrc",
    # runtimes that keep part of their installation here (Debian's JVM reads its jvm.cfg
    # from /etc/java-*)
    "java-*",
    "python3*",
    "perl",
    "R",
    "fonts",
)
# The part of sysfs shared read-only: CPU and NUMA topology only (see the module docstring).
SYS_ENTRIES = ("/sys/devices/system/cpu", "/sys/devices/system/node")
# File systems of the sandbox itself, where symlinks from shared paths may point.
_SANDBOX_DIRS = ("/proc", "/dev")
DEFAULT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
}
INSTALL_HINT = "install it with `apt-get install bubblewrap` (scripts/setup.sh does this)"
POLL_SECONDS = 0.05
_SIGNAL_EXIT_BASE = 128  # shell convention, also used by bwrap: death by signal N exits 128+N
_BWRAP_DIED = 1  # bwrap's exit code when it fails (die(): setup error, execvp failure)
_NOT_FOUND, _NOT_EXECUTABLE = 127, 126  # shell and docker convention
_MAX_BWRAP_MESSAGE = 64 * 1024


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


@dataclass(frozen=True, kw_only=True)
class HostRoot:
    """The host paths the sandbox shares, as found on disk."""

    dirs: tuple[str, ...]  # system directories, bound read-only
    # Recreated symlinks (path, link target), e.g. ("/bin", "usr/bin"), ("/etc/localtime", ...)
    symlinks: tuple[tuple[str, str], ...] = ()
    # Allow-listed /etc and /sys entries (files or directories), bound read-only if still there
    extras: tuple[str, ...] = ()
    # A host folder holding a copy of the allow-listed /etc, bound read-only as /etc in one
    # mount instead of one mount per entry (each mount costs; ~40 of them halved the rate).
    etc_snapshot: str | None = None

    def etc_entries(self) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """The allow-listed /etc extras and symlinks."""
        return (
            tuple(p for p in self.extras if _within(p, "/etc")),
            tuple(s for s in self.symlinks if _within(s[0], "/etc")),
        )

    def resolve(self, path: str) -> str:
        """``path`` with a leading recreated symlink replaced by its target."""
        for link, target in self.symlinks:
            if _within(path, link):
                return (
                    posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
                    + (path[len(link) :])
                )
        return path

    def shared_path_of(self, path: str) -> str | None:
        """The read-only shared path (system directory or extra) that ``path`` lies in."""
        for shared in (*self.dirs, *self.extras):
            if _within(path, shared):
                return shared
        return None


def scan_host_root(root: str = "/") -> HostRoot:
    """Find which of :data:`SYSTEM_DIRS`, :data:`ETC_ENTRIES` and :data:`SYS_ENTRIES` exist
    under ``root``, and which are symlinks.

    A symlinked /etc entry is recreated as a symlink when its target lies in the sandbox
    (``/etc/localtime -> /usr/share/zoneinfo/...`` keeps telling the zone's name); otherwise
    the file it points to is bound (``/etc/resolv.conf -> /run/...``)."""
    dirs: list[str] = []
    symlinks: list[tuple[str, str]] = []
    for directory in SYSTEM_DIRS:
        on_disk = _on_disk(root, directory)
        if os.path.islink(on_disk):
            symlinks.append((directory, os.readlink(on_disk)))
        elif os.path.isdir(on_disk):
            dirs.append(directory)
    system = HostRoot(dirs=tuple(dirs), symlinks=tuple(symlinks))
    entries = [p for p in _expand_etc(root) if os.path.lexists(_on_disk(root, p))]
    entries += [p for p in SYS_ENTRIES if os.path.isdir(_on_disk(root, p))]
    plain = [p for p in entries if not os.path.islink(_on_disk(root, p))]
    extras: list[str] = []
    for path in entries:
        on_disk = _on_disk(root, path)
        if os.path.islink(on_disk):
            target = os.readlink(on_disk)
            seen_at = system.resolve(_normalised(posixpath.join(posixpath.dirname(path), target)))
            inside = (*system.dirs, *_SANDBOX_DIRS, *plain)
            if any(_within(seen_at, directory) for directory in inside):
                symlinks.append((path, target))
                continue
            if not os.path.exists(on_disk):
                continue  # dangling on the host too
        extras.append(path)
    return HostRoot(dirs=system.dirs, symlinks=tuple(symlinks), extras=tuple(extras))


class EtcSnapshots:
    """Copies of the allow-listed /etc entries, one folder per state of the host's /etc.

    Folders are named by a hash of the entries' modification times and sizes, so hub
    processes (and restarts) share one copy per state of /etc; the state is re-read at most
    every ``recheck`` seconds. Copies are never deleted while the host's /etc stays as it
    was: executors outlive hubs and keep seeing theirs. Changes inside an allow-listed
    directory's files (not its list of files) are not noticed."""

    def __init__(self, recheck: float = 10.0) -> None:
        self._recheck = recheck
        self._checked = -recheck
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._folder: str | None = None

    def current(self, root: HostRoot) -> HostRoot:
        now = time.monotonic()
        if self._folder is not None and now - self._checked < self._recheck:
            return replace(root, etc_snapshot=self._folder)
        self._checked = now
        extras, symlinks = root.etc_entries()
        fingerprint = tuple(_stamp(p) for p in (*extras, *(link for link, _ in symlinks)))
        if fingerprint != self._fingerprint or self._folder is None:
            self._folder = _snapshot_folder(fingerprint, extras, symlinks)
            self._fingerprint = fingerprint
        return replace(root, etc_snapshot=self._folder)


def _stamp(path: str) -> tuple[str, int, int]:
    try:
        st = os.lstat(path)
    except OSError:
        return (path, -1, -1)
    return (path, st.st_mtime_ns, st.st_size)


def _snapshot_folder(
    fingerprint: tuple[tuple[str, int, int], ...],
    extras: tuple[str, ...],
    symlinks: tuple[tuple[str, str], ...],
) -> str:
    """The snapshot folder for this state of /etc, made (atomically) if it does not exist."""
    digest = hashlib.sha256(repr((fingerprint, symlinks)).encode()).hexdigest()[:20]
    base = Path(tempfile.gettempdir()) / f"toolferry-etc-{os.getuid()}"
    base.mkdir(mode=0o755, exist_ok=True)
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        # Someone else made (or can write) the shared folder: trust nothing in it.
        return _copy_etc(tempfile.mkdtemp(prefix="toolferry-etc-"), extras, symlinks)
    final = base / digest
    if final.is_dir():
        return str(final)
    staged = _copy_etc(str(base), extras, symlinks)
    try:
        os.rename(staged, final)
    except OSError:  # another process made it first
        shutil.rmtree(staged, ignore_errors=True)
    return str(final)


def _copy_etc(parent: str, extras: tuple[str, ...], symlinks: tuple[tuple[str, str], ...]) -> str:
    """A new folder laid out like /etc with just the allowed entries."""
    folder = tempfile.mkdtemp(prefix="staging-", dir=parent)
    os.chmod(folder, 0o755)  # /etc is world-readable; tasks only read it
    for path in extras:
        dest = os.path.join(folder, posixpath.relpath(path, "/etc"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            if os.path.isdir(path):
                # Inner symlinks stay links (ssl/certs points into /usr/share, shared too).
                shutil.copytree(path, dest, symlinks=True)
            else:
                shutil.copy2(path, dest)  # follows a top-level link, as the bind did
        except OSError:
            continue  # gone or unreadable since the scan: as --ro-bind-try would skip it
    for link, target in symlinks:
        dest = os.path.join(folder, posixpath.relpath(link, "/etc"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if not os.path.lexists(dest):
            os.symlink(target, dest)
    return folder


def _ref_path(spec: ExecSpec) -> Path:
    return spec.scratch / f"bwrap-ref-{spec.index}"


def _write_ref(path: Path, ref: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(ref)
    os.replace(tmp, path)


def _on_disk(root: str, path: str) -> str:
    return posixpath.join(root, path.lstrip("/"))


def _expand_etc(root: str) -> list[str]:
    """The /etc paths :data:`ETC_ENTRIES` names under ``root``, patterns expanded, in order."""
    paths: list[str] = []
    for entry in ETC_ENTRIES:
        if any(char in entry for char in "*?["):
            matches = glob.glob(glob.escape(_on_disk(root, "/etc")) + "/" + entry)
            found = sorted("/etc/" + posixpath.relpath(m, _on_disk(root, "/etc")) for m in matches)
        else:
            found = ["/etc/" + entry]
        paths += [p for p in found if p not in paths]
    return paths


def bwrap_args(
    spec: ExecSpec,
    *,
    host_root: HostRoot,
    status_fd: int,
    exists: Callable[[str], bool],
    bwrap_path: str = "bwrap",
) -> list[str]:
    """The bwrap command line that runs ``spec`` (pure: ``exists`` answers for host paths).

    Raises RuntimeFailure for a workdir or mount target that cannot be used (see
    :func:`container_path_problem`)."""
    args = [bwrap_path, "--tmpfs", "/"]
    for directory in host_root.dirs:
        args += ["--ro-bind", directory, directory]
    # The snapshot makes /etc one read-only mount: a task that mounts or works below /etc
    # gets the entry-by-entry binds instead, which leave room for its own paths there.
    below_etc = [m.container for m in spec.mounts] + ([spec.workdir] if spec.workdir else [])
    snapshot = host_root.etc_snapshot
    if any(_within(p, "/etc") for p in below_etc):
        snapshot = None
    if snapshot:
        args += ["--ro-bind", snapshot, "/etc"]
    for link, target in host_root.symlinks:
        if not (snapshot and _within(link, "/etc")):
            args += ["--symlink", target, link]
    for extra in host_root.extras:  # "-try": an entry may have gone since the scan
        if not (snapshot and _within(extra, "/etc")):
            args += ["--ro-bind-try", extra, extra]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for mount in spec.mounts:
        target = _checked_target(mount.container, host_root, exists, what="mount target")
        args += ["--ro-bind" if mount.read_only else "--bind", str(mount.host), target]
    workdir = "/"
    if spec.workdir:
        workdir = _checked_target(spec.workdir, host_root, exists, what="workdir")
        if host_root.shared_path_of(host_root.resolve(workdir)) is None:
            args += ["--dir", workdir]  # created like docker does; shared paths already exist
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


def container_path_problem(
    path: str, host_root: HostRoot, exists: Callable[[str], bool]
) -> str | None:
    """Why the sandbox cannot provide the container path ``path`` (as a mount target or
    workdir), or None if it can. The message starts with the path."""
    if not posixpath.isabs(path):
        return f"{path!r} is not an absolute path"
    target = _normalised(path)
    if target == "/":
        return (
            f"{path} cannot be used with the none runtime: the sandbox's root holds the "
            "host's shared system directories and cannot be replaced"
        )
    real = host_root.resolve(target)
    if _within(real, "/proc"):
        return (
            f"{path} cannot be used with the none runtime: /proc is the sandbox's own "
            "process file system"
        )
    shared = host_root.shared_path_of(real)
    if shared is not None and not exists(real):
        where = real if real == target else f"{real} (where {target} leads)"
        return (
            f"{path} cannot be used with the none runtime: it lies under {shared}, which the "
            f"none runtime shares read-only from the host, and {where} does not exist there "
            f"to be mounted over; use a path outside {shared} or the docker runtime"
        )
    return None


def _checked_target(
    path: str, host_root: HostRoot, exists: Callable[[str], bool], what: str
) -> str:
    problem = container_path_problem(path, host_root, exists)
    if problem is not None:
        raise RuntimeFailure(f"{what} {problem}")
    return _normalised(path)


def _normalised(path: str) -> str:
    """``path`` without ``.``, ``..``, repeated or trailing slashes (POSIX keeps a leading
    ``//``, which would slip past the prefix checks)."""
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("/") else normal


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

    def __init__(
        self,
        bwrap_path: str = "bwrap",
        *,
        host_root: HostRoot | None = None,
        snapshot_etc: bool = True,
    ) -> None:
        self._bwrap = bwrap_path
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # refs this process started
        self._host_root = host_root  # scanned on first use unless given (tests)
        self._snapshots = EtcSnapshots() if snapshot_etc and host_root is None else None

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

    def path_problem(self, container_paths: list[str]) -> str | None:
        """Why the first of ``container_paths`` that the sandbox cannot provide is unusable,
        or None if all are usable: for admission, so such a task is refused at submission.

        Pass every container path of a task (workdir, volumes, inputs, outputs, stdout and
        stderr). Each is judged as a mount target, as :meth:`start` judges the workdir and the
        mounts: a path in a shared read-only host path must exist on the host. That is
        conservative for a file whose folder, not itself, becomes the mount (an output
        ``/usr/local/x.txt`` would mount over the existing ``/usr/local``), a setup that
        hides host programs anyway."""
        host_root = self.host_root()
        for path in container_paths:
            problem = container_path_problem(path, host_root, os.path.exists)
            if problem is not None:
                return problem
        return None

    def start(self, spec: ExecSpec) -> str:
        """Start bwrap detached (own session) with the executor's stdio on the spec's files."""
        host_root = self.host_root()
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
                host_root=host_root,
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
        _write_ref(_ref_path(spec), ref)
        return ref

    def find(self, spec: ExecSpec) -> str | None:
        """The ref :meth:`start` noted beside the status file, if it got that far."""
        try:
            return _ref_path(spec).read_text() or None
        except OSError:
            return None

    def wait(self, ref: str, spec: ExecSpec) -> int:
        """Wait for bwrap to end and return the executor's exit code (re-attach: poll /proc).

        A program that could not be executed gives 127 (not found) or 126 (not executable)."""
        proc = _Ref.parse(ref)
        with self._lock:
            child = self._children.get(ref)
        bwrap_code: int | None = None  # known only for a bwrap this process started
        if child is not None:
            code = child.wait()
            with self._lock:
                self._children.pop(ref, None)
            bwrap_code = code if code >= 0 else _SIGNAL_EXIT_BASE - code
        else:
            while proc.alive():
                time.sleep(POLL_SECONDS)
        recorded = _read_status(proc.status)
        exit_code = recorded.get("exit-code")
        if isinstance(exit_code, int):
            return exit_code  # recorded only for a program bwrap managed to exec
        # The program never ran, or bwrap was killed before it could record how it ended. If
        # bwrap died of an error (exit 1), or a bwrap we re-attach to had started the sandbox,
        # and stderr holds only bwrap's lines, they say why.
        if bwrap_code == _BWRAP_DIED or (bwrap_code is None and "child-pid" in recorded):
            failure = _bwrap_message(spec.stderr)
            if failure is not None:
                return _exec_failure_code(failure, spec)
        if bwrap_code is not None:
            return bwrap_code
        if "child-pid" in recorded:
            # bwrap itself was SIGKILLed (it records the code for any other end of a program
            # it started), or the sandbox was before the program started, with no message.
            note = "toolferry: the sandbox was killed before it could record the exit code\n"
            with suppress(OSError), spec.stderr.open("ab") as fh:
                fh.write(note.encode())
            return _SIGNAL_EXIT_BASE + signal.SIGKILL
        raise RuntimeFailure(
            f"executor {ref} ended without recording an exit code in {proc.status}: "
            "it never started or its state file was removed"
        )

    def sweep(self, keep: Callable[[str], bool]) -> int:
        """Nothing to sweep: an ended sandbox leaves only its status file, which goes with the
        attempt's folder."""
        return 0

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

    def host_root(self) -> HostRoot:
        """What the sandboxes share of this host (scanned once; /etc snapshot kept fresh)."""
        with self._lock:
            if self._host_root is None:
                self._host_root = scan_host_root()
                if self._snapshots:
                    self._host_root = self._snapshots.current(self._host_root)
            elif self._snapshots:
                self._host_root = self._snapshots.current(self._host_root)
            return self._host_root

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


def _bwrap_message(stderr: Path) -> str | None:
    """bwrap's error, when the stderr file holds nothing but bwrap's own lines (``bwrap: ...``,
    the last one being the fatal one); else None."""
    try:
        with stderr.open("rb") as fh:
            data = fh.read(_MAX_BWRAP_MESSAGE + 1)
    except OSError:
        return None
    lines = data.decode(errors="replace").splitlines()
    if not lines or len(data) > _MAX_BWRAP_MESSAGE:
        return None
    if not all(line.startswith("bwrap: ") for line in lines):
        return None
    return lines[-1][len("bwrap: ") :]


def _exec_failure_code(failure: str, spec: ExecSpec) -> int:
    """127 or 126 for bwrap's ``execvp <program>: <reason>`` (like a shell: 127 only when the
    program does not exist); RuntimeFailure for any other error (no sandbox)."""
    prefix = f"execvp {spec.command[0]}: "
    if not failure.startswith(prefix):
        raise RuntimeFailure(
            f"bubblewrap could not set up the sandbox of executor {spec.index} of task "
            f"{spec.task_id}: {failure}"
        )
    reason = failure[len(prefix) :]
    return _NOT_FOUND if reason == os.strerror(errno.ENOENT) else _NOT_EXECUTABLE


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
