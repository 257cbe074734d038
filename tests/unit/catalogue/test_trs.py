"""The TRS mapping: images from pinned locations, versions, tools, filters, files, and a CWL
descriptor that runs the same command as the TES task the interface makes."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toolferry.catalogue import trs
from toolferry.domain.environment import Environment, environment_from_dict

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
LINKS = trs.Links(trs="http://hub/ga4gh/trs/v2", catalogue="http://hub/api/v1/environments")
INTERFACE: dict[str, Any] = {
    "command": ["samtools", "view", "-o", "{out}", "--threads={threads}", "{bam}"],
    "inputs": [{"name": "bam", "path": "/data/in.bam", "description": "Reads"}],
    "outputs": [{"name": "out", "path": "/out/x.sam"}],
    "parameters": [{"name": "threads", "default": "2"}],
}


def env(
    name: str = "lab/align",
    version: int = 1,
    *,
    digest: str = A,
    kind: str = "oci-image",
    location: str | None = "registry.example:5000/lab/align@{digest}",
    interface: dict[str, Any] | None = None,
    classification: dict[str, Any] | None = None,
    **changes: Any,
) -> Environment:
    content_type = {"oci-image": "oci", "recipe": "dockerfile", "vm-disk": "qcow2"}.get(kind, "sif")
    document: dict[str, Any] = {
        "id": f"id-{name}-{version}",
        "name": name,
        "version": version,
        "kind": kind,
        "digest": digest,
        "created": T0.isoformat(),
        "updated": (T0 + timedelta(days=version)).isoformat(),
        "owner_id": "alice",
        "classification": {
            "title": "Aligner",
            "description": "Aligns reads",
            "content_type": content_type,
            **({"location": location.format(digest=digest)} if location else {}),
            **(classification or {}),
        },
        **changes,
    }
    if interface is not None:
        document["interface"] = interface
    return environment_from_dict(document)


@pytest.mark.parametrize(
    ("location", "host", "image_name"),
    [
        ("registry.example:5000/lab/align@{d}", "registry.example:5000", "lab/align@{d}"),
        ("localhost/align@{d}", "localhost", "align@{d}"),
        ("ghcr.io/lab/align:1.2@{d}", "ghcr.io", "lab/align:1.2@{d}"),
        ("lab/align@{d}", None, "lab/align@{d}"),
        ("127.0.0.1:5000/a/b/c@{d}", "127.0.0.1:5000", "a/b/c@{d}"),
    ],
)
def test_a_location_pinned_to_the_digest_is_the_image(
    location: str, host: str | None, image_name: str
) -> None:
    pinned = trs.pinned_image(env(location=location.replace("{d}", A)))
    assert pinned is not None
    assert (pinned.host, pinned.image_name) == (host, image_name.replace("{d}", A))
    assert pinned.reference == location.replace("{d}", A)


@pytest.mark.parametrize(
    "location",
    [
        None,
        f"registry.example/lab/align@{B}",  # pinned to other content
        "registry.example/lab/align:1",  # not pinned
        f"https://registry.example/lab/align@{A}",  # a URL
        f"registry.example/Lab/Align@{A}",  # not an OCI repository name
        f"registry.example/lab/align:bad tag@{A}",
    ],
)
def test_other_locations_are_no_image(location: str | None) -> None:
    found = env(location=location)
    assert trs.pinned_image(found) is None
    data = trs.image_data(found)
    assert "registry_host" not in data and "image_name" not in data
    assert data["checksum"] == [{"checksum": "a" * 64, "type": "sha-256"}]


@pytest.mark.parametrize(
    ("kind", "image_type"),
    [("oci-image", "Docker"), ("recipe", "Docker"), ("apptainer-sif", "Singularity")],
)
def test_image_data_names_the_container_kind(kind: str, image_type: str) -> None:
    assert trs.image_data(env(kind=kind)) == {
        "registry_host": "registry.example:5000",
        "image_name": f"lab/align@{A}",
        "updated": T0.isoformat(),
        "checksum": [{"checksum": "a" * 64, "type": "sha-256"}],
        "image_type": image_type,
    }


def test_a_vm_disk_is_no_container_image_type() -> None:
    sha512 = "sha512:" + "c" * 128
    data = trs.image_data(env(kind="vm-disk", digest=sha512, location=None))
    assert data == {
        "updated": T0.isoformat(),
        "checksum": [{"checksum": "c" * 128, "type": "sha-512"}],
    }


def test_a_tool_version_from_an_entry() -> None:
    version = trs.tool_version(
        env(
            version=2,
            interface=INTERFACE,
            classification={"software_packages": ["samtools 1.17"]},
            review="trusted",
        ),
        LINKS,
        has_containerfile=True,
    )
    assert version == {
        "author": ["alice"],
        "name": "lab/align:2",
        "url": "http://hub/ga4gh/trs/v2/tools/lab%2Falign/versions/2",
        "id": "2",
        "is_production": True,
        "images": [trs.image_data(env(version=2))],
        "descriptor_type": ["CWL"],
        "descriptor_type_version": {"CWL": ["v1.2"]},
        "containerfile": True,
        "meta_version": (T0 + timedelta(days=2)).isoformat(),
        "verified": True,
        "verified_source": ["http://hub/api/v1/environments/lab/align/versions/2"],
        "signed": False,
        "included_apps": ["samtools 1.17"],
    }


def test_a_deprecated_version_is_not_for_production_and_draft_is_not_verified() -> None:
    version = trs.tool_version(env(status="deprecated"), LINKS, has_containerfile=False)
    assert (version["is_production"], version["verified"], version["verified_source"]) == (
        False,
        False,
        [],
    )
    assert (version["descriptor_type"], version["descriptor_type_version"]) == ([], {})


def test_a_tool_is_named_by_its_latest_version() -> None:
    first = env(version=1, location=f"old.example/lab/align@{A}")
    second = env(
        version=2,
        digest=B,
        interface=INTERFACE,
        classification={"title": "Aligner 2", "description": "Faster"},
    )
    tool = trs.tool([first, second], LINKS, has_containerfile=lambda e: e.version == 1)
    assert {k: v for k, v in tool.items() if k != "versions"} == {
        "url": "http://hub/ga4gh/trs/v2/tools/lab%2Falign",
        "id": "lab/align",
        "aliases": ["old.example/lab/align", "registry.example:5000/lab/align"],
        "organization": "lab",
        "name": "Aligner 2",
        "toolclass": trs.TOOL_CLASSES[0],
        "description": "Faster",
        "meta_version": (T0 + timedelta(days=2)).isoformat(),
        "has_checker": False,
    }
    assert [(v["id"], v["containerfile"]) for v in tool["versions"]] == [("1", True), ("2", False)]
    lone = trs.tool([env("align", location=None)], LINKS, has_containerfile=lambda e: False)
    assert (lone["organization"], lone["aliases"], lone["toolclass"]["name"]) == (
        "alice",
        [],
        "Environment",
    )


def test_versions_are_grouped_by_name() -> None:
    listed = [env("a", 1), env("a", 2), env("b", 1), env("c/d", 1), env("c/d", 2)]
    assert [[e.ref for e in g] for g in trs.group_tools(listed)] == [
        ["a:1", "a:2"],
        ["b:1"],
        ["c/d:1", "c/d:2"],
    ]
    assert list(trs.group_tools([])) == []


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        (trs.ToolQuery(), True),
        (trs.ToolQuery(id="lab/align"), True),
        (trs.ToolQuery(id="lab"), False),
        (trs.ToolQuery(alias="registry.example:5000/lab/align"), True),
        (trs.ToolQuery(alias="lab/align"), False),
        (trs.ToolQuery(tool_class="CommandLineTool"), True),
        (trs.ToolQuery(tool_class="Environment"), False),
        (trs.ToolQuery(descriptor_type=trs.DescriptorType.CWL), True),
        (trs.ToolQuery(descriptor_type=trs.DescriptorType.WDL), False),
        (trs.ToolQuery(registry="registry.example:5000"), True),
        (trs.ToolQuery(registry="registry.example"), False),
        (trs.ToolQuery(organization="lab"), True),
        (trs.ToolQuery(organization="alice"), False),
        (trs.ToolQuery(name="align"), True),
        (trs.ToolQuery(name="lab/align"), False),
        (trs.ToolQuery(toolname="ALIGN"), True),
        (trs.ToolQuery(toolname="caller"), False),
        (trs.ToolQuery(description="reads"), True),
        (trs.ToolQuery(description="variants"), False),
        (trs.ToolQuery(author="alice"), True),
        (trs.ToolQuery(author="bob"), False),
        (trs.ToolQuery(checker=False), True),
        (trs.ToolQuery(checker=True), False),
        (trs.ToolQuery(organization="lab", name="align", toolname="align"), True),
        (trs.ToolQuery(organization="lab", name="align", author="bob"), False),
    ],
)
def test_tool_filters(query: trs.ToolQuery, matches: bool) -> None:
    versions = [env(version=1, location=None), env(version=2, interface=INTERFACE)]
    assert query.matches(versions) is matches


# The CWL descriptor

_ESCAPE_OR_REFERENCE = re.compile(r"\\\\|\\\$\(|\\\$\{|\$\(inputs\.([A-Za-z_][A-Za-z0-9_]*)\)")
_CLT_FIELDS = {
    "cwlVersion",
    "class",
    "id",
    "label",
    "doc",
    "requirements",
    "hints",
    "baseCommand",
    "arguments",
    "inputs",
    "outputs",
}


def interpolate(text: str, values: dict[str, str]) -> str:
    """A CWL v1.2 string as a runner reads it (parameter references and v1.1+ escapes); like
    cwltool, strings without ``$(`` or ``${`` are taken as they are."""
    if "$(" not in text and "${" not in text:
        return text

    def sub(match: re.Match[str]) -> str:
        if match.group(1):
            return values[match.group(1)]
        return match.group(0)[1:]

    rest = _ESCAPE_OR_REFERENCE.sub(sub, text)
    assert "$(" not in _ESCAPE_OR_REFERENCE.sub("", text), f"unknown reference in {text!r}"
    return rest


def check_cwl(document: dict[str, Any]) -> None:
    """The structure of a CWL v1.2 CommandLineTool, as far as this registry writes one."""
    assert set(document) <= _CLT_FIELDS, set(document) - _CLT_FIELDS
    assert (document["cwlVersion"], document["class"]) == ("v1.2", "CommandLineTool")
    inputs, outputs = document["inputs"], document["outputs"]
    assert isinstance(inputs, dict) and isinstance(outputs, dict)
    for name, item in {**inputs, **outputs}.items():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
        assert item["type"] in ("File", "Directory", "string"), item
    for item in outputs.values():
        glob = item["outputBinding"]["glob"]
        assert not glob.startswith("/") and ".." not in glob.split("/"), glob
    classes = [r["class"] for r in document["requirements"]]
    assert classes[0] == "DockerRequirement" and len(set(classes)) == len(classes)
    for requirement in document["requirements"]:
        if requirement["class"] == "DockerRequirement":
            assert re.fullmatch(r"\S+@sha(256|512):[0-9a-f]+", requirement["dockerPull"])
            assert requirement.get("dockerOutputDirectory", "/x").startswith("/")
        elif requirement["class"] == "InitialWorkDirRequirement":
            for entry in requirement["listing"]:
                assert entry["entryname"].startswith("/")
                name = re.fullmatch(r"\$\(inputs\.(\w+)\)", entry["entry"])
                assert name and inputs[name[1]]["type"] in ("File", "Directory")
        else:
            assert requirement["class"] == "ResourceRequirement"
            assert set(requirement) - {"class"} <= {"coresMin", "ramMin", "outdirMin"}
            assert all(v > 0 for k, v in requirement.items() if k != "class")
    for argument in document.get("arguments", []):
        for name in re.findall(r"(?<!\\)\$\(inputs\.(\w+)\)", argument):
            assert inputs[name]["type"] == "string", name
    assert all(isinstance(t, str) for t in document.get("baseCommand", []))


def cwl_argv(document: dict[str, Any], values: dict[str, str]) -> list[str]:
    base = list(document.get("baseCommand", []))
    return base + [interpolate(a, values) for a in document.get("arguments", [])]


@pytest.mark.parametrize(
    ("command", "bindings"),
    [
        (INTERFACE["command"], {"threads": "8"}),
        (["{bam}", "{out}"], {}),  # a file as the program
        (["tool", "--t={threads}x{threads}", "{{literal}}", "{out}"], {"threads": "1 2"}),
        (["sh", "-c", "echo $(date) ${{HOME}} \\$( {threads}"], {"threads": "$(inputs.bam)"}),
        (["echo", "a\\b", "{threads}", "c\\\\d $(x)", "plain"], {"threads": "\\"}),
        (["{threads}", "-x"], {"threads": "prog"}),
    ],
)
def test_the_cwl_runs_the_command_of_the_tes_task(
    command: list[str], bindings: dict[str, str]
) -> None:
    entry = env(interface={**INTERFACE, "command": command})
    assert entry.interface is not None
    document = trs.cwl_tool(entry)
    assert document is not None
    check_cwl(document)
    task = entry.interface.to_task_spec(
        "image", {"bam": "file:///in.bam", "out": "file:///x.sam", **bindings}
    )
    values = {"threads": bindings.get("threads", "2")}
    assert cwl_argv(document, values) == list(task.executors[0].command)


def test_the_cwl_stages_inputs_pins_the_image_and_asks_for_the_minimal_hardware() -> None:
    interface = {
        "command": ["run"],
        "inputs": [
            {"name": "ref", "path": "/ref", "type": "DIRECTORY", "default_url": "s3://b/ref/"},
            {"name": "reads", "path": "/out/reads.fq"},
        ],
        "outputs": [
            {"name": "report", "path": "/out/qc/report.html", "description": "The report"},
            {"name": "tables", "path": "/out/tables", "type": "DIRECTORY"},
        ],
        "parameters": [{"name": "mode", "description": "fast or slow"}],
    }
    document = trs.cwl_tool(
        env(
            interface=interface,
            classification={
                "minimal_hardware": {"cpu_cores": 0.5, "ram_gb": 1.5, "disk_gb": 10},
                "software_packages": ["fastqc 0.12.1", "multiqc"],
            },
        )
    )
    assert document is not None
    check_cwl(document)
    assert document["requirements"] == [
        {
            "class": "DockerRequirement",
            "dockerPull": f"registry.example:5000/lab/align@{A}",
            "dockerOutputDirectory": "/out",
        },
        {
            "class": "InitialWorkDirRequirement",
            "listing": [
                {"entryname": "/ref", "entry": "$(inputs.ref)"},
                {"entryname": "/out/reads.fq", "entry": "$(inputs.reads)"},
            ],
        },
        {"class": "ResourceRequirement", "coresMin": 0.5, "ramMin": 1536, "outdirMin": 10240},
    ]
    assert document["hints"] == [
        {
            "class": "SoftwareRequirement",
            "packages": [{"package": "fastqc", "version": ["0.12.1"]}, {"package": "multiqc"}],
        }
    ]
    assert document["inputs"] == {
        "ref": {"type": "Directory", "default": {"class": "Directory", "location": "s3://b/ref/"}},
        "reads": {"type": "File"},
        "mode": {"type": "string", "doc": "fast or slow"},
    }
    assert document["outputs"] == {
        "report": {
            "type": "File",
            "outputBinding": {"glob": "qc/report.html"},
            "doc": "The report",
        },
        "tables": {"type": "Directory", "outputBinding": {"glob": "tables"}},
    }
    assert (document["label"], document["doc"], document["baseCommand"]) == (
        "Aligner",
        "Aligns reads",
        ["run"],
    )
    assert "arguments" not in document


@pytest.mark.parametrize(
    ("interface", "out_dir", "globs"),
    [
        (
            {"workdir": "/work", "outputs": [{"name": "o", "path": "/work/a/o.txt"}]},
            "/work",
            ["a/o.txt"],
        ),
        ({"outputs": [{"name": "o", "path": "/results", "type": "DIRECTORY"}]}, "/results", ["."]),
        ({"workdir": "/w", "outputs": []}, "/w", []),
        ({"outputs": []}, None, []),
    ],
)
def test_outputs_are_collected_from_one_directory(
    interface: dict[str, Any], out_dir: str | None, globs: list[str]
) -> None:
    document = trs.cwl_tool(env(interface={"command": ["run"], **interface}))
    assert document is not None
    check_cwl(document)
    assert document["requirements"][0].get("dockerOutputDirectory") == out_dir
    assert [o["outputBinding"]["glob"] for o in document["outputs"].values()] == globs


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (env(), "no tool interface"),
        (env(interface=INTERFACE, location=None), "no OCI image pinned by digest"),
        (env(interface=INTERFACE, kind="apptainer-sif"), "no OCI image pinned by digest"),
        (
            env(
                interface={
                    "command": ["run"],
                    "outputs": [{"name": "a", "path": "/a/x"}, {"name": "b", "path": "/b/y"}],
                }
            ),
            "share no directory other than /",
        ),
        (
            env(
                interface={
                    "command": ["run"],
                    "workdir": "/work",
                    "outputs": [{"name": "a", "path": "/out/x"}],
                }
            ),
            "outside its workdir",
        ),
    ],
)
def test_entries_without_a_cwl_descriptor_say_why(entry: Environment, reason: str) -> None:
    assert trs.cwl_tool(entry) is None
    assert reason in (trs.no_cwl_reason(entry) or "")
    assert trs.descriptor_types(entry) == []
    assert trs.tool_files(entry, trs.DescriptorType.CWL, "FROM scratch\n") == []


def test_the_files_of_a_version_with_checksums() -> None:
    entry = env(interface=INTERFACE)
    assert trs.no_cwl_reason(entry) is None
    assert trs.tool_files(entry, trs.DescriptorType.WDL, None) == []
    primary, recipe = trs.tool_files(entry, trs.DescriptorType.CWL, "FROM scratch\n")
    assert json.loads(primary.content) == trs.cwl_tool(entry)
    digest = hashlib.sha256(primary.content.encode()).hexdigest()
    url = LINKS.file(entry, trs.DescriptorType.CWL, primary.path)
    assert (
        url == "http://hub/ga4gh/trs/v2/tools/lab%2Falign/versions/1/PLAIN_CWL/descriptor/tool.cwl"
    )
    assert primary.wrapper(url) == {
        "content": primary.content,
        "checksum": [{"checksum": digest, "type": "sha-256"}],
        "url": url,
        "image_type": "CWL",
    }
    assert primary.listing() == {
        "path": "tool.cwl",
        "file_type": "PRIMARY_DESCRIPTOR",
        "checksum": {"checksum": digest, "type": "sha-256"},
    }
    assert (recipe.path, recipe.file_type, recipe.image_type) == (
        "Dockerfile",
        "CONTAINERFILE",
        "Docker",
    )
    assert recipe.wrapper(None) == {
        "content": "FROM scratch\n",
        "checksum": [recipe.checksum],
        "image_type": "Docker",
    }
    containerfile = trs.containerfile(
        env(kind="recipe", classification={"content_type": "containerfile"}), "FROM x\n"
    )
    assert containerfile.path == "Containerfile"
    assert trs.containerfile(env(kind="apptainer-sif"), "Bootstrap: docker\n").path == (
        "Singularity"
    )
