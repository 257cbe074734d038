"""VM disks inspected and converted with the real qemu-img (Debian qemu-utils); small images."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from toolferry.catalogue.disks.convert import convert_disk
from toolferry.catalogue.disks.detect import FileFormat
from toolferry.catalogue.disks.info import inspect_disk
from toolferry.catalogue.disks.qemu import DiskToolError
from toolferry.domain.errors import InvalidTask

SIZE = 4 << 20
OFFSET = 1 << 20
PATTERN = bytes((index * 7 + 3) % 251 for index in range(64 * 1024))


def run(*argv: str | Path) -> None:
    subprocess.run([str(arg) for arg in argv], check=True, capture_output=True, timeout=60)


def qemu_io(qemu_img: str) -> str:
    path = Path(qemu_img).with_name("qemu-io")
    if not path.exists():
        pytest.fail(f"{path} is missing: apt-get install qemu-utils", pytrace=False)
    return str(path)


@pytest.fixture
def qcow2(qemu_img: str, tmp_path: Path) -> Path:
    """A 4 MiB qcow2 made by qemu-img create, holding PATTERN at 1 MiB."""
    path = tmp_path / "source.qcow2"
    pattern = tmp_path / "pattern.bin"
    pattern.write_bytes(PATTERN)
    run(qemu_img, "create", "-q", "-f", "qcow2", path, str(SIZE))
    run(qemu_io(qemu_img), "-f", "qcow2", "-c", f"write -s {pattern} {OFFSET} {len(PATTERN)}", path)
    pattern.unlink()
    return path


def expected_raw() -> bytes:
    return bytes(OFFSET) + PATTERN + bytes(SIZE - OFFSET - len(PATTERN))


def test_inspect_reports_format_sizes_and_checksum(qcow2: Path) -> None:
    info = inspect_disk(qcow2)
    assert info.format is FileFormat.QCOW2
    assert info.virtual_size == SIZE
    assert info.file_size == qcow2.stat().st_size
    assert info.actual_size is not None and info.actual_size > 0
    assert info.cluster_size == 65536
    assert info.backing_file is None and info.data_file is None
    assert not info.dirty and not info.corrupt
    assert info.sha256 == hashlib.sha256(qcow2.read_bytes()).hexdigest()


def test_qcow2_raw_vmdk_qcow2_round_trip_keeps_contents_and_size(
    qcow2: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    raw = convert_disk(qcow2, "qcow2", out / "disk.raw", "raw")
    assert raw.format is FileFormat.RAW and raw.virtual_size == SIZE
    assert (out / "disk.raw").read_bytes() == expected_raw()

    vmdk = convert_disk(out / "disk.raw", "raw", out / "disk.vmdk", "vmdk")
    assert vmdk.format is FileFormat.VMDK and vmdk.virtual_size == SIZE
    assert vmdk.subformat == "streamOptimized"
    assert vmdk.extents == (str((out / "disk.vmdk").absolute()),)
    assert vmdk.file_size < SIZE  # compressed grains, zeros not stored

    back = convert_disk(out / "disk.vmdk", None, out / "back.qcow2", "qcow2")
    assert back.format is FileFormat.QCOW2 and back.virtual_size == SIZE
    assert back.sha256 == hashlib.sha256((out / "back.qcow2").read_bytes()).hexdigest()

    convert_disk(out / "back.qcow2", "qcow2", out / "again.raw", "raw")
    assert (out / "again.raw").read_bytes() == expected_raw()
    assert sorted(p.name for p in out.iterdir()) == [
        "again.raw",
        "back.qcow2",
        "disk.raw",
        "disk.vmdk",
    ]  # no temporary files left behind


def test_a_backing_file_is_refused(qemu_img: str, qcow2: Path, tmp_path: Path) -> None:
    child = tmp_path / "child.qcow2"
    run(qemu_img, "create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", child)
    with pytest.raises(InvalidTask, match=r"child\.qcow2 has a backing file") as err:
        inspect_disk(child)
    assert err.value.field == "file"
    with pytest.raises(InvalidTask, match="has a backing file"):
        convert_disk(child, "qcow2", tmp_path / "flat.raw", "raw")
    assert not (tmp_path / "flat.raw").exists()


def test_an_external_data_file_is_refused(qemu_img: str, tmp_path: Path) -> None:
    image = tmp_path / "split.qcow2"
    run(
        qemu_img, "create", "-q", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}",
        image, "1M",
    )  # fmt: skip
    with pytest.raises(InvalidTask, match=r"split\.qcow2 keeps its data in an external data file"):
        inspect_disk(image)


def test_raw_must_be_declared_and_a_qcow2_cannot_pass_as_raw(qcow2: Path, tmp_path: Path) -> None:
    raw = tmp_path / "plain.img"
    raw.write_bytes(expected_raw())
    with pytest.raises(InvalidTask, match="declare the format raw"):
        inspect_disk(raw)
    info = inspect_disk(raw, "raw")
    assert info.format is FileFormat.RAW and info.virtual_size == SIZE
    with pytest.raises(InvalidTask, match="declared raw but its bytes are a qcow2 image"):
        inspect_disk(qcow2, "raw")


@pytest.mark.parametrize("fmt", ["vdi", "vhdx"])
def test_vdi_and_vhdx_are_detected_and_converted_to_qcow2(
    qemu_img: str, tmp_path: Path, fmt: str
) -> None:
    source = tmp_path / "disk.bin"  # the name says nothing; the bytes decide
    run(qemu_img, "create", "-q", "-f", fmt, source, "2M")
    assert inspect_disk(source).format is FileFormat(fmt)
    result = convert_disk(source, fmt, tmp_path / "disk.qcow2", "qcow2")
    assert result.format is FileFormat.QCOW2 and result.virtual_size == 2 << 20


def test_a_damaged_image_fails_with_the_file_name_only(tmp_path: Path) -> None:
    broken = tmp_path / "broken.qcow2"
    header = bytearray(512)
    header[0:8] = b"QFI\xfb\x00\x00\x00\x03"
    header[20:24] = (99).to_bytes(4, "big")  # a cluster size qemu refuses
    broken.write_bytes(bytes(header))
    with pytest.raises(InvalidTask, match=r"qemu-img info failed on broken\.qcow2") as err:
        inspect_disk(broken)
    assert str(tmp_path) not in str(err.value)  # no server paths in messages


def test_a_corrupt_image_is_reported_and_not_converted(qcow2: Path, tmp_path: Path) -> None:
    data = bytearray(qcow2.read_bytes())
    data[79] |= 0b10  # incompatible_features bit 1: corrupt
    qcow2.write_bytes(bytes(data))
    info = inspect_disk(qcow2)
    assert info.corrupt
    with pytest.raises(InvalidTask, match=r"source\.qcow2 is marked corrupt"):
        convert_disk(qcow2, "qcow2", tmp_path / "x.raw", "raw")


def test_a_conversion_out_of_time_leaves_nothing_behind(qcow2: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DiskToolError, match="did not finish within"):
        convert_disk(qcow2, "qcow2", out / "slow.raw", "raw", timeout=0.001)
    assert list(out.iterdir()) == []


def test_only_qcow2_raw_and_vmdk_are_targets(qcow2: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidTask, match="cannot convert to 'vdi'") as err:
        convert_disk(qcow2, "qcow2", tmp_path / "x.vdi", "vdi")
    assert err.value.field == "format"
    with pytest.raises(InvalidTask, match="must not overwrite its source"):
        convert_disk(qcow2, "qcow2", qcow2, "qcow2")
