"""The metadata formats (oai_dc and the native one with its generated schema), sets,
identifiers and datestamps."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from lxml import etree
from tests.unit.catalogue.oai_xsd import NSMAP, check

from toolferry.catalogue.oai import Repository, record_of
from toolferry.catalogue.oai.dates import datestamp
from toolferry.catalogue.oai.native import VOLATILE, native
from toolferry.catalogue.oai.native_schema import native_schema
from toolferry.catalogue.oai.oai_dc import oai_dc
from toolferry.catalogue.oai.sets import in_set, slug
from toolferry.catalogue.oai.xmltree import serialize
from toolferry.domain.environment import (
    Classification,
    Environment,
    Hardware,
    ToolInterface,
    environment_from_dict,
    environment_to_dict,
)

REPO = Repository(
    name="Test catalogue",
    base_url="https://hub.example.org/oai",
    repository_id="hub.example.org",
    admin_emails=("ops@example.org",),
    catalogue_url="https://hub.example.org/api/v1/environments",
)
HARDWARE = {
    "cpu_cores": 4,
    "ram_gb": 8.5,
    "disk_gb": 20,
    "gpus": 1,
    "cpu_architecture": "x86_64",
    "storage_type": "nvme",
    "interconnect": "infiniband",
}


def full() -> Environment:
    """An entry with every field set, ratings and counters included."""
    return environment_from_dict(
        {
            "id": "v2-id",
            "name": "lab/align",
            "version": 2,
            "kind": "vm-disk",
            "digest": "sha256:" + "b" * 64,
            "base": "lab/align:1",
            "status": "deprecated",
            "review": "trusted",
            "created": "2024-03-01T12:00:00.250000+00:00",
            "updated": "2024-03-02T14:30:00+02:00",
            "owner_id": "ada",
            "group_id": "genomics",
            "permissions": "rw,rw,r-",
            "ratings": [5, 4],
            "total_exports": 3,
            "active_deployments": 2,
            "classification": {
                "title": "Aligner <fast> & \x01 exact",
                "description": "Aligns reads.\nTwo lines.",
                "community": ["Life Sciences", "Teaching"],
                "purpose": ["research"],
                "content_type": "qcow2",
                "runtime_technology": "vm",
                "runtime_implementation": "kvm 8.2",
                "management_layer": "cloud",
                "management_implementation": "openstack 2024.1",
                "location": "https://cloud.example.org/images/42",
                "image_type": "implicit",
                "content_refs": ["https://example.org/ref.fa"],
                "checksum": "md5:" + "c" * 32,
                "virtual_hardware": HARDWARE,
                "environment_hardware": {"cpu_architecture": "arm64"},
                "resource_profile": "cpu-bound",
                "minimal_hardware": {"ram_gb": 8},
                "execution_type": "job",
                "user_interaction": "indirect",
                "user_interface": "cli",
                "operating_system": ["Ubuntu 22.04"],
                "software_packages": ["samtools 1.17", "bwa 0.7"],
                "service_dependencies": ["license server"],
            },
            "interface": {
                "command": ["bwa", "mem", "{ref}", "{reads}", "-t", "{threads}"],
                "inputs": [
                    {"name": "ref", "path": "/in/ref.fa", "description": "reference"},
                    {"name": "reads", "path": "/in/reads", "type": "DIRECTORY"},
                ],
                "outputs": [{"name": "bam", "path": "/out/a.bam", "default_url": "file:///x"}],
                "parameters": [{"name": "threads", "default": "4", "description": "cores"}],
                "workdir": "/work",
            },
        }
    )


def element(xml: etree._Element | Any) -> etree._Element:
    """An ElementTree element as lxml parses its serialisation."""
    return etree.fromstring(serialize(xml))


# oai_dc


def test_oai_dc_maps_the_classification_to_dublin_core() -> None:
    dc = element(oai_dc(record_of("hub.example.org", full()), REPO))
    check("oai_dc.xsd", dc)
    pairs = [(etree.QName(e).localname, e.text) for e in dc]
    assert pairs == [
        ("title", "Aligner <fast> & \ufffd exact"),
        ("creator", "ada"),
        ("subject", "Life Sciences"),
        ("subject", "Teaching"),
        ("subject", "research"),
        ("subject", "Ubuntu 22.04"),
        ("subject", "samtools 1.17"),
        ("subject", "bwa 0.7"),
        ("description", "Aligns reads.\nTwo lines."),
        ("publisher", "Test catalogue"),
        ("date", "2024-03-01T12:00:00Z"),
        ("type", "Software"),
        ("type", "vm-disk"),
        ("format", "qcow2"),
        ("identifier", "https://hub.example.org/api/v1/environments/lab/align/versions/2"),
        ("identifier", "lab/align:2"),
        ("identifier", "sha256:" + "b" * 64),
        ("source", "https://cloud.example.org/images/42"),
        ("relation", "oai:hub.example.org:lab/align:1"),
        ("relation", "https://example.org/ref.fa"),
        ("relation", "license server"),
    ]


def test_oai_dc_leaves_out_what_an_entry_does_not_have() -> None:
    sparse = dataclasses.replace(
        full(),
        base=None,
        classification=Classification(
            title="Bare", content_type=full().classification.content_type
        ),
    )
    dc = element(
        oai_dc(record_of("hub.example.org", sparse), dataclasses.replace(REPO, catalogue_url=None))
    )
    check("oai_dc.xsd", dc)
    names = [etree.QName(e).localname for e in dc]
    assert names == [
        "title",
        "creator",
        "publisher",
        "date",
        "type",
        "type",
        "format",
        "identifier",
        "identifier",
    ]


# The native format


def _leaves(value: Any, path: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item, path)]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{path}/{key}")]
    if isinstance(value, bool):
        return [(path, "true" if value else "false")]
    return [(path, repr(value) if isinstance(value, int | float) else value)]


def _xml_leaves(node: etree._Element, path: str = "") -> list[tuple[str, str]]:
    found = []
    for child in node:
        here = f"{path}/{etree.QName(child).localname}"
        found += _xml_leaves(child, here) if len(child) else [(here, child.text or "")]
    return found


def test_the_native_format_carries_every_field_but_the_live_counters() -> None:
    env = full()
    xml = element(native(record_of("hub.example.org", env), REPO))
    check("native", xml)
    assert xml.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation") == (
        "urn:toolferry:environment:1 https://hub.example.org/oai/schema/environment-1.xsd"
    )
    document = {k: v for k, v in environment_to_dict(env).items() if k not in VOLATILE}
    document["classification"]["title"] = "Aligner <fast> & \ufffd exact"
    assert sorted(_xml_leaves(xml)) == sorted(_leaves(document, ""))
    assert {etree.QName(e).localname for e in xml}.isdisjoint(VOLATILE)
    assert (
        xml.findtext("tf:classification/tf:virtual_hardware/tf:cpu_architecture", namespaces=NSMAP)
        == "amd64"
    )
    assert xml.findtext("tf:updated", namespaces=NSMAP) == "2024-03-02T14:30:00+02:00"


def test_a_minimal_entry_is_valid_too() -> None:
    env = dataclasses.replace(
        full(),
        base=None,
        group_id=None,
        interface=None,
        classification=Classification(
            title="Bare", content_type=full().classification.content_type
        ),
    )
    xml = element(native(record_of("hub.example.org", env), REPO))
    check("native", xml)
    assert xml.find("tf:interface", NSMAP) is None


def test_the_schema_follows_the_model() -> None:
    schema = etree.fromstring(native_schema().encode())
    xs = {"xs": "http://www.w3.org/2001/XMLSchema"}

    def elements(type_name: str) -> list[str]:
        path = f"xs:complexType[@name='{type_name}']/xs:sequence/xs:element/@name"
        return [str(n) for n in schema.xpath(path, namespaces=xs)]

    for cls in (Classification, Hardware, ToolInterface):
        assert elements(cls.__name__) == sorted(f.name for f in dataclasses.fields(cls))
    assert elements("Environment") == sorted(
        f.name for f in dataclasses.fields(Environment) if f.name not in VOLATILE
    )
    kinds = schema.xpath("xs:simpleType[@name='Kind']//xs:enumeration/@value", namespaces=xs)
    assert kinds == ["oci-image", "recipe", "vm-disk", "apptainer-sif"]
    bad = element(native(record_of("hub.example.org", full()), REPO))
    kind = bad.find("tf:kind", NSMAP)
    assert kind is not None
    kind.text = "floppy"
    with pytest.raises(AssertionError, match="floppy"):
        check("native", bad)


# Sets, identifiers, datestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Life Sciences", "life-sciences"),
        ("  Bio-Chemistry!! ", "bio-chemistry"),
        ("Écologie", "ecologie"),
        ("生物学", "h-" + __import__("hashlib").sha256("生物学".encode()).hexdigest()[:12]),
    ],
)
def test_community_slugs(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_set_membership_is_hierarchical() -> None:
    specs = ("community:life-sciences", "kind:oci-image")
    assert in_set("community", specs) and in_set("kind:oci-image", specs)
    assert not in_set("community:life", specs) and not in_set("kind:recipe", specs)


def test_identifiers_name_the_repository_the_entry_and_the_version() -> None:
    assert record_of("hub.example.org", full()).identifier == "oai:hub.example.org:lab/align:2"


def test_datestamps_are_utc_seconds() -> None:
    moment = datetime(2024, 3, 2, 1, 30, 59, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert datestamp(moment) == "2024-03-01T23:30:59Z"
    assert record_of("hub.example.org", full()).updated == datetime(2024, 3, 2, 12, 30, tzinfo=UTC)
