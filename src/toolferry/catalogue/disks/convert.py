"""Converting a VM disk between qcow2, raw and vmdk with ``qemu-img convert``.

VMDK output is the ``streamOptimized`` subformat: it is one file (no descriptor pointing at
extents), its grains are compressed and written in order so it can be streamed, and it is
the VMDK flavour that OVF packages carry and VMware and VirtualBox import. A hypervisor
that wants to run a VMDK in place converts it once on import, which an export can afford.

The result is written to a temporary file next to ``dest``, inspected like an upload, and
only then renamed over ``dest``: a reader never sees a half-written or unchecked disk.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import replace
from pathlib import Path

from toolferry.catalogue.disks.detect import FileFormat
from toolferry.catalogue.disks.info import DiskInfo, inspect_disk
from toolferry.catalogue.disks.qemu import DiskToolError, qemu_img_convert
from toolferry.domain.errors import InvalidTask

__all__ = ["TARGET_FORMATS", "conversion_timeout", "convert_disk"]

TARGET_FORMATS = frozenset({FileFormat.QCOW2, FileFormat.RAW, FileFormat.VMDK})
_OPTIONS: dict[FileFormat, tuple[str, ...]] = {
    FileFormat.VMDK: ("subformat=streamOptimized",),
}
# Budget: a fixed start-up allowance plus the guest size at a pessimistic 32 MiB/s (a raw
# target is written in full; compressed vmdk output is CPU-bound at about that rate).
BASE_SECONDS = 60.0
MIN_BYTES_PER_SECOND = 32 * (1 << 20)


def conversion_timeout(virtual_size: int) -> float:
    """Seconds allowed to convert a disk of ``virtual_size`` bytes."""
    return BASE_SECONDS + virtual_size / MIN_BYTES_PER_SECOND


def _target(dest_format: str) -> FileFormat:
    try:
        fmt = FileFormat(dest_format.strip().lower())
    except ValueError:
        fmt = None
    if fmt not in TARGET_FORMATS:
        choices = ", ".join(sorted(TARGET_FORMATS))
        raise InvalidTask("format", f"cannot convert to {dest_format!r}: choose one of {choices}")
    assert fmt is not None
    return fmt


def convert_disk(
    src: Path,
    src_format: str | None,
    dest: Path,
    dest_format: str,
    *,
    timeout: float | None = None,
) -> DiskInfo:
    """Convert ``src`` (checked to be ``src_format``, or detected if ``None``) into ``dest``.

    ``src`` may be qcow2, raw (declared), vmdk, vdi or vhdx; ``dest_format`` is qcow2, raw or
    vmdk. Returns the inspected result. Raises :class:`InvalidTask` for an unsafe, corrupt or
    mislabelled source and :class:`DiskToolError` if qemu-img fails or runs out of time.
    """
    target = _target(dest_format)
    source = inspect_disk(src, src_format)
    if source.corrupt:
        raise InvalidTask(
            "file", f"{src.name} is marked corrupt; repair it with qemu-img check -r all first"
        )
    if dest.absolute() == src.absolute():
        raise InvalidTask("dest", "the converted disk must not overwrite its source")
    budget = conversion_timeout(source.virtual_size) if timeout is None else timeout
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
    try:
        qemu_img_convert(
            src,
            source.format.value,
            partial,
            target.value,
            timeout=budget,
            options=_OPTIONS.get(target, ()),
        )
        result = inspect_disk(partial, target.value)
        if result.virtual_size < source.virtual_size:
            raise DiskToolError(
                f"converting {src.name} to {target} shrank it from {source.virtual_size} to "
                f"{result.virtual_size} bytes"
            )
        os.replace(partial, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    # A vmdk names itself as its one extent; after the rename that is dest, not the temp file.
    own = str(dest.absolute())
    return replace(result, extents=tuple(own for _ in result.extents))
