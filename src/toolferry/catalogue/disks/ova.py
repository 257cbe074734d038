"""OVA packages: a tar holding an OVF descriptor first, then a manifest, disks and other files.

Reading is defensive because the archive comes from an uploader: only plain files are
accepted (no links, devices or directories), names must be relative without ``..``, a
name may occur once, sizes must agree with the descriptor, the member count and the
descriptor size are capped, and the manifest (when present) is checked. A disk is never
written under its member name: it is streamed to a path the caller chooses, under a size
limit, through a temporary file that is renamed only once the checksum agrees.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from toolferry.catalogue.disks.convert import convert_disk
from toolferry.catalogue.disks.detect import FileFormat, detect, read_head
from toolferry.catalogue.disks.info import DiskInfo
from toolferry.catalogue.disks.manifest import Checksum, ManifestHasher, parse_manifest
from toolferry.catalogue.disks.ovf import MAX_OVF_BYTES, OvfDescriptor, OvfDisk, parse_ovf
from toolferry.domain.errors import InvalidTask
from toolferry.storage.integrity import CHUNK

__all__ = [
    "DEFAULT_MAX_DISK_BYTES",
    "MAX_MEMBERS",
    "ExtractedDisk",
    "OvaPackage",
    "convert_ova",
    "extract_disk",
    "read_ova",
]

MAX_MEMBERS = 256
DEFAULT_MAX_DISK_BYTES = 256 << 30
_MANIFEST_LIMIT = 1 << 20
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


@dataclass(frozen=True, kw_only=True)
class OvaPackage:
    """The descriptor of an OVA and the sizes of its files."""

    descriptor_name: str
    ovf: OvfDescriptor
    sizes: dict[str, int] = field(default_factory=dict)  # member name → bytes
    manifest: dict[str, Checksum] = field(default_factory=dict)

    @property
    def disks(self) -> tuple[OvfDisk, ...]:
        return self.ovf.disks


@dataclass(frozen=True, kw_only=True)
class ExtractedDisk:
    path: Path
    disk: OvfDisk
    sha256: str  # hex, of the extracted file


def _clean_name(name: str, archive: str) -> str:
    normal = posixpath.normpath(name)
    if name.startswith("/") or normal == ".." or normal.startswith("../") or "\\" in name:
        raise InvalidTask("file", f"{archive}: member {name!r} escapes the package")
    return normal


def _members(tar: tarfile.TarFile, archive: str) -> Iterator[tarfile.TarInfo]:
    for count, member in enumerate(tar, start=1):
        if count > MAX_MEMBERS:
            raise InvalidTask("file", f"{archive} holds more than {MAX_MEMBERS} files")
        if not member.isreg():
            raise InvalidTask(
                "file",
                f"{archive}: member {member.name!r} is not a plain file (links, devices and "
                "directories are not accepted in an OVA)",
            )
        yield member


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, archive: str) -> bytes:
    if member.size > limit:
        raise InvalidTask("file", f"{archive}: {member.name} is larger than {limit} bytes")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file always has one
    with handle:
        return handle.read()


def _open(path: Path) -> tarfile.TarFile:
    # OVA is an uncompressed tar (DSP0243); detecting first refuses anything else by its bytes.
    detect(read_head(path), FileFormat.OVA.value, name=path.name)
    try:
        return tarfile.open(path, mode="r:")
    except tarfile.TarError as exc:
        raise InvalidTask("file", f"{path.name} is not a readable tar archive: {exc}") from None


def _check_manifest(manifest: dict[str, Checksum], name: str, archive: str) -> Checksum | None:
    if not manifest:
        return None
    if name not in manifest:
        raise InvalidTask("manifest", f"{archive}: the manifest does not list {name}")
    return manifest[name]


def read_ova(path: Path) -> OvaPackage:
    """The descriptor, file sizes and manifest of the OVA at ``path`` (nothing is extracted)."""
    archive = path.name
    sizes: dict[str, int] = {}
    descriptor: tuple[str, bytes] | None = None
    manifest_text: str | None = None
    try:
        with _open(path) as tar:
            for member in _members(tar, archive):
                name = _clean_name(member.name, archive)
                if name in sizes:
                    raise InvalidTask("file", f"{archive}: {name} occurs twice")
                sizes[name] = member.size
                if descriptor is None:
                    descriptor = (name, _read_member(tar, member, MAX_OVF_BYTES, archive))
                elif name.lower().endswith(".mf") and manifest_text is None:
                    raw = _read_member(tar, member, _MANIFEST_LIMIT, archive)
                    manifest_text = raw.decode("utf-8", errors="replace")
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidTask("file", f"{archive} is a damaged tar archive: {exc}") from None
    assert descriptor is not None  # detection found an .ovf first member
    manifest = parse_manifest(manifest_text) if manifest_text is not None else {}
    expected = _check_manifest(manifest, descriptor[0], archive)
    if expected is not None:
        hasher = ManifestHasher(expected)
        hasher.update(descriptor[1])
        hasher.verify(descriptor[0])
    ovf = parse_ovf(descriptor[1])
    for ref in ovf.files:
        href = _clean_name(ref.href, archive)
        if href not in sizes:
            raise InvalidTask(
                "file", f"{archive}: the descriptor names {ref.href}, not in the package"
            )
        if ref.size is not None and ref.compression is None and sizes[href] != ref.size:
            raise InvalidTask(
                "file",
                f"{archive}: {ref.href} has {sizes[href]} bytes, the descriptor says {ref.size}",
            )
    return OvaPackage(descriptor_name=descriptor[0], ovf=ovf, sizes=sizes, manifest=manifest)


def _choose(package: OvaPackage, disk_id: str | None, archive: str) -> OvfDisk:
    with_files = [disk for disk in package.disks if disk.file is not None]
    if disk_id is None:
        if not with_files:
            raise InvalidTask("file", f"{archive} holds no disk image")
        return with_files[0]
    for disk in with_files:
        if disk.disk_id == disk_id:
            return disk
    known = ", ".join(disk.disk_id for disk in with_files) or "none"
    raise InvalidTask("disk", f"{archive} has no disk {disk_id!r} (disks: {known})")


def extract_disk(
    path: Path,
    dest: Path,
    *,
    disk_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_DISK_BYTES,
) -> ExtractedDisk:
    """Write disk ``disk_id`` (default: the first with a file) of the OVA at ``path`` to ``dest``.

    Refuses compressed or chunked disk files, disks over ``max_bytes``, and a disk whose
    checksum differs from the manifest.
    """
    archive = path.name
    package = read_ova(path)
    disk = _choose(package, disk_id, archive)
    assert disk.file is not None
    href = _clean_name(disk.file.href, archive)
    if disk.file.compression or disk.file.chunked:
        raise InvalidTask(
            "file", f"{archive}: {href} is stored compressed or in chunks, which is not supported"
        )
    if package.sizes[href] > max_bytes:
        raise InvalidTask("file", f"{archive}: {href} is larger than {max_bytes} bytes")
    hasher = ManifestHasher(_check_manifest(package.manifest, href, archive))
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
    try:
        with _open(path) as tar:
            member = next(
                (m for m in _members(tar, archive) if _clean_name(m.name, archive) == href), None
            )
            source = None if member is None else tar.extractfile(member)
            if source is None:
                raise InvalidTask("file", f"{archive} changed while it was read")
            with source, partial.open("xb") as out:
                written = 0
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > max_bytes:  # the header said otherwise: do not trust it
                        raise InvalidTask("file", f"{archive}: {href} exceeds {max_bytes} bytes")
                    hasher.update(chunk)
                    out.write(chunk)
        hasher.verify(href)
        os.replace(partial, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return ExtractedDisk(path=dest, disk=disk, sha256=hasher.sha256)


def _declared_format(disk: OvfDisk) -> str | None:
    name = disk.format_name
    return name if name in {fmt.value for fmt in FileFormat} else None


def convert_ova(
    path: Path,
    dest: Path,
    dest_format: str = FileFormat.QCOW2.value,
    *,
    disk_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_DISK_BYTES,
) -> DiskInfo:
    """Convert one disk of an OVA (default: the first) to ``dest`` (default qcow2).

    The disk is extracted into a scratch folder beside ``dest`` and checked against the
    format the descriptor names, so a descriptor claiming vmdk for a qcow2 file is refused.
    """
    package_disk = _choose(read_ova(path), disk_id, path.name)
    assert package_disk.file is not None
    base = posixpath.basename(package_disk.file.href)
    # Error messages name the disk by its own file name, when that is a harmless one.
    local = base if _SAFE_NAME.fullmatch(base) and base not in (".", "..") else "disk"
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".ova-") as scratch:
        extracted = extract_disk(
            path, Path(scratch) / local, disk_id=package_disk.disk_id, max_bytes=max_bytes
        )
        return convert_disk(extracted.path, _declared_format(extracted.disk), dest, dest_format)
