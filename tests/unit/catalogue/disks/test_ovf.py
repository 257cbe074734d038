"""OVF descriptors become the catalogue's hardware and operating system; bad XML is refused."""

from __future__ import annotations

import pytest
from tests.unit.catalogue.disks.builders import ovf_xml

from toolferry.catalogue.disks.ovf import parse_ovf, unit_bytes
from toolferry.domain.environment.hardware import Hardware
from toolferry.domain.errors import InvalidTask


def test_a_vmware_style_descriptor_gives_hardware_os_and_disks() -> None:
    ovf = parse_ovf(ovf_xml(disk_size=12288))
    assert ovf.name == "analysis-vm"
    assert ovf.hardware == Hardware(cpu_cores=2, ram_gb=4, disk_gb=1)
    assert ovf.operating_system == "Ubuntu Linux (64-bit)"
    assert ovf.os_type_id == 94
    assert ovf.os_type == "ubuntu64Guest"
    (disk,) = ovf.disks
    assert disk.disk_id == "vmdisk1"
    assert disk.capacity == 1 << 30
    assert disk.format_name == "vmdk"
    assert disk.file is not None
    assert (disk.file.href, disk.file.size) == ("disk1.vmdk", 12288)
    assert [f.id for f in ovf.files] == ["file1"]


def test_ovf_2_namespace_reads_the_same() -> None:
    ovf = parse_ovf(ovf_xml(namespace="http://schemas.dmtf.org/ovf/envelope/2"))
    assert ovf.hardware.cpu_cores == 2
    assert ovf.disks[0].capacity == 1 << 30


def test_without_a_description_the_cim_os_type_names_the_system() -> None:
    ovf = parse_ovf(ovf_xml(os_id=96, description=None))
    assert ovf.operating_system == "Debian 64-Bit"


@pytest.mark.parametrize(
    ("memory", "units", "ram_gb"),
    [
        ("4096", "byte * 2^20", 4.0),
        ("2048", "MegaBytes", 2.0),
        ("8", "byte * 2^30", 8.0),
        ("1073741824", "byte", 1.0),
    ],
)
def test_memory_units(memory: str, units: str, ram_gb: float) -> None:
    assert parse_ovf(ovf_xml(memory=memory, memory_units=units)).hardware.ram_gb == ram_gb


def test_disk_capacity_in_bytes_by_default() -> None:
    ovf = parse_ovf(ovf_xml(capacity="2147483648", capacity_units=""))
    assert ovf.disks[0].capacity == 2 << 30
    assert ovf.hardware.disk_gb == 2


@pytest.mark.parametrize(
    ("units", "factor"),
    [("byte * 2^10", 1024), ("byte*10^3", 1000), ("GigaBytes", 1 << 30), ("byte", 1)],
)
def test_unit_bytes(units: str, factor: int) -> None:
    assert unit_bytes(units, default=7) == factor
    assert unit_bytes(None, default=7) == 7


@pytest.mark.parametrize("units", ["furlongs", "byte * 3^4", "byte * 2^99"])
def test_unknown_units_are_refused(units: str) -> None:
    with pytest.raises(InvalidTask, match="unsupported allocation unit"):
        unit_bytes(units, default=1)


def test_only_the_default_deployment_configuration_counts() -> None:
    xml = ovf_xml().replace(
        b"<VirtualSystem ",
        b"""<DeploymentOptionSection><Info>sizes</Info>
             <Configuration ovf:id="small"><Label>small</Label></Configuration>
             <Configuration ovf:id="large" ovf:default="true"><Label>large</Label></Configuration>
           </DeploymentOptionSection>
           <VirtualSystem """,
    )
    xml = xml.replace(
        b"<Item>\n        <rasd:AllocationUnits>hertz",
        b"""<Item ovf:configuration="large">
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>14</rasd:VirtualQuantity>
      </Item>
      <Item ovf:configuration="small">
        <rasd:AllocationUnits>hertz""",
    )
    # The small-only item (2 CPUs) is skipped; the large-only item adds 14.
    assert parse_ovf(xml).hardware.cpu_cores == 14


def test_a_doctype_is_refused_before_parsing() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;">]><Envelope>&lol2;</Envelope>'
    )
    with pytest.raises(InvalidTask, match="must not contain a DOCTYPE") as err:
        parse_ovf(bomb)
    assert err.value.field == "ovf"


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        (b"<Envelope><References>", "not well-formed XML"),
        (b"<Project/>", "root element is Project, not an OVF Envelope"),
        (
            ovf_xml().replace(b'ovf:fileRef="file1"', b'ovf:fileRef="nope"'),
            "refers to an unknown file 'nope'",
        ),
        (ovf_xml(capacity="${disk.size}"), "must be a whole number"),
        (ovf_xml(cpus=-1), "must not be negative"),
    ],
)
def test_broken_descriptors_are_refused(xml: bytes, problem: str) -> None:
    with pytest.raises(InvalidTask, match=problem):
        parse_ovf(xml)


def test_zero_memory_makes_no_hardware_claim() -> None:
    assert parse_ovf(ovf_xml(memory="0")).hardware.ram_gb is None


def test_a_huge_descriptor_is_refused() -> None:
    with pytest.raises(InvalidTask, match="larger than"):
        parse_ovf(b"<Envelope>" + b" " * (5 << 20) + b"</Envelope>")
