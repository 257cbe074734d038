"""Real services the tests use: a Docker Engine (and its Swarm), the busybox test image,
bubblewrap, py-tes 0.4.2, PostgreSQL, Slurm.

Each ``check_*``/``ensure_*`` function returns what a test needs, or raises
:class:`ServiceUnavailable` whose message says how to get the service running. Standard library
only, so that ``scripts/setup.sh`` can run it before anything else is set up::

    python tests/helpers/services.py ensure-busybox-image
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGE = "toolferry-test/busybox:1"
PYTES04_VERSION = "0.4.2"

SETUP_HINT = "run scripts/setup.sh (as root)"
DOCKERD_HINT = f"{SETUP_HINT}, or start dockerd --iptables=false --bridge=none &"


class ServiceUnavailable(RuntimeError):
    """A service a test needs is missing or does not answer; the message says how to fix it."""


def docker_host() -> str:
    """The Docker Engine address tests use: DOCKER_HOST, else the default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker(
    *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Runs the docker CLI against :func:`docker_host`; never raises on a non-zero exit."""
    return _run_cli(
        "docker",
        ["--host", docker_host(), *args],
        stdin=stdin,
        timeout=timeout,
        missing=f"the docker CLI is not installed: {SETUP_HINT}",
        stuck=f"is the engine at {docker_host()} stuck? {DOCKERD_HINT}",
    )


def _run_cli(
    name: str,
    args: list[str],
    *,
    stdin: bytes | None,
    timeout: float,
    missing: str,
    stuck: str,
) -> subprocess.CompletedProcess[bytes]:
    """Runs the CLI ``name`` with ``args``; ServiceUnavailable (``missing``, or ``stuck``
    after a timeout) when it cannot answer, never for a non-zero exit."""
    cli = shutil.which(name)
    if cli is None:
        raise ServiceUnavailable(missing)
    try:
        return subprocess.run(
            [cli, *args], input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        shown = " ".join(args)[:120]
        raise ServiceUnavailable(
            f"{name} {shown} did not finish within {timeout}s: {stuck}"
        ) from exc


def check_docker_engine() -> str:
    """Returns the address of a Docker Engine that answers."""
    proc = docker("version", "--format", "{{.Server.Version}}", timeout=30)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ServiceUnavailable(
            f"no Docker Engine answers at {docker_host()} ({reason[-1] if reason else 'no output'})"
            f": {DOCKERD_HINT}"
        )
    return docker_host()


def busybox_rootfs_tar(busybox: Path) -> bytes:
    """A root filesystem holding a static busybox: /bin/<applet> links, /usr/bin -> /bin, /tmp.

    ``busybox --list`` names ``busybox`` itself; linking that over the binary would leave an
    image that cannot run anything, so it is skipped.
    """
    listed = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    applets = sorted({name for name in listed.stdout.split() if name and name != "busybox"})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = kind, mode, target
            tar.addfile(info)

        add("bin", tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("usr", tarfile.DIRTYPE, 0o755)
        add("usr/bin", tarfile.SYMTYPE, 0o777, "../bin")
        binary = tar.gettarinfo(str(busybox), arcname="bin/busybox")
        binary.uid = binary.gid = 0
        binary.uname = binary.gname = "root"
        with busybox.open("rb") as fh:
            tar.addfile(binary, fh)
        for applet in applets:
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, "busybox")
    return buffer.getvalue()


def ensure_busybox_image(tag: str = TEST_IMAGE) -> str:
    """Returns ``tag``, first importing it from the host's static busybox if the engine lacks it.

    Nothing is pulled (no registry is reachable on the test machines).
    """
    check_docker_engine()
    if docker("image", "inspect", tag).returncode == 0:
        return tag
    found = shutil.which("busybox") or "/bin/busybox"
    busybox = Path(found)
    if not busybox.is_file():
        raise ServiceUnavailable(
            f"no busybox binary to build {tag} from: apt-get install busybox-static"
        )
    imported = docker("import", "-", tag, stdin=busybox_rootfs_tar(busybox))
    if imported.returncode != 0:
        raise ServiceUnavailable(
            f"docker import of {tag} failed: {imported.stderr.decode(errors='replace').strip()}"
        )
    # A dynamically linked busybox imports fine but cannot start: find out now, not in a test.
    trial = docker("run", "--rm", "--network", "none", tag, "true")
    if trial.returncode != 0:
        docker("image", "rm", tag)
        raise ServiceUnavailable(
            f"{tag} built from {busybox} cannot run ({trial.stderr.decode(errors='replace')!r}); "
            "it needs the static busybox: apt-get install busybox-static"
        )
    return tag


def check_bwrap() -> str:
    """Returns the path of a bubblewrap that can start a sandbox here."""
    path = shutil.which("bwrap")
    if path is None:
        raise ServiceUnavailable(
            f"bubblewrap is not installed: apt-get install bubblewrap, or {SETUP_HINT}"
        )
    trial = subprocess.run(
        [path, "--ro-bind", "/", "/", "--dev", "/dev", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if trial.returncode != 0:
        raise ServiceUnavailable(
            f"{path} cannot start a sandbox here ({trial.stderr.strip()}); it needs root or "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    return path


def check_pytes04_python() -> Path:
    """Returns the interpreter of the venv holding the old TES client py-tes 0.4.2."""
    python = REPO_ROOT / ".venv-pytes04" / "bin" / "python"
    hint = (
        f"{SETUP_HINT}, or: python3 -m venv .venv-pytes04 && "
        f".venv-pytes04/bin/pip install py-tes=={PYTES04_VERSION} six"
    )
    if not python.exists():
        raise ServiceUnavailable(f"{python} does not exist: {hint}")
    probe = subprocess.run(
        [python, "-c", "import importlib.metadata as m, tes; print(m.version('py-tes'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0 or probe.stdout.strip() != PYTES04_VERSION:
        raise ServiceUnavailable(
            f"{python} does not import py-tes {PYTES04_VERSION} "
            f"({(probe.stdout + probe.stderr).strip()[-300:]}): {hint}"
        )
    return python


PODMAN_GLOBAL_ARGS = ("--runtime", "runc", "--cgroup-manager=cgroupfs")
PODMAN_ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")
PODMAN_HINT = f"apt-get install podman runc, or {SETUP_HINT}"


def podman(
    *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Runs the podman CLI with the options this host needs; never raises on a non-zero exit."""
    return _run_cli(
        "podman",
        [*PODMAN_GLOBAL_ARGS, *args],
        stdin=stdin,
        timeout=timeout,
        missing=f"podman is not installed: {PODMAN_HINT}",
        stuck=PODMAN_HINT,
    )


def check_podman() -> str:
    """Returns the path of a podman whose storage and OCI runtime (runc) answer."""
    proc = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ServiceUnavailable(
            f"podman {' '.join(PODMAN_GLOBAL_ARGS)} info failed "
            f"({reason[-1] if reason else 'no output'}): {PODMAN_HINT}"
        )
    return shutil.which("podman") or "podman"


def ensure_busybox_image_podman(tag: str = TEST_IMAGE) -> str:
    """Returns ``tag``, first importing it into podman's storage from the host's static busybox
    if podman lacks it (podman names it ``localhost/<tag>``). Nothing is pulled."""
    check_podman()
    if podman("image", "exists", tag).returncode == 0:
        return tag
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.is_file():
        raise ServiceUnavailable(
            f"no busybox binary to build {tag} from: apt-get install busybox-static"
        )
    imported = podman("import", "--quiet", "-", tag, stdin=busybox_rootfs_tar(busybox))
    if imported.returncode != 0:
        raise ServiceUnavailable(
            f"podman import of {tag} failed: {imported.stderr.decode(errors='replace').strip()}"
        )
    ulimits = [arg for value in PODMAN_ULIMITS for arg in ("--ulimit", value)]
    trial = podman("run", "--rm", "--network", "none", *ulimits, tag, "true")
    if trial.returncode != 0:
        podman("image", "rm", tag)
        raise ServiceUnavailable(
            f"{tag} in podman cannot run ({trial.stderr.decode(errors='replace')!r}); it needs "
            "the static busybox (apt-get install busybox-static) and runc"
        )
    return tag


def main(argv: list[str]) -> int:
    commands = {
        "ensure-busybox-image": lambda: print(ensure_busybox_image()),
        "ensure-busybox-image-podman": lambda: print(ensure_busybox_image_podman()),
    }
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: {Path(__file__).name} {{{','.join(commands)}}}", file=sys.stderr)
        return 2
    try:
        commands[argv[0]]()
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def check_qemu_img() -> str:
    """Returns the path of a qemu-img that runs (Debian qemu-utils, which also has qemu-io)."""
    path = shutil.which("qemu-img")
    hint = f"apt-get install qemu-utils, or {SETUP_HINT}"
    if path is None:
        raise ServiceUnavailable(f"qemu-img is not installed: {hint}")
    trial = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    if trial.returncode != 0:
        raise ServiceUnavailable(f"{path} --version failed ({trial.stderr.strip()}): {hint}")
    return path


# -- OCI registry and skopeo (the catalogue's OCI tests) ----------------------------------


def _version_of(binary: str, *args: str) -> str:
    """First line of ``binary args`` (a version banner), or ServiceUnavailable if it fails."""
    trial = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=False)
    if trial.returncode != 0:
        raise ServiceUnavailable(
            f"{binary} {' '.join(args)} failed ({(trial.stdout + trial.stderr).strip()[-300:]})"
        )
    return (trial.stdout or trial.stderr).strip().splitlines()[0]


def check_registry_binary() -> str:
    """Returns the path of Debian's ``docker-registry`` (distribution), which tests start."""
    path = shutil.which("docker-registry") or shutil.which("registry")
    if path is None:
        raise ServiceUnavailable(
            f"no OCI registry binary: apt-get install docker-registry, or {SETUP_HINT}"
        )
    _version_of(path, "--version")
    return path


def check_skopeo() -> str:
    """Returns the path of a working ``skopeo``."""
    path = shutil.which("skopeo")
    if path is None:
        raise ServiceUnavailable(
            f"skopeo is not installed: apt-get install skopeo, or {SETUP_HINT}"
        )
    _version_of(path, "--version")
    return path


# -- PostgreSQL (the store's PostgreSQL tests) --------------------------------------------

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_HINT = (
    f"{SETUP_HINT}; or by hand: apt-get install postgresql, add 'host all all 127.0.0.1/32 "
    "trust' at the top of pg_hba.conf, pg_ctlcluster --skip-systemctl-redirect 15 main start, "
    "su postgres -c 'createdb test'; or point TOOLFERRY_TEST_POSTGRES_URL at a server where "
    "that user may create databases"
)


def check_postgres() -> str:
    """Returns the URL (TOOLFERRY_TEST_POSTGRES_URL, else the local ``test`` database) of a
    PostgreSQL server that answers, as a user who may create databases for tests."""
    url = os.environ.get("TOOLFERRY_TEST_POSTGRES_URL") or POSTGRES_URL
    try:
        import psycopg  # not at the top: setup.sh runs this file before the venv exists
    except ImportError as exc:
        raise ServiceUnavailable(
            f"psycopg is not installed ({exc}): {SETUP_HINT}, or .venv/bin/pip install -e '.[test]'"
        ) from None
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()
        raise ServiceUnavailable(
            f"no PostgreSQL answers at {url} ({reason[0] if reason else type(exc).__name__}): "
            f"{POSTGRES_HINT}"
        ) from None
    if not row or not row[0]:
        raise ServiceUnavailable(
            f"the user of {url} may not create databases (tests make one each): "
            "ALTER ROLE ... CREATEDB, or use the postgres user"
        )
    return url


# -- Slurm and Docker Swarm (the batch backends' tests) -----------------------------------

SLURM_CLIS = ("sinfo", "sbatch", "squeue", "scancel")
SLURM_USABLE_STATES = frozenset({"idle", "mixed", "allocated", "completing"})
SLURM_HINT = (
    f"{SETUP_HINT}; or by hand: apt-get install slurm-wlm munge, write /etc/slurm/slurm.conf "
    "as scripts/setup.sh does (one node, partition debug), then start munged (as user munge), "
    "slurmctld and slurmd"
)
SWARM_HINT = f"{SETUP_HINT}, or: docker swarm init --advertise-addr 127.0.0.1"


def _slurm(*args: str) -> subprocess.CompletedProcess[bytes]:
    return _run_cli(
        args[0],
        list(args[1:]),
        stdin=None,
        timeout=30,
        missing=f"{args[0]} is not installed: {SLURM_HINT}",
        stuck=f"is slurmctld stuck? {SLURM_HINT}",
    )


def check_slurm() -> str:
    """Returns the default partition of a Slurm controller that answers and has a usable node
    (idle, mixed, allocated or completing; not down, drained or unknown)."""
    for cli in SLURM_CLIS:
        if shutil.which(cli) is None:
            raise ServiceUnavailable(f"{cli} is not installed: {SLURM_HINT}")
    conf = Path(os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf")
    if not conf.is_file():  # else every Slurm command retries reading it for 60 s
        raise ServiceUnavailable(f"there is no {conf}: {SLURM_HINT}")
    proc = _slurm("sinfo", "-h", "-o", "%P|%a|%T|%N")
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ServiceUnavailable(
            f"sinfo failed ({reason[-1] if reason else 'no output'}): is slurmctld running? "
            f"{SLURM_HINT}"
        )
    rows = [line.split("|") for line in proc.stdout.decode(errors="replace").splitlines()]
    defaults = [row for row in rows if len(row) == 4 and row[0].endswith("*")]
    if not defaults:
        raise ServiceUnavailable(f"Slurm has no default partition (sinfo: {rows}): {SLURM_HINT}")
    partition = defaults[0][0].rstrip("*")
    states = {row[2] for row in defaults}
    if defaults[0][1] != "up" or not states & SLURM_USABLE_STATES:
        nodes = ",".join(row[3] for row in defaults)
        raise ServiceUnavailable(
            f"Slurm partition {partition} is {defaults[0][1]} with nodes {nodes} in states "
            f"{sorted(states)}: {SETUP_HINT} (it resumes the node), or: scontrol update "
            f"nodename={nodes} state=resume (is slurmd running? see /var/log/slurm/slurmd.log)"
        )
    return partition


def check_swarm() -> str:
    """Returns the address (DOCKER_HOST form) of a Docker Engine that is an active manager of
    a Docker Swarm (so it may create services)."""
    check_docker_engine()
    proc = docker(
        "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}", timeout=30
    )
    state = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0 or state != "active true":
        reason = state or proc.stderr.decode(errors="replace").strip()
        raise ServiceUnavailable(
            f"the Docker Engine at {docker_host()} is not an active Swarm manager "
            f"(swarm state and manager: {reason or 'unknown'}): {SWARM_HINT}"
        )
    return docker_host()
