"""Reading Apptainer/Singularity SIF files in pure Python (no apptainer needed).

Layout (SIF specification version 01, as written by github.com/sylabs/sif and
github.com/apptainer/sif): little-endian, packed, no alignment padding.

Global header, 128 bytes at offset 0::

    offset size  field
    0      32    launch script, NUL padded ("#!/usr/bin/env run-singularity\\n")
    32     10    magic "SIF_MAGIC\\0"
    42     3     spec version, two ASCII digits + NUL ("01")
    45     3     primary architecture, two ASCII digits + NUL (table _ARCHES)
    48     16    image id (UUID, raw bytes)
    64     8     created (int64, Unix seconds; 0 in a deterministic image)
    72     8     modified (int64, Unix seconds)
    80     8     descriptors free (int64)
    88     8     descriptors total (int64): slots in the descriptor table
    96     8     descriptors offset (int64)
    104    8     descriptors size (int64)
    112    8     data offset (int64)
    120    8     data size (int64)

Descriptor, 585 bytes, ``descriptors total`` of them at ``descriptors offset``::

    offset size  field
    0      4     data type (int32, table SifDataType)
    4      1     used (bool; unused slots are skipped)
    5      4     id (uint32)
    9      4     group id (uint32; 0xf0000000 marks a group, the rest is its number)
    13     4     linked id (uint32; same marking)
    17     8     offset of the object's data (int64)
    25     8     size of the object's data (int64)
    33     8     size with padding (int64)
    41     8     created (int64)
    49     8     modified (int64)
    57     8     uid, 65 8 gid (int64, historical)
    73     128   name, NUL padded
    201    384   extra: for a partition int32 fs type, int32 partition type, 3-byte arch;
                 for a signature int32 hash type, 256-byte signing entity

Apptainer keeps labels and the definition file in a generic JSON object named
``inspect-metadata.json`` (``{"attributes": {"labels": {...}, "deffile": "..."}}``)
as well as, in older images, in ``Def.FILE`` and ``JSON.Labels`` objects: both are read.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, BinaryIO

from toolferry.domain.errors import InvalidTask

__all__ = [
    "DESCRIPTOR",
    "HEADER",
    "SIF_MAGIC",
    "SifDataType",
    "SifDescriptor",
    "SifImage",
    "read_sif",
]

SIF_MAGIC = b"SIF_MAGIC\x00"
HEADER = struct.Struct("<32s10s3s3s16s8q")
DESCRIPTOR = struct.Struct("<i?III7q128s384s")
_PARTITION = struct.Struct("<ii3s")
_GROUP_MASK = 0xF0000000
_MAX_DESCRIPTORS = 4096
_MAX_METADATA_BYTES = 1 << 20
_INSPECT_METADATA = "inspect-metadata.json"


class SifDataType(IntEnum):
    DEFFILE = 0x4001
    ENV_VARS = 0x4002
    LABELS = 0x4003
    PARTITION = 0x4004
    SIGNATURE = 0x4005
    GENERIC_JSON = 0x4006
    GENERIC = 0x4007
    CRYPTO_MESSAGE = 0x4008
    SBOM = 0x4009
    OCI_BLOB = 0x400A
    OCI_IMAGE_INDEX = 0x400B


_FS_TYPES = {1: "squashfs", 2: "ext3", 3: "archive", 4: "raw", 5: "encrypted-squashfs"}
_PART_TYPES = {1: "system", 2: "primary-system", 3: "data", 4: "overlay"}
# Header and partition architecture codes → Go architecture names (sif's arch.go).
_ARCHES = {
    b"01": "386",
    b"02": "amd64",
    b"03": "arm",
    b"04": "arm64",
    b"05": "ppc64",
    b"06": "ppc64le",
    b"07": "mips",
    b"08": "mipsle",
    b"09": "mips64",
    b"10": "mips64le",
    b"11": "s390x",
}


def _arch(code: bytes) -> str | None:
    return _ARCHES.get(code.rstrip(b"\x00"))


def _time(seconds: int) -> datetime | None:
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("utf-8", errors="replace")


@dataclass(frozen=True, kw_only=True)
class SifDescriptor:
    """One used entry of the descriptor table."""

    data_type: int  # a SifDataType value, or an unknown newer one
    id: int
    group_id: int  # 0: not in a group
    linked_id: int
    offset: int
    size: int
    created: datetime | None
    name: str
    fs_type: str | None = None  # partitions only
    partition_type: str | None = None
    architecture: str | None = None

    @property
    def type_name(self) -> str:
        try:
            return SifDataType(self.data_type).name.lower().replace("_", "-")
        except ValueError:
            return f"unknown-{self.data_type:#x}"


@dataclass(frozen=True, kw_only=True)
class SifImage:
    """What a SIF file says about itself."""

    version: str
    architecture: str | None  # Go name (amd64, arm64, ...); None when the image says unknown
    id: uuid.UUID
    created: datetime | None
    modified: datetime | None
    launch_script: str
    descriptors: tuple[SifDescriptor, ...]
    definition: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def partitions(self) -> tuple[SifDescriptor, ...]:
        return tuple(d for d in self.descriptors if d.data_type == SifDataType.PARTITION)

    @property
    def primary_partition(self) -> SifDescriptor | None:
        return next((d for d in self.partitions if d.partition_type == "primary-system"), None)


def _descriptor(raw: bytes) -> SifDescriptor | None:
    (dtype, used, did, group, link, offset, size, _, created, _, _, _, name, extra) = (
        DESCRIPTOR.unpack(raw)
    )
    if not used:
        return None
    fs_type = part_type = arch = None
    if dtype == SifDataType.PARTITION:
        fs, part, arch_code = _PARTITION.unpack_from(extra)
        fs_type = _FS_TYPES.get(fs, f"unknown-{fs}")
        part_type = _PART_TYPES.get(part, f"unknown-{part}")
        arch = _arch(arch_code)
    return SifDescriptor(
        data_type=dtype,
        id=did,
        group_id=group & ~_GROUP_MASK,
        linked_id=link & ~_GROUP_MASK,
        offset=offset,
        size=size,
        created=_time(created),
        name=_text(name),
        fs_type=fs_type,
        partition_type=part_type,
        architecture=arch,
    )


def _read_object(fh: BinaryIO, descriptor: SifDescriptor, name: str) -> bytes:
    if descriptor.size > _MAX_METADATA_BYTES:
        raise InvalidTask("file", f"{name}: the {descriptor.type_name} object is too large")
    fh.seek(descriptor.offset)
    return fh.read(descriptor.size)


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items()}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _metadata(
    fh: BinaryIO, descriptors: tuple[SifDescriptor, ...], name: str
) -> tuple[str | None, dict[str, str]]:
    definition: str | None = None
    labels: dict[str, str] = {}
    for descriptor in descriptors:
        if descriptor.data_type == SifDataType.DEFFILE:
            definition = _read_object(fh, descriptor, name).decode("utf-8", errors="replace")
        elif descriptor.data_type == SifDataType.LABELS:
            labels.update(_labels(_json(_read_object(fh, descriptor, name))))
        elif (
            descriptor.data_type == SifDataType.GENERIC_JSON
            and descriptor.name == _INSPECT_METADATA
        ):
            document = _json(_read_object(fh, descriptor, name))
            if isinstance(document, dict) and isinstance(document.get("data"), dict):
                document = document["data"]  # the shape `apptainer inspect --json` prints
            attributes = document.get("attributes") if isinstance(document, dict) else None
            if isinstance(attributes, dict):
                labels.update(_labels(attributes.get("labels")))
                deffile = attributes.get("deffile")
                if definition is None and isinstance(deffile, str) and deffile:
                    definition = deffile
    return definition, labels


def read_sif(path: Path) -> SifImage:
    """Parse the header, descriptor table, definition file and labels of the SIF at ``path``.

    Raises :class:`InvalidTask` (field ``file``) naming the file when it is not a SIF file
    or its tables point outside it.
    """
    name = path.name
    size = path.stat().st_size
    with path.open("rb") as fh:
        raw = fh.read(HEADER.size)
        if len(raw) < HEADER.size or raw[32:42] != SIF_MAGIC:
            raise InvalidTask("file", f"{name} is not a SIF file (no SIF_MAGIC at byte 32)")
        (launch, _, version, arch, image_id, created, modified, _, total, table_at, _, _, _) = (
            HEADER.unpack(raw)
        )
        if not 0 <= total <= _MAX_DESCRIPTORS:
            raise InvalidTask("file", f"{name} claims {total} SIF descriptors")
        if table_at < HEADER.size or table_at + total * DESCRIPTOR.size > size:
            raise InvalidTask("file", f"{name}: the SIF descriptor table lies outside the file")
        fh.seek(table_at)
        table = fh.read(total * DESCRIPTOR.size)
        descriptors: list[SifDescriptor] = []
        for index in range(total):
            entry = _descriptor(table[index * DESCRIPTOR.size : (index + 1) * DESCRIPTOR.size])
            if entry is None:
                continue
            if entry.offset < 0 or entry.size < 0 or entry.offset + entry.size > size:
                raise InvalidTask(
                    "file",
                    f"{name}: SIF object {entry.id} ({entry.type_name}) lies outside the file",
                )
            descriptors.append(entry)
        found = tuple(descriptors)
        definition, labels = _metadata(fh, found, name)
    architecture = _arch(arch)
    if architecture is None:
        primary = next((d for d in found if d.partition_type == "primary-system"), None)
        architecture = primary.architecture if primary is not None else None
    return SifImage(
        version=_text(version),
        architecture=architecture,
        id=uuid.UUID(bytes=image_id),
        created=_time(created),
        modified=_time(modified),
        launch_script=_text(launch),
        descriptors=found,
        definition=definition,
        labels=labels,
    )
