"""OVA packages are read defensively and disks extracted safely (pure Python, no qemu-img)."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from tests.unit.catalogue.disks.builders import ova_bytes, ovf_xml, sha256_line, write

from toolferry.catalogue.disks.manifest import ManifestHasher, parse_manifest
from toolferry.catalogue.disks.ova import extract_disk, read_ova
from toolferry.domain.errors import InvalidTask

DISK = b"KDMV" + bytes(range(256)) * 40  # stands in for a vmdk; only its bytes are checked


def ova(tmp_path: Path, data: bytes, name: str = "vm.ova") -> Path:
    return write(tmp_path / name, data)


def good_ova(tmp_path: Path) -> Path:
    return ova(
        tmp_path, ova_bytes([("vm.ovf", ovf_xml(disk_size=len(DISK))), ("disk1.vmdk", DISK)])
    )


def test_read_lists_the_descriptor_files_and_manifest(tmp_path: Path) -> None:
    package = read_ova(good_ova(tmp_path))
    assert package.descriptor_name == "vm.ovf"
    assert package.sizes["disk1.vmdk"] == len(DISK)
    assert set(package.manifest) == {"vm.ovf", "disk1.vmdk"}
    assert package.ovf.hardware.cpu_cores == 2
    assert [d.disk_id for d in package.disks] == ["vmdisk1"]


def test_extract_writes_the_disk_where_asked_and_checks_the_manifest(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "first.vmdk"
    dest.parent.mkdir()
    extracted = extract_disk(good_ova(tmp_path), dest)
    assert extracted.path == dest
    assert dest.read_bytes() == DISK
    assert extracted.sha256 == hashlib.sha256(DISK).hexdigest()
    assert extracted.disk.disk_id == "vmdisk1"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["first.vmdk"]  # no temp left


def test_a_disk_that_differs_from_the_manifest_is_not_kept(tmp_path: Path) -> None:
    ovf = ovf_xml(disk_size=len(DISK))
    manifest = sha256_line("vm.ovf", ovf) + sha256_line("disk1.vmdk", DISK[:-1] + b"!")
    path = ova(
        tmp_path,
        ova_bytes(
            [("vm.ovf", ovf), ("disk1.vmdk", DISK), ("vm.mf", manifest.encode())], manifest=False
        ),
    )
    dest = tmp_path / "disk.vmdk"
    with pytest.raises(InvalidTask, match=r"disk1\.vmdk does not match its SHA256 in the manifest"):
        extract_disk(path, dest)
    assert list(tmp_path.iterdir()) == [path]


def test_a_manifest_must_list_every_file(tmp_path: Path) -> None:
    ovf = ovf_xml(disk_size=len(DISK))
    manifest = sha256_line("vm.ovf", ovf).encode()
    files = [("vm.ovf", ovf), ("disk1.vmdk", DISK), ("vm.mf", manifest)]
    with pytest.raises(InvalidTask, match=r"the manifest does not list disk1\.vmdk"):
        extract_disk(ova(tmp_path, ova_bytes(files, manifest=False)), tmp_path / "d")


def test_without_a_manifest_the_disk_is_still_hashed(tmp_path: Path) -> None:
    files = [("vm.ovf", ovf_xml()), ("disk1.vmdk", DISK)]
    extracted = extract_disk(ova(tmp_path, ova_bytes(files, manifest=False)), tmp_path / "d")
    assert extracted.sha256 == hashlib.sha256(DISK).hexdigest()


def test_a_size_limit_applies(tmp_path: Path) -> None:
    with pytest.raises(InvalidTask, match=r"disk1\.vmdk is larger than 100 bytes"):
        extract_disk(good_ova(tmp_path), tmp_path / "d", max_bytes=100)


def test_a_tampered_descriptor_fails_the_manifest(tmp_path: Path) -> None:
    ovf = ovf_xml(disk_size=len(DISK))
    manifest = sha256_line("vm.ovf", ovf.replace(b"vmx-13", b"vmx-14")) + sha256_line(
        "disk1.vmdk", DISK
    )
    files = [("vm.ovf", ovf), ("disk1.vmdk", DISK), ("vm.mf", manifest.encode())]
    with pytest.raises(InvalidTask, match=r"vm\.ovf does not match"):
        read_ova(ova(tmp_path, ova_bytes(files, manifest=False)))


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize(
    ("files", "extra", "problem"),
    [
        (
            [("vm.ovf", ovf_xml()), ("disk1.vmdk", DISK)],
            [symlink("x", "/etc/passwd")],
            "not a plain file",
        ),
        (
            [("vm.ovf", ovf_xml(disk_href="../../etc/passwd")), ("../../etc/passwd", DISK)],
            [],
            "escapes the package",
        ),
        (
            [("vm.ovf", ovf_xml(disk_href="/etc/passwd")), ("disk1.vmdk", DISK)],
            [],
            "escapes the package",
        ),
        ([("vm.ovf", ovf_xml()), ("disk1.vmdk", DISK), ("disk1.vmdk", b"x")], [], "occurs twice"),
        ([("vm.ovf", ovf_xml(disk_href="other.vmdk"))], [], "names other.vmdk, not in the package"),
        (
            [("vm.ovf", ovf_xml(disk_size=5)), ("disk1.vmdk", DISK)],
            [],
            f"disk1.vmdk has {len(DISK)} bytes, the descriptor says 5",
        ),
    ],
)
def test_unsafe_or_inconsistent_packages_are_refused(
    tmp_path: Path,
    files: list[tuple[str, bytes]],
    extra: list[tarfile.TarInfo],
    problem: str,
) -> None:
    path = ova(tmp_path, ova_bytes(files, manifest=False, extra=extra))
    with pytest.raises(InvalidTask, match=problem) as err:
        read_ova(path)
    assert "vm.ova" in str(err.value)


def test_a_file_that_is_not_an_ova_is_refused(tmp_path: Path) -> None:
    disk_first = ova_bytes([("disk1.vmdk", DISK), ("vm.ovf", ovf_xml())], manifest=False)
    with pytest.raises(InvalidTask, match="declared ova but does not carry the ova signature"):
        read_ova(ova(tmp_path, disk_first))


def test_compressed_disk_files_are_refused(tmp_path: Path) -> None:
    ovf = ovf_xml().replace(
        b'ovf:href="disk1.vmdk"', b'ovf:href="disk1.vmdk" ovf:compression="gzip"'
    )
    path = ova(tmp_path, ova_bytes([("vm.ovf", ovf), ("disk1.vmdk", DISK)]))
    with pytest.raises(InvalidTask, match="stored compressed or in chunks"):
        extract_disk(path, tmp_path / "d")


def test_an_unknown_disk_id_names_the_disks(tmp_path: Path) -> None:
    with pytest.raises(InvalidTask, match=r"has no disk 'vmdisk9' \(disks: vmdisk1\)"):
        extract_disk(good_ova(tmp_path), tmp_path / "d", disk_id="vmdisk9")


def test_manifest_lines_are_parsed_and_checked() -> None:
    text = f"SHA1(a.ovf)= {'A' * 40}\nSHA256(b.vmdk) = {'b' * 64}\n\n"
    entries = parse_manifest(text)
    assert entries["a.ovf"].algorithm == "sha1"
    assert entries["a.ovf"].hexdigest == "a" * 40
    assert entries["b.vmdk"].algorithm == "sha256"
    with pytest.raises(InvalidTask, match="line 1 is not"):
        parse_manifest(f"MD5(a.ovf)= {'a' * 32}")
    with pytest.raises(InvalidTask, match="line 1 is not"):
        parse_manifest(f"SHA256(a.ovf)= {'a' * 40}")


def test_a_sha1_manifest_entry_is_verified_with_sha1() -> None:
    (entry,) = parse_manifest(f"SHA1(d)= {hashlib.sha1(b'data').hexdigest()}").values()
    hasher = ManifestHasher(entry)
    hasher.update(b"da")
    hasher.update(b"ta")
    hasher.verify("d")
    assert hasher.sha256 == hashlib.sha256(b"data").hexdigest()
