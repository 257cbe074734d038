"""Formats are told apart by their bytes; the name and an unchecked claim count for nothing."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from tests.unit.catalogue.disks.builders import ova_bytes, ovf_xml, sif_bytes, squashfs_partition

from toolferry.catalogue.disks.detect import (
    Detection,
    FileFormat,
    detect,
    detect_file,
    is_vmdk_descriptor,
    sniff,
)
from toolferry.domain.environment.vocabulary import ContentType, Kind
from toolferry.domain.errors import InvalidTask

QCOW2 = b"QFI\xfb" + struct.pack(">I", 3) + b"\x00" * 504
VMDK = b"KDMV" + struct.pack("<I", 1) + b"\x00" * 504
VMDK3 = b"COWD" + b"\x00" * 508
VMDK_TEXT = b'# Disk DescriptorFile\nversion=1\nRW 2048 FLAT "/etc/passwd" 0\n'
VDI = b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\x00") + b"\x7f\x10\xda\xbe"
VHDX = b"vhdxfile" + "QEMU".encode("utf-16-le")
SIF = sif_bytes([squashfs_partition()])
OVA = ova_bytes([("vm.ovf", ovf_xml()), ("disk1.vmdk", VMDK)])


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (QCOW2, FileFormat.QCOW2),
        (VMDK, FileFormat.VMDK),
        (VMDK3, FileFormat.VMDK),
        (VMDK_TEXT, FileFormat.VMDK),
        (VDI, FileFormat.VDI),
        (VHDX, FileFormat.VHDX),
        (SIF, FileFormat.SIF),
        (OVA, FileFormat.OVA),
        (b"\x00" * 4096, None),
        (b"", None),
        (b"#!/bin/sh\necho hello\n", None),
    ],
)
def test_sniff_reads_the_signature(head: bytes, expected: FileFormat | None) -> None:
    assert sniff(head) is expected


def test_a_tar_whose_first_member_is_not_an_ovf_is_not_an_ova() -> None:
    plain_tar = ova_bytes([("disk1.vmdk", VMDK), ("vm.ovf", ovf_xml())], manifest=False)
    assert plain_tar[257:262] == b"ustar"
    assert sniff(plain_tar) is None
    with pytest.raises(InvalidTask, match="declared ova but does not carry the ova signature"):
        detect(plain_tar, "ova")


def test_vmdk_descriptor_text_is_recognised_with_any_case_and_leading_space() -> None:
    assert is_vmdk_descriptor(b"\xef\xbb\xbf  # disk descriptorFILE\n")
    assert not is_vmdk_descriptor(VMDK)


def test_without_a_signature_only_a_declared_raw_is_accepted() -> None:
    zeros = b"\x00" * 512
    assert detect(zeros, "raw") is FileFormat.RAW
    assert detect(zeros, " RAW ") is FileFormat.RAW
    with pytest.raises(InvalidTask, match="declare the format raw") as err:
        detect(zeros, name="upload.img")
    assert err.value.field == "format"
    assert "upload.img" in str(err.value)


def test_a_qcow2_declared_raw_is_refused() -> None:
    with pytest.raises(InvalidTask, match="declared raw but its bytes are a qcow2 image"):
        detect(QCOW2, "raw", name="disk.raw")


def test_a_declared_format_must_match_the_bytes() -> None:
    assert detect(VMDK, "vmdk") is FileFormat.VMDK
    with pytest.raises(InvalidTask, match="declared qcow2 but its bytes are a vmdk image"):
        detect(VMDK, "qcow2")
    with pytest.raises(InvalidTask, match="declared vdi but does not carry the vdi signature"):
        detect(b"\x00" * 512, "vdi")


def test_an_unknown_declared_format_names_the_choices() -> None:
    with pytest.raises(InvalidTask, match="'iso' is not one of qcow2, raw, vmdk") as err:
        detect(QCOW2, "iso")
    assert err.value.field == "format"


def test_detect_file_ignores_the_file_name(tmp_path: Path) -> None:
    disguised = tmp_path / "looks-like.qcow2"
    disguised.write_bytes(SIF)
    found = detect_file(disguised)
    assert found.format is FileFormat.SIF
    assert found.kind is Kind.APPTAINER_SIF
    assert found.content_type is ContentType.SIF


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        (FileFormat.QCOW2, ContentType.QCOW2),
        (FileFormat.RAW, ContentType.RAW),
        (FileFormat.VMDK, ContentType.VMDK),
        (FileFormat.OVA, ContentType.OVA),
        (FileFormat.VDI, None),
        (FileFormat.VHDX, None),
    ],
)
def test_disk_formats_map_to_vm_disk_entries(
    fmt: FileFormat, content_type: ContentType | None
) -> None:
    assert Detection(fmt).kind is Kind.VM_DISK
    assert Detection(fmt).content_type is content_type
