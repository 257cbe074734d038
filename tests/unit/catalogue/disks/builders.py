"""Hand-made test files: SIF images written byte by byte, OVF descriptors and OVA archives.

The SIF writer packs every field on its own (rather than reusing the reader's struct
formats) so that a layout mistake in the reader cannot cancel out against the same
mistake here.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFFILE, LABELS, PARTITION, SIGNATURE, GENERIC_JSON = 0x4001, 0x4003, 0x4004, 0x4005, 0x4006
SQUASHFS, PRIMARY_SYSTEM, DATA_PART = 1, 2, 3
SIF_HEADER_BYTES = 128
SIF_DESCRIPTOR_BYTES = 585
LAUNCH = b"#!/usr/bin/env run-singularity\n"


@dataclass
class SifObject:
    data_type: int
    data: bytes
    name: str = ""
    fs_type: int = 0  # partitions
    part_type: int = 0
    arch: bytes = b""
    used: bool = True


def _fixed(value: bytes, size: int) -> bytes:
    assert len(value) <= size
    return value + b"\x00" * (size - len(value))


def sif_bytes(
    objects: Sequence[SifObject],
    *,
    arch: bytes = b"02",
    created: int = 1_700_000_000,
    image_id: uuid.UUID = uuid.UUID("b2659d4e-bd50-4ea5-bd17-eec5e54f918e"),
    spare_slots: int = 0,
) -> bytes:
    """A SIF image: header, descriptor table (with ``spare_slots`` unused entries), data."""
    slots = len(objects) + spare_slots
    table_at = SIF_HEADER_BYTES
    data_at = table_at + slots * SIF_DESCRIPTOR_BYTES
    offsets: list[int] = []
    position = data_at
    for obj in objects:
        offsets.append(position)
        position += len(obj.data)
    header = b"".join(
        [
            _fixed(LAUNCH, 32),  # launch script
            b"SIF_MAGIC\x00",  # magic, 10 bytes
            b"01\x00",  # spec version
            _fixed(arch, 3),  # primary architecture
            image_id.bytes,  # 16 bytes
            struct.pack("<q", created),  # created
            struct.pack("<q", created + 60),  # modified
            struct.pack("<q", spare_slots),  # descriptors free
            struct.pack("<q", slots),  # descriptors total
            struct.pack("<q", table_at),  # descriptors offset
            struct.pack("<q", slots * SIF_DESCRIPTOR_BYTES),  # descriptors size
            struct.pack("<q", data_at),  # data offset
            struct.pack("<q", position - data_at),  # data size
        ]
    )
    assert len(header) == SIF_HEADER_BYTES
    table = b""
    for number, (obj, offset) in enumerate(zip(objects, offsets, strict=True), start=1):
        extra = b""
        if obj.data_type == PARTITION:
            extra = struct.pack("<i", obj.fs_type) + struct.pack("<i", obj.part_type) + obj.arch
        entry = b"".join(
            [
                struct.pack("<i", obj.data_type),
                b"\x01" if obj.used else b"\x00",
                struct.pack("<I", number),  # id
                struct.pack("<I", 0xF0000000 | 1),  # group 1
                struct.pack("<I", 0),  # linked id
                struct.pack("<q", offset),
                struct.pack("<q", len(obj.data)),
                struct.pack("<q", len(obj.data)),  # size with padding
                struct.pack("<q", created),
                struct.pack("<q", created),
                struct.pack("<q", 0),  # uid
                struct.pack("<q", 0),  # gid
                _fixed(obj.name.encode(), 128),
                _fixed(extra, 384),
            ]
        )
        assert len(entry) == SIF_DESCRIPTOR_BYTES
        table += entry
    table += b"\x00" * SIF_DESCRIPTOR_BYTES * spare_slots
    return header + table + b"".join(obj.data for obj in objects)


def squashfs_partition(arch: bytes = b"02", size: int = 4096) -> SifObject:
    # "hsqs" is the squashfs magic; the rest stands in for a file system.
    return SifObject(
        PARTITION,
        b"hsqs" + b"\x00" * (size - 4),
        name="rootfs",
        fs_type=SQUASHFS,
        part_type=PRIMARY_SYSTEM,
        arch=arch,
    )


def ovf_xml(
    *,
    disk_href: str = "disk1.vmdk",
    disk_size: int | None = None,
    capacity: str = "1",
    capacity_units: str = "byte * 2^30",
    disk_format: str = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized",
    cpus: int = 2,
    memory: str = "4096",
    memory_units: str = "byte * 2^20",
    os_id: int = 94,
    description: str | None = "Ubuntu Linux (64-bit)",
    namespace: str = "http://schemas.dmtf.org/ovf/envelope/1",
    extra_files: str = "",
) -> bytes:
    """An OVF envelope in the shape VMware and VirtualBox export."""
    size = f' ovf:size="{disk_size}"' if disk_size is not None else ""
    os_description = f"<Description>{description}</Description>" if description else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="{namespace}" xmlns:ovf="{namespace}"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
    xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:id="file1" ovf:href="{disk_href}"{size}/>{extra_files}
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="{capacity}"
        ovf:capacityAllocationUnits="{capacity_units}" ovf:format="{disk_format}"/>
  </DiskSection>
  <NetworkSection><Info>networks</Info><Network ovf:name="nat"/></NetworkSection>
  <VirtualSystem ovf:id="analysis-vm">
    <Info>A virtual machine</Info>
    <Name>analysis-vm</Name>
    <OperatingSystemSection ovf:id="{os_id}" vmw:osType="ubuntu64Guest">
      <Info>The kind of installed guest operating system</Info>
      {os_description}
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System><vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType></System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>{cpus} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{cpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>{memory_units}</rasd:AllocationUnits>
        <rasd:ElementName>memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{memory}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
""".encode()


def sha256_line(name: str, data: bytes) -> str:
    return f"SHA256({name})= {hashlib.sha256(data).hexdigest()}\n"


def ova_bytes(
    files: Sequence[tuple[str, bytes]],
    *,
    manifest: bool = True,
    extra: Sequence[tarfile.TarInfo] = (),
) -> bytes:
    """A ustar OVA holding ``files`` in order, then a SHA256 manifest, then ``extra`` members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))

        for name, data in files:
            add(name, data)
        if manifest:
            base = files[0][0].rsplit(".", 1)[0]
            add(f"{base}.mf", "".join(sha256_line(n, d) for n, d in files).encode())
        for info in extra:
            tar.addfile(info)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
