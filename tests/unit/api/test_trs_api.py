"""The TRS 2.0.1 view (/ga4gh/trs/v2) over HTTP: every path, bodies that validate against the
spec's own schemas (read from ``trs-2.0.1.openapi.yaml`` next to this file, strictly: no fields
beyond the spec's), paging headers, ids with '/', permissions, and the spec's Error body."""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema
import yaml
from tests.helpers.schemas import strict

from toolferry.hub import Hub

TRS = "/ga4gh/trs/v2"
ENVS = "/api/v1/environments"
# A verbatim copy of the GA4GH TRS 2.0.1 OpenAPI document, kept next to this file.
SPEC = Path(__file__).with_name("trs-2.0.1.openapi.yaml")
INTERFACE: dict[str, Any] = {
    "command": ["samtools", "view", "-o", "{out}", "--threads={threads}", "{bam}"],
    "inputs": [{"name": "bam", "path": "/data/in.bam"}],
    "outputs": [{"name": "out", "path": "/out/x.sam"}],
    "parameters": [{"name": "threads", "default": "2"}],
}
# ga4gh-service-info v1.0.0 service-info.yaml#/components/schemas/Service (the spec's external
# $ref for /service-info), transcribed.
SERVICE_INFO: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "type", "organization", "version"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "type": {
            "type": "object",
            "required": ["group", "artifact", "version"],
            "additionalProperties": False,
            "properties": {
                "group": {"type": "string"},
                "artifact": {"type": "string"},
                "version": {"type": "string"},
            },
        },
        "description": {"type": "string"},
        "organization": {
            "type": "object",
            "required": ["name", "url"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
        },
        "contactUrl": {"type": "string"},
        "documentationUrl": {"type": "string"},
        "createdAt": {"type": "string"},
        "updatedAt": {"type": "string"},
        "environment": {"type": "string"},
        "version": {"type": "string"},
    },
}


@cache
def _components() -> dict[str, Any]:
    with SPEC.open(encoding="utf-8") as fh:
        schemas = yaml.safe_load(fh)["components"]["schemas"]
    # Every object the spec describes may hold only the properties it names.
    return strict(schemas)  # type: ignore[no-any-return]


def conforms(doc: Any, schema: str, *, array: bool = False) -> Any:
    """``doc`` validated against the spec's component ``schema`` (or an array of them)."""
    ref: dict[str, Any] = {"$ref": f"#/components/schemas/{schema}"}
    root = {**({"type": "array", "items": ref} if array else ref)}
    root["components"] = {"schemas": _components()}
    validator = jsonschema.Draft7Validator(root)
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]
    assert not problems, f"breaks TRS {schema}:\n  " + "\n  ".join(problems)
    return doc


def ok(answer: httpx.Response, schema: str, *, array: bool = False) -> Any:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return conforms(answer.json(), schema, array=array)


def error(answer: httpx.Response, status: int, *parts: str) -> str:
    """The spec's Error body with ``status``; its message holds every one of ``parts``."""
    assert answer.status_code == status, answer.text
    body = conforms(answer.json(), "Error")
    assert body["code"] == status
    for part in parts:
        assert part in body["message"], body
    return str(body["message"])


def entry(
    name: str = "lab/align",
    digit: str = "a",
    *,
    interface: bool = True,
    pinned: bool = True,
    kind: str = "oci-image",
    **changes: Any,
) -> dict[str, Any]:
    digest = "sha256:" + digit * 64
    content_type = {"oci-image": "oci", "vm-disk": "qcow2", "apptainer-sif": "sif"}[kind]
    classification: dict[str, Any] = {
        "title": f"Title of {name}",
        "description": f"About {name}",
        "content_type": content_type,
        "software_packages": ["samtools 1.17"],
    }
    if pinned:
        classification["location"] = f"registry.example:5000/{name}@{digest}"
    document: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "digest": digest,
        "classification": classification,
        **changes,
    }
    if interface:
        document["interface"] = INTERFACE
    return document


def publish(client: httpx.Client, document: dict[str, Any], **headers: str) -> None:
    answer = client.post(ENVS, json=document, headers=headers)
    assert answer.status_code == 201, answer.text


def test_service_info_is_ga4gh_service_info_for_trs(client: httpx.Client) -> None:
    answer = client.get(f"{TRS}/service-info")
    assert answer.status_code == 200
    info = answer.json()
    jsonschema.validate(info, SERVICE_INFO)
    assert info["type"] == {"group": "org.ga4gh", "artifact": "trs", "version": "2.0.1"}
    assert info["id"] == "org.toolferry.trs"
    assert info["documentationUrl"] == str(client.base_url.join("/docs"))


def test_tool_classes_are_listed(client: httpx.Client) -> None:
    classes = ok(client.get(f"{TRS}/toolClasses"), "ToolClass", array=True)
    assert [c["id"] for c in classes] == ["CommandLineTool", "Environment"]
    assert all(c["name"] == c["id"] and c["description"] for c in classes)


def test_tools_and_versions_validate_against_the_spec(client: httpx.Client) -> None:
    publish(client, entry())
    publish(client, entry(digit="b"))
    publish(client, entry("lab/base", interface=False))
    publish(client, entry("disk", kind="vm-disk", interface=False, pinned=False))
    publish(client, entry("lab/sif", kind="apptainer-sif"))
    tools = ok(client.get(f"{TRS}/tools"), "Tool", array=True)
    assert [t["id"] for t in tools] == ["disk", "lab/align", "lab/base", "lab/sif"]
    align = tools[1]
    assert align["url"] == f"{client.base_url.join(TRS)}/tools/lab%2Falign"
    assert (align["organization"], align["name"], align["toolclass"]["id"]) == (
        "lab",
        "Title of lab/align",
        "CommandLineTool",
    )
    assert [v["id"] for v in align["versions"]] == ["1", "2"]
    second = align["versions"][1]
    assert second["images"] == [
        {
            "registry_host": "registry.example:5000",
            "image_name": "lab/align@sha256:" + "b" * 64,
            "updated": second["images"][0]["updated"],
            "checksum": [{"checksum": "b" * 64, "type": "sha-256"}],
            "image_type": "Docker",
        }
    ]
    assert (second["descriptor_type"], second["is_production"], second["containerfile"]) == (
        ["CWL"],
        True,
        False,
    )
    assert tools[0]["organization"] == "local"  # no namespace: the owner
    assert tools[0]["versions"][0]["images"][0].keys() == {"updated", "checksum"}
    assert tools[2]["toolclass"]["id"] == "Environment"
    assert tools[2]["versions"][0]["descriptor_type"] == []
    assert tools[3]["versions"][0]["images"][0]["image_type"] == "Singularity"
    assert tools[3]["versions"][0]["descriptor_type"] == []  # CWL runs Docker images here

    assert ok(client.get(f"{TRS}/tools/lab%2Falign"), "Tool") == align
    assert (
        ok(client.get(f"{TRS}/tools/lab/align/versions"), "ToolVersion", array=True)
        == (align["versions"])
    )
    assert ok(client.get(f"{TRS}/tools/lab/align/versions/2"), "ToolVersion") == second
    assert client.get(second["url"]).json() == second


def test_an_id_with_slashes_may_be_percent_encoded_or_not(client: httpx.Client) -> None:
    publish(client, entry())
    for tool_id in ("lab/align", "lab%2Falign", "lab%2falign", "lab%252Falign"):
        base = f"{TRS}/tools/{tool_id}"
        assert ok(client.get(base), "Tool")["id"] == "lab/align", tool_id
        assert ok(client.get(f"{base}/versions"), "ToolVersion", array=True)[0]["id"] == "1"
        assert ok(client.get(f"{base}/versions/1"), "ToolVersion")["name"] == "lab/align:1"
        assert ok(client.get(f"{base}/versions/1/CWL/descriptor"), "FileWrapper")["content"]
        assert ok(client.get(f"{base}/versions/1/CWL/files"), "ToolFile", array=True)


def test_deleted_versions_are_left_out_and_deprecated_ones_are_not_production(
    client: httpx.Client,
) -> None:
    for digit in "abc":
        publish(client, entry(digit=digit))
    publish(client, entry("lab/gone"))
    assert client.delete(f"{ENVS}/lab/align/versions/2").status_code == 200
    assert client.post(f"{ENVS}/lab/align/versions/3:deprecate").status_code == 200
    assert client.delete(f"{ENVS}/lab/gone/versions/1").status_code == 200

    versions = ok(client.get(f"{TRS}/tools/lab/align/versions"), "ToolVersion", array=True)
    assert [(v["id"], v["is_production"]) for v in versions] == [("1", True), ("3", False)]
    assert [t["id"] for t in ok(client.get(f"{TRS}/tools"), "Tool", array=True)] == ["lab/align"]
    error(client.get(f"{TRS}/tools/lab/align/versions/2"), 404, "deleted")
    error(client.get(f"{TRS}/tools/lab/align/versions/2/CWL/descriptor"), 404, "deleted")
    error(client.get(f"{TRS}/tools/lab/gone"), 404, "no tool 'lab/gone'")
    error(client.get(f"{TRS}/tools/lab/gone/versions"), 404, "no tool 'lab/gone'")


def test_pages_follow_the_spec_headers(client: httpx.Client) -> None:
    names = [f"lab/t{i}" for i in range(7)]
    for name in names:
        publish(client, entry(name))
    seen: list[str] = []
    url: str | None = f"{client.base_url.join(TRS)}/tools?limit=3&organization=lab"
    offsets: list[str] = []
    last_pages: set[str] = set()
    while url is not None:
        answer = client.get(url)
        page = ok(answer, "Tool", array=True)
        seen += [t["id"] for t in page]
        headers = answer.headers
        offsets.append(headers["current_offset"])
        assert headers["current_limit"] == "3"
        assert client.get(headers["self_link"]).json() == page
        for link in ("self_link", "last_page"):
            assert parse_qs(urlsplit(headers[link]).query)["organization"] == ["lab"]
        last_pages.add(headers["last_page"])
        url = headers.get("next_page")
        if url is None:
            assert headers["self_link"] == headers["last_page"]
    assert seen == names
    assert offsets == ["0", "3", "6"]
    assert len(last_pages) == 1

    beyond = client.get(f"{TRS}/tools", params={"offset": "10", "limit": "3"})
    assert ok(beyond, "Tool", array=True) == []
    assert "next_page" not in beyond.headers
    assert parse_qs(urlsplit(beyond.headers["last_page"]).query)["offset"] == ["6"]
    big = client.get(f"{TRS}/tools", params={"limit": "5000"})
    assert (len(big.json()), big.headers["current_limit"]) == (7, "1000")
    assert "next_page" not in big.headers


def test_filters_select_tools(client: httpx.Client) -> None:
    publish(client, entry())
    publish(client, entry("lab/base", interface=False))
    publish(client, entry("other/align", pinned=False))

    def ids(**params: str) -> list[str]:
        tools = ok(client.get(f"{TRS}/tools", params=params), "Tool", array=True)
        return [t["id"] for t in tools]

    assert ids(id="lab/base") == ["lab/base"]
    assert ids(alias="registry.example:5000/lab/align") == ["lab/align"]
    assert ids(toolClass="Environment") == ["lab/base"]
    assert ids(descriptorType="CWL") == ["lab/align"]
    assert ids(registry="registry.example:5000") == ["lab/align", "lab/base"]
    assert ids(organization="other") == ["other/align"]
    assert ids(name="align") == ["lab/align", "other/align"]
    assert ids(toolname="title of lab/") == ["lab/align", "lab/base"]
    assert ids(description="about other") == ["other/align"]
    assert ids(author="local") == ["lab/align", "lab/base", "other/align"]
    assert ids(author="bob") == []
    assert ids(checker="true") == []
    assert ids(checker="false", organization="lab", name="base") == ["lab/base"]


def test_descriptors_files_and_tests(client: httpx.Client) -> None:
    publish(client, entry())
    publish(client, entry("lab/base", interface=False))
    version = f"{TRS}/tools/lab%2Falign/versions/1"
    wrapped = ok(client.get(f"{version}/CWL/descriptor"), "FileWrapper")
    document = json.loads(wrapped["content"])
    assert (document["cwlVersion"], document["class"]) == ("v1.2", "CommandLineTool")
    assert document["requirements"][0]["dockerPull"] == (
        "registry.example:5000/lab/align@sha256:" + "a" * 64
    )
    assert wrapped["image_type"] == "CWL"
    plain = client.get(wrapped["url"])
    assert (plain.status_code, plain.headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert plain.text == wrapped["content"]
    assert client.get(f"{version}/PLAIN_CWL/descriptor").text == wrapped["content"]
    assert (
        client.get(f"{version}/CWL/descriptor", headers={"Accept": "text/plain"}).text
        == (wrapped["content"])
    )
    for path in ("tool.cwl", "./tool.cwl"):
        assert ok(client.get(f"{version}/CWL/descriptor/{path}"), "FileWrapper") == wrapped
    error(client.get(f"{version}/CWL/descriptor/other.cwl"), 404, "other.cwl", "tool.cwl")

    listed = ok(client.get(f"{version}/CWL/files"), "ToolFile", array=True)
    assert [(f["path"], f["file_type"]) for f in listed] == [("tool.cwl", "PRIMARY_DESCRIPTOR")]
    assert listed[0]["checksum"] == wrapped["checksum"][0]
    archive = client.get(f"{version}/CWL/files", params={"format": "zip"})
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        assert opened.namelist() == ["tool.cwl"]
        assert opened.read("tool.cwl").decode() == wrapped["content"]
    assert ok(client.get(f"{version}/CWL/tests"), "FileWrapper", array=True) == []

    error(client.get(f"{version}/WDL/descriptor"), 404, "no WDL descriptor", "CWL")
    error(client.get(f"{version}/PLAIN_NFL/descriptor"), 404, "no NFL descriptor")
    error(client.get(f"{version}/SMK/files"), 404, "no SMK descriptor")
    base = f"{TRS}/tools/lab%2Fbase/versions/1"
    for path in ("CWL/descriptor", "PLAIN_CWL/descriptor/tool.cwl", "CWL/tests", "CWL/files"):
        error(client.get(f"{base}/{path}"), 404, "lab/base:1", "no tool interface")


def test_a_version_without_a_recipe_has_no_containerfile(client: httpx.Client) -> None:
    publish(client, entry())
    error(
        client.get(f"{TRS}/tools/lab/align/versions/1/containerfile"),
        404,
        "no containerfile for lab/align:1",
    )
    error(client.get(f"{TRS}/tools/lab/align/versions/9/containerfile"), 404, "no version 9")


BAD_REQUESTS = [
    ("/tools?limit=0", 400, "limit"),
    ("/tools?limit=many", 400, "limit"),
    ("/tools?offset=-1", 400, "offset"),
    ("/tools?offset=a", 400, "offset"),
    ("/tools?descriptorType=YAML", 400, "descriptorType"),
    ("/tools?checker=maybe", 400, "checker"),
    ("/tools/lab/align/versions/1/YAML/descriptor", 400, "type"),
    ("/tools/lab/align/versions/1/PLAIN_CWL/files", 400, "type"),
    ("/tools/lab/align/versions/1/CWL/files?format=tar", 400, "format"),
    ("/tools/nope", 404, "no tool 'nope'"),
    ("/tools/lab", 404, "no tool 'lab'"),
    ("/tools/lab/align/versions/one", 404, "'one'"),
    ("/tools/lab/align/versions/01", 404, "'01'"),
    ("/tools/lab/align/versions/99999999999", 404, "99999999999"),
    ("/tools/versions", 404, "no such TRS path"),
    ("/tools/lab/align/versions/1/CWL", 404, "no such TRS path"),
    ("/nothing", 404, "no such TRS path"),
]


def test_bad_requests_answer_the_spec_error_body(client: httpx.Client) -> None:
    publish(client, entry())
    for path, status, part in BAD_REQUESTS:
        error(client.get(TRS + path), status, part)


def test_the_view_is_read_only(client: httpx.Client) -> None:
    publish(client, entry())
    for path in ("/tools", "/tools/lab/align", "/tools/lab/align/versions/1/CWL/descriptor"):
        head = client.head(TRS + path)
        assert (head.status_code, head.content) == (200, b""), path
        assert head.headers["content-length"] == str(len(client.get(TRS + path).content))
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            answer = client.request(method, TRS + path)
            assert (answer.status_code, answer.headers["allow"]) == (405, "GET, HEAD"), (
                method,
                path,
            )
            error(answer, 405, method)
    assert client.get(f"{ENVS}/lab/align").status_code == 200


def test_callers_see_only_what_they_may_read(hub: Hub, client: httpx.Client) -> None:
    _, alice = hub.tokens.create("alice")
    _, bob = hub.tokens.create("bob")
    hub.authenticate.mode = "token"
    as_alice = {"Authorization": f"Bearer {alice}"}
    as_bob = {"Authorization": f"Bearer {bob}"}
    publish(client, entry("lab/private"), **as_alice)
    publish(client, entry("lab/open", permissions="rw,r-,r-"), **as_alice)

    answer = client.get(f"{TRS}/tools")
    error(answer, 401, "authentication required")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    error(client.get(f"{TRS}/tools", headers={"Authorization": "Bearer nope"}), 401, "invalid")

    def ids(headers: dict[str, str]) -> list[str]:
        tools = ok(client.get(f"{TRS}/tools", headers=headers), "Tool", array=True)
        return [t["id"] for t in tools]

    assert ids(as_alice) == ["lab/open", "lab/private"]
    assert ids(as_bob) == ["lab/open"]
    assert ok(client.get(f"{TRS}/tools/lab/open", headers=as_bob), "Tool")["versions"][0][
        "author"
    ] == ["alice"]
    for path in ("", "/versions", "/versions/1", "/versions/1/CWL/descriptor"):
        error(client.get(f"{TRS}/tools/lab/private{path}", headers=as_bob), 404, "lab/private")
    assert client.get(f"{TRS}/service-info").status_code == 200  # public, as TES's is


def test_the_openapi_documents_the_trs_paths(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operations = {
        f"{TRS}/service-info": "trsServiceInfoGet",
        f"{TRS}/toolClasses": "toolClassesGet",
        f"{TRS}/tools": "toolsGet",
        f"{TRS}/tools/{{id}}": "toolsIdGet",
        f"{TRS}/tools/{{id}}/versions": "toolsIdVersionsGet",
        f"{TRS}/tools/{{id}}/versions/{{version_id}}": "toolsIdVersionsVersionIdGet",
        f"{TRS}/tools/{{id}}/versions/{{version_id}}/{{type}}/descriptor": (
            "toolsIdVersionsVersionIdTypeDescriptorGet"
        ),
        f"{TRS}/tools/{{id}}/versions/{{version_id}}/{{type}}/descriptor/{{relative_path}}": (
            "toolsIdVersionsVersionIdTypeDescriptorRelativePathGet"
        ),
        f"{TRS}/tools/{{id}}/versions/{{version_id}}/{{type}}/tests": (
            "toolsIdVersionsVersionIdTypeTestsGet"
        ),
        f"{TRS}/tools/{{id}}/versions/{{version_id}}/{{type}}/files": (
            "toolsIdVersionsVersionIdTypeFilesGet"
        ),
        f"{TRS}/tools/{{id}}/versions/{{version_id}}/containerfile": (
            "toolsIdVersionsVersionIdContainerfileGet"
        ),
    }
    documented = {p: ops["get"]["operationId"] for p, ops in paths.items() if p.startswith(TRS)}
    assert documented == operations
    headers = paths[f"{TRS}/tools"]["get"]["responses"]["200"]["headers"]
    assert set(headers) == {
        "next_page",
        "last_page",
        "self_link",
        "current_offset",
        "current_limit",
    }
    assert (
        "text/plain"
        in (
            paths[f"{TRS}/tools/{{id}}/versions/{{version_id}}/{{type}}/descriptor"]["get"][
                "responses"
            ]["200"]["content"]
        )
    )
