"""Real services the tests use: a Docker Engine, the busybox test image, bubblewrap, py-tes 0.4.2.

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
    cli = shutil.which("docker")
    if cli is None:
        raise ServiceUnavailable(f"the docker CLI is not installed: {SETUP_HINT}")
    try:
        return subprocess.run(
            [cli, "--host", docker_host(), *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceUnavailable(
            f"docker {' '.join(args)} did not finish within {timeout}s: is the engine at "
            f"{docker_host()} stuck? {DOCKERD_HINT}"
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


def main(argv: list[str]) -> int:
    commands = {"ensure-busybox-image": lambda: print(ensure_busybox_image())}
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
