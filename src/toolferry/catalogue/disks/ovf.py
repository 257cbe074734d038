"""Reading an OVF descriptor (DMTF DSP0243): files, disks, virtual hardware, operating system.

Elements are matched by local name, so OVF 1.x (``.../ovf/envelope/1``) and 2.x
(``.../ovf/envelope/2``) envelopes read alike. Only the first virtual system and, where a
``DeploymentOptionSection`` offers several configurations, only the default one count.
Virtual hardware items (``rasd:ResourceType``): 3 processor, 4 memory, 17 disk drive.

The XML comes from an uploader: a document type declaration (the carrier of entity
expansion and external entity attacks) is refused before the tree is built.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import xml.parsers.expat
from collections.abc import Iterator
from dataclasses import dataclass

from toolferry.domain.environment.hardware import Hardware
from toolferry.domain.errors import InvalidTask

__all__ = [
    "MAX_OVF_BYTES",
    "OvfDescriptor",
    "OvfDisk",
    "OvfFile",
    "parse_ovf",
    "unit_bytes",
]

MAX_OVF_BYTES = 4 << 20
_GIB = float(1 << 30)
_CPU, _MEMORY = "3", "4"

# CIM_OperatingSystem.OSType values that OVF writes as OperatingSystemSection/@ovf:id
# (DMTF CIM schema); the common ones, for descriptors that carry no Description.
_CIM_OS_TYPES: dict[int, str] = {
    1: "Other",
    2: "Mac OS",
    29: "Solaris",
    36: "Linux",
    42: "FreeBSD",
    43: "NetBSD",
    58: "Windows 2000",
    65: "OpenBSD",
    67: "Windows XP",
    69: "Microsoft Windows Server 2003",
    70: "Microsoft Windows Server 2003 64-Bit",
    73: "Windows Vista",
    74: "Windows Vista 64-Bit",
    76: "Microsoft Windows Server 2008",
    77: "Microsoft Windows Server 2008 64-Bit",
    78: "FreeBSD 64-Bit",
    79: "RedHat Enterprise Linux",
    80: "RedHat Enterprise Linux 64-Bit",
    81: "Solaris 64-Bit",
    82: "SUSE",
    83: "SUSE 64-Bit",
    84: "SLES",
    85: "SLES 64-Bit",
    93: "Ubuntu",
    94: "Ubuntu 64-Bit",
    95: "Debian",
    96: "Debian 64-Bit",
    97: "Linux 2.4.x",
    98: "Linux 2.4.x 64-Bit",
    99: "Linux 2.6.x",
    100: "Linux 2.6.x 64-Bit",
    101: "Linux 64-Bit",
    103: "Microsoft Windows Server 2008 R2",
    104: "VMware ESXi",
    105: "Microsoft Windows 7",
    106: "CentOS 32-bit",
    107: "CentOS 64-bit",
    108: "Oracle Linux 32-bit",
    109: "Oracle Linux 64-bit",
    113: "Microsoft Windows Server 2012",
    114: "Microsoft Windows 8",
    115: "Microsoft Windows 8 64-bit",
    116: "Microsoft Windows Server 2012 R2",
    117: "Microsoft Windows Server 2016",
    118: "Microsoft Windows 8.1",
    119: "Microsoft Windows 8.1 64-bit",
    120: "Microsoft Windows 10",
    121: "Microsoft Windows 10 64-bit",
}

# DSP0004 programmatic units ("byte * 2^20") and the older named ones ("MegaBytes").
_PROGRAMMATIC = re.compile(r"byte(?:\s*\*\s*(\d+)\s*\^\s*(\d+))?", re.IGNORECASE)
_NAMED_UNITS = {
    "byte": 1,
    "bytes": 1,
    "kilobytes": 1 << 10,
    "kb": 1 << 10,
    "megabytes": 1 << 20,
    "mb": 1 << 20,
    "gigabytes": 1 << 30,
    "gb": 1 << 30,
    "terabytes": 1 << 40,
    "tb": 1 << 40,
}


@dataclass(frozen=True, kw_only=True)
class OvfFile:
    """A ``References/File``: a file of the package (``href`` relative to the descriptor)."""

    id: str
    href: str
    size: int | None = None
    compression: str | None = None  # "gzip" when the file is stored compressed
    chunked: bool = False


@dataclass(frozen=True, kw_only=True)
class OvfDisk:
    """A ``DiskSection/Disk``: a virtual disk, backed by a file unless it starts empty."""

    disk_id: str
    capacity: int  # bytes
    file: OvfFile | None = None
    populated_size: int | None = None
    format: str | None = None  # a URL, e.g. ...vmdk.html#streamOptimized

    @property
    def format_name(self) -> str | None:
        """``vmdk``/``qcow2``/``raw``/``vhd``/... guessed from the format URL, if recognisable."""
        if self.format is None:
            return None
        url = self.format.lower()
        for name in ("vmdk", "qcow", "vhdx", "vhd", "vdi", "raw"):
            if name in url:
                return "qcow2" if name == "qcow" else name
        return None


@dataclass(frozen=True, kw_only=True)
class OvfDescriptor:
    """What the catalogue takes from an OVF descriptor."""

    name: str | None
    hardware: Hardware
    operating_system: str | None
    os_type_id: int | None
    os_type: str | None  # a hypervisor's own guest id, e.g. vmw:osType="ubuntu64Guest"
    files: tuple[OvfFile, ...]
    disks: tuple[OvfDisk, ...]


def unit_bytes(units: str | None, *, default: int) -> int:
    """Bytes per unit for a DSP0004 allocation unit string; ``default`` when absent."""
    if units is None or not units.strip():
        return default
    text = units.strip()
    named = _NAMED_UNITS.get(text.lower())
    if named is not None:
        return named
    match = _PROGRAMMATIC.fullmatch(text)
    if match is None:
        raise InvalidTask("ovf", f"unsupported allocation unit {units!r}")
    if match[1] is None:
        return 1
    base, power = int(match[1]), int(match[2])
    if base not in (2, 10) or power > 60:
        raise InvalidTask("ovf", f"unsupported allocation unit {units!r}")
    return int(base**power)


def _refuse_doctype(data: bytes) -> None:
    def refuse(*_: object) -> None:
        raise InvalidTask("ovf", "the OVF descriptor must not contain a DOCTYPE or entities")

    scanner = xml.parsers.expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    try:
        scanner.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise InvalidTask("ovf", f"the OVF descriptor is not well-formed XML: {exc}") from None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _attr(element: ET.Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element if _local(child.tag) == name)


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next(_children(element, name), None)


def _text(element: ET.Element, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def _find(element: ET.Element, name: str) -> ET.Element | None:
    """The first descendant (depth first) called ``name``."""
    return next((node for node in element.iter() if _local(node.tag) == name), None)


def _int(value: str | None, where: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        raise InvalidTask("ovf", f"{where} must be a whole number, not {value!r}") from None
    if number < 0:
        raise InvalidTask("ovf", f"{where} must not be negative")
    return number


def _files(envelope: ET.Element) -> dict[str, OvfFile]:
    files: dict[str, OvfFile] = {}
    references = _child(envelope, "References")
    for node in () if references is None else _children(references, "File"):
        file_id, href = _attr(node, "id"), _attr(node, "href")
        if not file_id or not href:
            raise InvalidTask("ovf", "a References/File lacks ovf:id or ovf:href")
        files[file_id] = OvfFile(
            id=file_id,
            href=href,
            size=_int(_attr(node, "size"), f"the size of file {file_id!r}"),
            compression=_attr(node, "compression") or None,
            chunked=_attr(node, "chunkSize") is not None,
        )
    return files


def _disks(envelope: ET.Element, files: dict[str, OvfFile]) -> tuple[OvfDisk, ...]:
    section = _find(envelope, "DiskSection")
    disks: list[OvfDisk] = []
    for node in () if section is None else _children(section, "Disk"):
        disk_id = _attr(node, "diskId") or ""
        where = f"the capacity of disk {disk_id!r}"
        capacity = _int(_attr(node, "capacity"), where)
        if not disk_id or capacity is None:
            raise InvalidTask("ovf", "a DiskSection/Disk lacks ovf:diskId or ovf:capacity")
        ref = _attr(node, "fileRef")
        if ref is not None and ref not in files:
            raise InvalidTask("ovf", f"disk {disk_id!r} refers to an unknown file {ref!r}")
        populated = _int(_attr(node, "populatedSize"), f"the populatedSize of disk {disk_id!r}")
        disks.append(
            OvfDisk(
                disk_id=disk_id,
                capacity=capacity * unit_bytes(_attr(node, "capacityAllocationUnits"), default=1),
                file=files[ref] if ref is not None else None,
                populated_size=populated,
                format=_attr(node, "format"),
            )
        )
    return tuple(disks)


def _default_configuration(envelope: ET.Element) -> str | None:
    section = _find(envelope, "DeploymentOptionSection")
    if section is None:
        return None
    options = list(_children(section, "Configuration"))
    chosen = next((c for c in options if (_attr(c, "default") or "").lower() == "true"), None)
    chosen = chosen if chosen is not None else (options[0] if options else None)
    return None if chosen is None else _attr(chosen, "id")


def _items(hardware: ET.Element, configuration: str | None) -> Iterator[ET.Element]:
    for item in hardware:
        if not _local(item.tag).endswith("Item"):
            continue
        applies_to = _attr(item, "configuration")
        if applies_to is not None and configuration not in applies_to.split():
            continue
        yield item


def _hardware(
    system: ET.Element | None, disks: tuple[OvfDisk, ...], config: str | None
) -> Hardware:
    cores = 0
    memory = 0
    section = None if system is None else _find(system, "VirtualHardwareSection")
    for item in () if section is None else _items(section, config):
        kind = _text(item, "ResourceType")
        quantity = _int(_text(item, "VirtualQuantity"), "rasd:VirtualQuantity")
        if kind == _CPU:
            cores += quantity or 0
        elif kind == _MEMORY:
            units = _text(item, "AllocationUnits")
            memory += (quantity or 0) * unit_bytes(units, default=1 << 20)
    disk_bytes = sum(disk.capacity for disk in disks)
    return Hardware(
        cpu_cores=float(cores) if cores else None,
        ram_gb=memory / _GIB if memory else None,
        disk_gb=disk_bytes / _GIB if disk_bytes else None,
    )


def _operating_system(system: ET.Element | None) -> tuple[str | None, int | None, str | None]:
    section = None if system is None else _find(system, "OperatingSystemSection")
    if section is None:
        return None, None, None
    type_id = _int(_attr(section, "id"), "OperatingSystemSection/@ovf:id")
    os_type = _attr(section, "osType")
    text = _text(section, "Description")
    if text is None and type_id is not None:
        text = _CIM_OS_TYPES.get(type_id)
    version = _attr(section, "version")
    if text is not None and version and version not in text:
        text = f"{text} {version}"
    return text, type_id, os_type


def parse_ovf(data: bytes) -> OvfDescriptor:
    """Parse an OVF descriptor; raises :class:`InvalidTask` (field ``ovf``) naming the problem."""
    if len(data) > MAX_OVF_BYTES:
        raise InvalidTask("ovf", f"the OVF descriptor is larger than {MAX_OVF_BYTES} bytes")
    _refuse_doctype(data)
    envelope = ET.fromstring(data)
    if _local(envelope.tag) != "Envelope":
        raise InvalidTask("ovf", f"the root element is {_local(envelope.tag)}, not an OVF Envelope")
    files = _files(envelope)
    disks = _disks(envelope, files)
    system = _find(envelope, "VirtualSystem")
    config = _default_configuration(envelope)
    os_text, os_id, os_type = _operating_system(system)
    name = None
    if system is not None:
        name = _text(system, "Name") or _attr(system, "id")
    return OvfDescriptor(
        name=name,
        hardware=_hardware(system, disks, config),
        operating_system=os_text,
        os_type_id=os_id,
        os_type=os_type,
        files=tuple(files.values()),
        disks=disks,
    )
