"""OVA packages (made with tarfile around a vmdk from the real qemu-img) read and converted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.unit.catalogue.disks.builders import ova_bytes, ovf_xml, write

from toolferry.catalogue.disks.convert import convert_disk
from toolferry.catalogue.disks.detect import FileFormat, detect_file
from toolferry.catalogue.disks.ova import convert_ova, read_ova
from toolferry.domain.environment.hardware import Hardware
from toolferry.domain.environment.vocabulary import ContentType
from toolferry.domain.errors import InvalidTask

SIZE = 4 << 20
OFFSET = 2 << 20
PATTERN = bytes((index * 13 + 5) % 253 for index in range(32 * 1024))


def run(*argv: str | Path) -> None:
    subprocess.run([str(arg) for arg in argv], check=True, capture_output=True, timeout=60)


@pytest.fixture
def vmdk(qemu_img: str, tmp_path: Path) -> Path:
    """A 4 MiB streamOptimized vmdk made by qemu-img from a raw disk holding PATTERN at 2 MiB."""
    raw = tmp_path / "seed.raw"
    raw.write_bytes(bytes(OFFSET) + PATTERN + bytes(SIZE - OFFSET - len(PATTERN)))
    path = tmp_path / "disk1.vmdk"
    run(
        qemu_img,
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        raw,
        path,
    )
    raw.unlink()
    return path


def make_ova(tmp_path: Path, disk: bytes, *, fmt_url: str | None = None) -> Path:
    ovf = ovf_xml(disk_size=len(disk), capacity=str(SIZE), capacity_units="byte")
    if fmt_url is not None:
        ovf = ovf.replace(
            b"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized",
            fmt_url.encode(),
        )
    return write(tmp_path / "appliance.ova", ova_bytes([("vm.ovf", ovf), ("disk1.vmdk", disk)]))


def test_an_ova_lists_its_disk_and_hardware(vmdk: Path, tmp_path: Path) -> None:
    path = make_ova(tmp_path, vmdk.read_bytes())
    found = detect_file(path)
    assert found.format is FileFormat.OVA and found.content_type is ContentType.OVA
    package = read_ova(path)
    (disk,) = package.disks
    assert disk.capacity == SIZE
    assert disk.file is not None and disk.file.size == vmdk.stat().st_size
    assert package.ovf.hardware == Hardware(cpu_cores=2, ram_gb=4, disk_gb=SIZE / (1 << 30))
    assert package.ovf.operating_system == "Ubuntu Linux (64-bit)"


def test_the_first_disk_of_an_ova_converts_to_qcow2_with_its_contents(
    vmdk: Path, tmp_path: Path
) -> None:
    path = make_ova(tmp_path, vmdk.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    info = convert_ova(path, out / "appliance.qcow2")
    assert info.format is FileFormat.QCOW2
    assert info.virtual_size == SIZE
    convert_disk(out / "appliance.qcow2", "qcow2", out / "check.raw", "raw")
    data = (out / "check.raw").read_bytes()
    assert data[OFFSET : OFFSET + len(PATTERN)] == PATTERN
    assert data.count(0) == SIZE - len(PATTERN) + PATTERN.count(0)
    assert sorted(p.name for p in out.iterdir()) == ["appliance.qcow2", "check.raw"]


def test_a_disk_that_is_not_what_the_descriptor_says_is_refused(
    qemu_img: str, tmp_path: Path
) -> None:
    impostor = tmp_path / "impostor.qcow2"
    run(qemu_img, "create", "-q", "-f", "qcow2", impostor, str(SIZE))
    path = make_ova(tmp_path, impostor.read_bytes())  # the OVF says vmdk
    with pytest.raises(
        InvalidTask, match=r"disk1\.vmdk was declared vmdk but its bytes are a qcow2"
    ):
        convert_ova(path, tmp_path / "out.qcow2")
    assert not (tmp_path / "out.qcow2").exists()


def test_a_qcow2_with_a_backing_file_inside_an_ova_is_refused(
    qemu_img: str, vmdk: Path, tmp_path: Path
) -> None:
    child = tmp_path / "child.qcow2"
    run(qemu_img, "create", "-q", "-f", "qcow2", "-b", vmdk, "-F", "vmdk", child)
    path = make_ova(
        tmp_path, child.read_bytes(), fmt_url="http://www.gnome.org/~markmc/qcow-image-format.html"
    )
    with pytest.raises(InvalidTask, match=r"disk1\.vmdk has a backing file"):
        convert_ova(path, tmp_path / "out.qcow2")
