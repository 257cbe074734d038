"""Reading qcow2 headers and recorded `qemu-img info` output, and refusing disks that name other
files (no qemu-img needed: the real runs are in tests/integration/catalogue/disks)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from toolferry.catalogue.disks.detect import FileFormat
from toolferry.catalogue.disks.info import check_self_contained, inspect_disk, parse_qemu_info
from toolferry.catalogue.disks.qcow2 import check_qcow2_header, read_qcow2_header
from toolferry.catalogue.disks.qemu import DiskToolError
from toolferry.domain.errors import InvalidTask


def qcow2_header(
    *,
    version: int = 3,
    backing_offset: int = 0,
    size: int = 4 << 20,
    crypt: int = 0,
    incompatible: int = 0,
) -> bytes:
    head = b"QFI\xfb" + struct.pack(">IQIIQI", version, backing_offset, 0, 16, size, crypt)
    head = head.ljust(72, b"\x00")
    if version >= 3:
        head += struct.pack(">QQQII", incompatible, 0, 0, 4, 104)
    return head.ljust(512, b"\x00")


def test_a_plain_qcow2_header_is_read() -> None:
    header = check_qcow2_header(qcow2_header(size=10 << 20, incompatible=0b11))
    assert header.version == 3
    assert header.virtual_size == 10 << 20
    assert header.cluster_bits == 16
    assert header.dirty and header.corrupt
    assert not header.has_backing_file and not header.has_external_data_file


def test_a_version_2_header_has_no_feature_bits() -> None:
    header = check_qcow2_header(qcow2_header(version=2))
    assert header.version == 2 and header.incompatible_features == 0


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (qcow2_header(backing_offset=0x200), "has a backing file"),
        (qcow2_header(incompatible=1 << 2), "external data file"),
        (qcow2_header(crypt=2), "is encrypted"),
        (qcow2_header(version=1), "qcow version 1 image"),
    ],
)
def test_unsafe_or_unsupported_qcow2_headers_are_refused(head: bytes, problem: str) -> None:
    with pytest.raises(InvalidTask, match=problem) as err:
        check_qcow2_header(head, name="evil.qcow2")
    assert err.value.field == "file"
    assert "evil.qcow2" in str(err.value)


def test_a_truncated_header_is_refused() -> None:
    with pytest.raises(InvalidTask, match="does not start with a qcow2 header"):
        read_qcow2_header(b"QFI\xfb\x00")
    with pytest.raises(InvalidTask, match="truncated qcow2 version 3 header"):
        read_qcow2_header(qcow2_header()[:76])


def test_a_backing_file_is_refused_before_qemu_img_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_qemu(*_: Any, **__: Any) -> dict[str, Any]:
        raise AssertionError("qemu-img must not see an image that names other files")

    monkeypatch.setattr("toolferry.catalogue.disks.info.qemu_img_info", no_qemu)
    child = tmp_path / "child.qcow2"
    child.write_bytes(qcow2_header(backing_offset=0x200))
    with pytest.raises(InvalidTask, match=r"child\.qcow2 has a backing file"):
        inspect_disk(child)
    descriptor = tmp_path / "split.vmdk"
    descriptor.write_bytes(b'# Disk DescriptorFile\nRW 8 FLAT "/etc/shadow" 0\n')
    with pytest.raises(InvalidTask, match="VMDK descriptor that points at other files"):
        inspect_disk(descriptor, "vmdk")


def test_inspect_refuses_files_that_are_not_single_disks(tmp_path: Path) -> None:
    sif = tmp_path / "x"
    sif.write_bytes(b"\x00" * 32 + b"SIF_MAGIC\x00" + b"\x00" * 100)
    with pytest.raises(InvalidTask, match="x is a sif file, not a single disk image"):
        inspect_disk(sif)


# Recorded from qemu-img 7.2 (Debian bookworm) for a 4 MiB image made by `qemu-img create`.
QCOW2_WITH_BACKING = {
    "backing-filename-format": "qcow2",
    "virtual-size": 4194304,
    "filename": "/data/b.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "format-specific": {
        "type": "qcow2",
        "data": {
            "compat": "1.1",
            "compression-type": "zlib",
            "lazy-refcounts": False,
            "refcount-bits": 16,
            "corrupt": False,
            "extended-l2": False,
        },
    },
    "full-backing-filename": "/data/a.qcow2",
    "backing-filename": "a.qcow2",
    "dirty-flag": False,
}
QCOW2_WITH_DATA_FILE = {
    "virtual-size": 4194304,
    "filename": "/data/c.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "format-specific": {
        "type": "qcow2",
        "data": {
            "compat": "1.1",
            "data-file": "/etc/passwd",
            "data-file-raw": False,
            "corrupt": True,
        },
    },
    "dirty-flag": True,
}
VMDK_STREAM = {
    "virtual-size": 4194304,
    "filename": "/data/a.vmdk",
    "cluster-size": 65536,
    "format": "vmdk",
    "actual-size": 12288,
    "format-specific": {
        "type": "vmdk",
        "data": {
            "cid": 1457694983,
            "parent-cid": 4294967295,
            "create-type": "streamOptimized",
            "extents": [
                {
                    "compressed": True,
                    "virtual-size": 4194304,
                    "filename": "/data/a.vmdk",
                    "cluster-size": 65536,
                    "format": "",
                }
            ],
        },
    },
    "dirty-flag": False,
}


def test_recorded_qcow2_info_is_parsed() -> None:
    info = parse_qemu_info(QCOW2_WITH_BACKING, FileFormat.QCOW2, file_size=196624, sha256="ab")
    assert info.virtual_size == 4 << 20
    assert info.actual_size == 200704
    assert info.file_size == 196624
    assert info.cluster_size == 65536
    assert info.backing_file == "/data/a.qcow2"
    assert info.subformat == "1.1"
    assert not info.dirty and not info.corrupt
    assert info.digest == "sha256:ab"
    with pytest.raises(InvalidTask, match=r"b.qcow2 has a backing file \(a.qcow2\)"):
        check_self_contained(info, Path("/data/b.qcow2"))


def test_a_data_file_and_the_flags_are_read_and_refused() -> None:
    info = parse_qemu_info(QCOW2_WITH_DATA_FILE, FileFormat.QCOW2, file_size=1, sha256="00")
    assert info.data_file == "/etc/passwd"
    assert info.dirty and info.corrupt
    with pytest.raises(InvalidTask, match="external data file"):
        check_self_contained(info, Path("/data/c.qcow2"))


def test_a_vmdk_may_name_only_itself_as_extent() -> None:
    info = parse_qemu_info(VMDK_STREAM, FileFormat.VMDK, file_size=12288, sha256="00")
    assert info.subformat == "streamOptimized"
    assert info.extents == ("/data/a.vmdk",)
    check_self_contained(info, Path("/data/a.vmdk"))
    with pytest.raises(InvalidTask, match=r"extents live in other files \(a.vmdk\)"):
        check_self_contained(info, Path("/data/other.vmdk"))


def test_a_missing_qemu_img_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    disk = tmp_path / "d.qcow2"
    disk.write_bytes(qcow2_header())
    with pytest.raises(
        DiskToolError, match=r"qemu-img is not installed.*apt-get install qemu-utils"
    ):
        inspect_disk(disk)
