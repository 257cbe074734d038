"""Inspecting an uploaded VM disk: its real format, sizes, flags and checksum, or a refusal.

An uploaded disk must be one self-contained file. Formats that can name other files (a
qcow2 backing file or external data file, a VMDK descriptor's extents) would let an
uploader make this host read its own files into the image, so such disks are refused:
before qemu sees them where the header can tell (:mod:`.qcow2`, :mod:`.detect`), and
again from what ``qemu-img info`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolferry.catalogue.disks.detect import (
    DISK_FORMATS,
    FileFormat,
    detect,
    is_vmdk_descriptor,
    read_head,
)
from toolferry.catalogue.disks.qcow2 import check_qcow2_header
from toolferry.catalogue.disks.qemu import INFO_TIMEOUT, DiskToolError, qemu_img_info
from toolferry.domain.errors import InvalidTask
from toolferry.storage.integrity import sha256_file

__all__ = ["DiskInfo", "check_self_contained", "inspect_disk", "parse_qemu_info"]


@dataclass(frozen=True, kw_only=True)
class DiskInfo:
    """What ``qemu-img info`` and a checksum say about one disk image file."""

    format: FileFormat
    virtual_size: int  # bytes the guest sees
    actual_size: int | None  # bytes allocated on the host's file system
    file_size: int  # bytes of the file (what is stored and checksummed)
    cluster_size: int | None
    backing_file: str | None
    data_file: str | None  # qcow2 external data file
    extents: tuple[str, ...]  # vmdk extent files (a self-contained vmdk lists only itself)
    subformat: str | None  # vmdk create-type (e.g. streamOptimized), qcow2 compat level
    dirty: bool
    corrupt: bool
    sha256: str  # hex

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_qemu_info(
    data: Mapping[str, Any], fmt: FileFormat, *, file_size: int, sha256: str
) -> DiskInfo:
    """A :class:`DiskInfo` from the JSON of ``qemu-img info --output=json`` of a ``fmt`` image."""
    virtual_size = _opt_int(data.get("virtual-size"))
    if virtual_size is None:
        raise DiskToolError("qemu-img info reported no virtual-size")
    specific = data.get("format-specific")
    details: Mapping[str, Any] = {}
    if isinstance(specific, Mapping) and isinstance(specific.get("data"), Mapping):
        details = specific["data"]
    extents = tuple(
        str(extent["filename"])
        for extent in details.get("extents", ())
        if isinstance(extent, Mapping) and "filename" in extent
    )
    subformat = details.get("create-type") or details.get("compat")
    backing = data.get("full-backing-filename") or data.get("backing-filename")
    data_file = details.get("data-file")
    return DiskInfo(
        format=fmt,
        virtual_size=virtual_size,
        actual_size=_opt_int(data.get("actual-size")),
        file_size=file_size,
        cluster_size=_opt_int(data.get("cluster-size")),
        backing_file=str(backing) if backing else None,
        data_file=str(data_file) if data_file else None,
        extents=extents,
        subformat=str(subformat) if subformat else None,
        dirty=bool(data.get("dirty-flag", False)),
        corrupt=bool(details.get("corrupt", False)),
        sha256=sha256,
    )


def check_self_contained(info: DiskInfo, path: Path) -> None:
    """Raise :class:`InvalidTask` if ``info`` shows the image at ``path`` naming other files."""
    name = path.name
    if info.backing_file is not None:
        raise InvalidTask(
            "file",
            f"{name} has a backing file ({Path(info.backing_file).name}): an uploaded image "
            "must be self-contained; flatten it first with qemu-img convert",
        )
    if info.data_file is not None:
        raise InvalidTask(
            "file", f"{name} keeps its data in an external data file: it must be self-contained"
        )
    own = path.absolute()
    foreign = [extent for extent in info.extents if Path(extent) != own]
    if foreign:
        raise InvalidTask(
            "file",
            f"{name} is a vmdk whose extents live in other files "
            f"({', '.join(Path(extent).name for extent in foreign)}); upload a single-file "
            "vmdk (monolithicSparse or streamOptimized)",
        )


def inspect_disk(
    path: Path, declared_format: str | None = None, *, timeout: float = INFO_TIMEOUT
) -> DiskInfo:
    """Format (from the bytes, checked against ``declared_format``), sizes, flags, sha256.

    Raises :class:`InvalidTask` naming the file for anything that is not a self-contained
    qcow2, raw, vmdk, vdi or vhdx disk (raw only when declared), and :class:`DiskToolError`
    when qemu-img is missing or too slow.
    """
    head = read_head(path)
    fmt = detect(head, declared_format, name=path.name)
    if fmt not in DISK_FORMATS:
        raise InvalidTask("format", f"{path.name} is a {fmt} file, not a single disk image")
    if fmt is FileFormat.VMDK and is_vmdk_descriptor(head):
        raise InvalidTask(
            "file",
            f"{path.name} is a VMDK descriptor that points at other files; upload a "
            "single-file vmdk (monolithicSparse or streamOptimized) or an OVA",
        )
    if fmt is FileFormat.QCOW2:
        check_qcow2_header(head, name=path.name)
    data = qemu_img_info(path, fmt.value, timeout=timeout)
    info = parse_qemu_info(data, fmt, file_size=path.stat().st_size, sha256=sha256_file(path))
    check_self_contained(info, path)
    return info
