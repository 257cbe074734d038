"""What an uploaded file is (qcow2, vmdk, vdi, vhdx, OVA, SIF, raw), decided from its bytes.

The file name is never consulted: a name is a claim, the magic bytes are evidence. Raw disks
have no magic at all, so a file is raw only when the uploader says so *and* its bytes do not
look like any other format (a qcow2 header read as raw would hand the guest the image's
metadata, and a later probe could reinterpret the disk; qemu warns about the same trap).

Signatures (offsets in bytes):

=========  ======  =====================================================================
format     offset  bytes
=========  ======  =====================================================================
qcow2      0       ``QFI\\xfb`` (qcow version 1 shares it; :mod:`.qcow2` refuses that one)
vmdk       0       ``KDMV`` (sparse extent, VMDK4) or ``COWD`` (VMDK3); or the text
                   ``# Disk DescriptorFile`` (a descriptor naming other files: see
                   :func:`is_vmdk_descriptor`)
vdi        64      ``7f 10 da be`` (little-endian 0xbeda107f, after a 64-byte banner)
vhdx       0       ``vhdxfile``
sif        32      ``SIF_MAGIC\\0`` (after the 32-byte launch script)
ova        257     ``ustar`` (a POSIX tar) whose first member is an ``.ovf`` descriptor, as
                   the OVF specification (DSP0243) requires of an OVA
=========  ======  =====================================================================
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from toolferry.domain.environment.vocabulary import ContentType, Kind
from toolferry.domain.errors import InvalidTask

__all__ = [
    "DISK_FORMATS",
    "HEAD_SIZE",
    "Detection",
    "FileFormat",
    "detect",
    "detect_file",
    "is_vmdk_descriptor",
    "read_head",
    "sniff",
]

HEAD_SIZE = 64 * 1024  # room for a tar PAX header before the first member's header


class FileFormat(StrEnum):
    QCOW2 = "qcow2"
    RAW = "raw"
    VMDK = "vmdk"
    VDI = "vdi"
    VHDX = "vhdx"
    OVA = "ova"
    SIF = "sif"


DISK_FORMATS = frozenset(
    {FileFormat.QCOW2, FileFormat.RAW, FileFormat.VMDK, FileFormat.VDI, FileFormat.VHDX}
)

# VDI and VHDX have no catalogue content type: they are imported by converting them.
_CONTENT_TYPES: dict[FileFormat, ContentType | None] = {
    FileFormat.QCOW2: ContentType.QCOW2,
    FileFormat.RAW: ContentType.RAW,
    FileFormat.VMDK: ContentType.VMDK,
    FileFormat.VDI: None,
    FileFormat.VHDX: None,
    FileFormat.OVA: ContentType.OVA,
    FileFormat.SIF: ContentType.SIF,
}

_VMDK_DESCRIPTOR = b"# disk descriptorfile"
_VDI_SIGNATURE = b"\x7f\x10\xda\xbe"
_SIF_MAGIC = b"SIF_MAGIC\x00"


@dataclass(frozen=True)
class Detection:
    """A detected format with the catalogue kind and content type it maps to."""

    format: FileFormat

    @property
    def kind(self) -> Kind:
        return Kind.APPTAINER_SIF if self.format is FileFormat.SIF else Kind.VM_DISK

    @property
    def content_type(self) -> ContentType | None:
        """``None`` for vdi and vhdx, which the catalogue stores only after conversion."""
        return _CONTENT_TYPES[self.format]


def is_vmdk_descriptor(head: bytes) -> bool:
    """True for a text VMDK descriptor (it lists extent files by path rather than holding data)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[: len(_VMDK_DESCRIPTOR)].lower() == _VMDK_DESCRIPTOR


def _first_tar_member(head: bytes) -> str | None:
    try:
        with tarfile.open(fileobj=io.BytesIO(head), mode="r:") as tar:
            member = tar.next()
    except (tarfile.TarError, EOFError, ValueError):
        return None
    return None if member is None else member.name


def sniff(head: bytes) -> FileFormat | None:
    """The format whose signature ``head`` (the file's first bytes) carries, if any."""
    if head.startswith(b"QFI\xfb"):
        return FileFormat.QCOW2
    if head.startswith((b"KDMV", b"COWD")) or is_vmdk_descriptor(head):
        return FileFormat.VMDK
    if head.startswith(b"vhdxfile"):
        return FileFormat.VHDX
    if head[64:68] == _VDI_SIGNATURE:
        return FileFormat.VDI
    if head[32:42] == _SIF_MAGIC:
        return FileFormat.SIF
    if head[257:262] == b"ustar":
        first = _first_tar_member(head)
        if first is not None and first.lower().endswith(".ovf"):
            return FileFormat.OVA
    return None


def _parse_declared(declared: str) -> FileFormat:
    try:
        return FileFormat(declared.strip().lower())
    except ValueError:
        known = ", ".join(member.value for member in FileFormat)
        raise InvalidTask("format", f"{declared!r} is not one of {known}") from None


def detect(head: bytes, declared: str | None = None, *, name: str = "the file") -> FileFormat:
    """The format of a file starting with ``head``, checked against ``declared`` if given.

    Raises :class:`InvalidTask` when the bytes match no format (and raw was not declared),
    or when they contradict the declared format; ``name`` names the file in the message.
    """
    found = sniff(head)
    if declared is None:
        if found is None:
            raise InvalidTask(
                "format",
                f"{name} is not a qcow2, vmdk, vdi, vhdx, OVA or SIF file (no known signature); "
                "declare the format raw if it is a raw disk image",
            )
        return found
    wanted = _parse_declared(declared)
    if found is wanted or (wanted is FileFormat.RAW and found is None):
        return wanted
    if found is None:
        raise InvalidTask(
            "format", f"{name} was declared {wanted} but does not carry the {wanted} signature"
        )
    if wanted is FileFormat.RAW:
        raise InvalidTask(
            "format",
            f"{name} was declared raw but its bytes are a {found} image; a {found} image is "
            f"not accepted as raw (its metadata would become disk contents)",
        )
    raise InvalidTask("format", f"{name} was declared {wanted} but its bytes are a {found} image")


def read_head(path: Path, size: int = HEAD_SIZE) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def detect_file(path: Path, declared: str | None = None) -> Detection:
    """:func:`detect` on the first bytes of ``path``."""
    return Detection(detect(read_head(path), declared, name=path.name))
