"""Running ``qemu-img``: ``info --output=json`` and ``convert``, bounded in time and memory.

Every call names the format explicitly (``-f``): letting qemu probe would let a raw disk
whose first sector happens to look like a qcow2 header be read as qcow2. Paths are passed
absolute because qemu reads ``json:{...}`` and ``<protocol>:`` prefixes in file names as
options; a name starting with ``/`` can be neither.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolferry.domain.errors import InvalidTask, Unavailable

__all__ = [
    "INSTALL_HINT",
    "DiskToolError",
    "qemu_img",
    "qemu_img_convert",
    "qemu_img_info",
]

INSTALL_HINT = "install qemu-utils (apt-get install qemu-utils), which provides qemu-img"
# A crafted image can make `qemu-img info` allocate or spin without end (CVE-2015-5162), so its
# address space and CPU time are capped, as OpenStack does for the same reason.
INFO_ADDRESS_SPACE = 2 << 30
INFO_TIMEOUT = 30.0


class DiskToolError(Unavailable):
    """qemu-img is missing, or did not finish in time: a problem of this host, not of the input."""


def qemu_img() -> str:
    """The path of ``qemu-img``; raises :class:`DiskToolError` saying how to install it."""
    found = shutil.which("qemu-img")
    if found is None:
        raise DiskToolError(f"qemu-img is not installed on this host: {INSTALL_HINT}")
    return found


def _limits(cpu_seconds: float) -> list[str]:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return []  # the wall-clock timeout still applies
    return [prlimit, f"--as={INFO_ADDRESS_SPACE}", f"--cpu={max(1, round(cpu_seconds))}", "--"]


def _run(
    argv: Sequence[str], *, timeout: float, subject: Path, action: str, blame_input: bool
) -> str:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=None
        )
    except subprocess.TimeoutExpired:
        raise DiskToolError(
            f"qemu-img {action} of {subject.name} did not finish within {timeout:.0f} s"
        ) from None
    if proc.returncode != 0:
        # qemu-img quotes the absolute path; users should see only the file's own name.
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        if lines:
            reason = lines[-1].replace(str(subject), subject.name)
        elif proc.returncode < 0:
            reason = f"stopped by signal {-proc.returncode} (over its CPU or memory limit?)"
        else:
            reason = f"exit status {proc.returncode}"
        reason = reason.removeprefix("qemu-img: ")
        message = f"qemu-img {action} failed on {subject.name}: {reason}"
        if blame_input:
            raise InvalidTask("file", message)
        raise DiskToolError(message)
    return proc.stdout


def qemu_img_info(path: Path, fmt: str, *, timeout: float = INFO_TIMEOUT) -> dict[str, Any]:
    """``qemu-img info --output=json`` of ``path`` read as ``fmt``.

    ``--force-share`` lets this read an image that a running VM holds locked (a read of
    metadata cannot harm the VM); a failure is the input's fault and raises
    :class:`InvalidTask` naming the file.
    """
    path = path.absolute()
    argv = [
        *_limits(timeout),
        qemu_img(),
        "info",
        "--output=json",
        "--force-share",
        "-f",
        fmt,
        str(path),
    ]
    out = _run(argv, timeout=timeout, subject=path, action="info", blame_input=True)
    try:
        data = json.loads(out)
    except json.JSONDecodeError as exc:
        raise DiskToolError(f"qemu-img info of {path.name} printed no JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DiskToolError(f"qemu-img info of {path.name} printed {type(data).__name__}")
    return data


def qemu_img_convert(
    src: Path,
    src_format: str,
    dest: Path,
    dest_format: str,
    *,
    timeout: float,
    options: Sequence[str] = (),
) -> None:
    """``qemu-img convert`` ``src`` into a new file ``dest``.

    Without ``--force-share``: a copy of an image that a VM is writing would be torn, and
    the lock error says so. The source was inspected before, so a failure here is taken to
    be the host's (disk full, ...) and raises :class:`DiskToolError`.
    """
    src, dest = src.absolute(), dest.absolute()
    argv = [qemu_img(), "convert", "-q", "-f", src_format, "-O", dest_format]
    if options:
        argv += ["-o", ",".join(options)]
    argv += [str(src), str(dest)]
    _run(argv, timeout=timeout, subject=src, action="convert", blame_input=False)
