"""OAI-PMH over HTTP at /oai: GET and POST, XML answers, only world-readable entries,
tombstones, the native schema, and tokens that outlive the hub process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from lxml import etree
from tests.unit.catalogue.oai_xsd import NSMAP, validate
from tests.unit.fakes import FakeRuntime

from toolferry.api.oai import OaiSettings
from toolferry.catalogue.oai.native_schema import native_schema
from toolferry.config import Settings
from toolferry.hub import Hub, serve_embedded

ENVS = "/api/v1/environments"
PUBLIC = "rw,r-,r-"


def publish(client: httpx.Client, name: str, permissions: str = PUBLIC, **changes: Any) -> None:
    body = {
        "name": name,
        "kind": "oci-image",
        "digest": "sha256:" + "a" * 64,
        "permissions": permissions,
        "classification": {"title": name, "content_type": "oci", "community": ["Genomics"]},
        **changes,
    }
    answer = client.post(ENVS, json=body)
    assert answer.status_code == 201, answer.text


def oai(client: httpx.Client, **args: str) -> etree._Element:
    answer = client.get("/oai", params=args)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    return validate(answer.content)


def ids(root: etree._Element) -> list[str]:
    return [
        str(i).split(":", 2)[2]
        for i in root.xpath("//oai:header/oai:identifier/text()", namespaces=NSMAP)
    ]


def codes(root: etree._Element) -> list[str]:
    return [str(c) for c in root.xpath("//oai:error/@code", namespaces=NSMAP)]


def test_get_and_post_answer_alike(client: httpx.Client) -> None:
    publish(client, "lab/align")
    query = {
        "verb": "GetRecord",
        "identifier": "oai:toolferry.invalid:lab/align:1",
        "metadataPrefix": "oai_dc",
    }
    by_get = client.get("/oai", params=query)
    by_post = client.post("/oai", data=query)
    assert by_post.status_code == 200
    assert by_post.headers["content-type"] == "text/xml; charset=utf-8"
    strip = etree.XPath("//oai:responseDate", namespaces=NSMAP)
    documents = []
    for answer in (by_get, by_post):
        root = validate(answer.content)
        for date in strip(root):
            date.text = ""
        documents.append(etree.tostring(root))
    assert documents[0] == documents[1]
    assert b"<dc:title>lab/align</dc:title>" in by_post.content


def test_protocol_errors_are_xml_with_status_200(client: httpx.Client) -> None:
    assert codes(oai(client)) == ["badVerb"]
    answer = client.post(
        "/oai",
        content=b"verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=x",
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert codes(validate(answer.content)) == ["badArgument"]
    empty = client.post("/oai")
    assert codes(validate(empty.content)) == ["badVerb"]


def test_http_level_mistakes(client: httpx.Client) -> None:
    not_a_form = client.post("/oai", json={"verb": "Identify"})
    assert not_a_form.status_code == 415 and "x-www-form-urlencoded" in not_a_form.json()["detail"]
    too_big = client.post("/oai", data={"verb": "Identify", "pad": "x" * 70_000})
    assert too_big.status_code == 413
    put = client.put("/oai")
    assert put.status_code == 405 and put.headers["allow"] == "GET, HEAD, POST"


def test_only_world_readable_entries_are_shown_and_tombstones_stay(client: httpx.Client) -> None:
    publish(client, "lab/public")
    publish(client, "lab/private", permissions="rw,r-,--")
    publish(client, "lab/gone")
    assert client.delete(f"{ENVS}/lab/gone/versions/1").status_code == 200
    root = oai(client, verb="ListRecords", metadataPrefix="toolferry")
    assert ids(root) == ["lab/public:1", "lab/gone:1"]
    headers = root.findall(".//oai:header", NSMAP)
    assert [h.get("status") for h in headers] == [None, "deleted"]
    hidden = oai(
        client,
        verb="GetRecord",
        identifier="oai:toolferry.invalid:lab/private:1",
        metadataPrefix="oai_dc",
    )
    assert codes(hidden) == ["idDoesNotExist"]
    sets = oai(client, verb="ListSets").xpath("//oai:setSpec/text()", namespaces=NSMAP)
    assert sets == ["community", "kind", "community:genomics", "kind:oci-image"]


def test_a_change_moves_the_record_to_the_end_of_the_harvest(client: httpx.Client) -> None:
    publish(client, "lab/a")
    publish(client, "lab/b")
    assert ids(oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc")) == [
        "lab/a:1",
        "lab/b:1",
    ]
    assert client.post(f"{ENVS}/lab/a/versions/1:deprecate").status_code == 200
    assert ids(oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc")) == [
        "lab/b:1",
        "lab/a:1",
    ]


def test_the_native_schema_is_served_where_the_formats_say(
    served: tuple[Hub, str], client: httpx.Client
) -> None:
    formats = oai(client, verb="ListMetadataFormats")
    url = formats.xpath(
        "//oai:metadataFormat[oai:metadataPrefix='toolferry']/oai:schema/text()", namespaces=NSMAP
    )
    assert url == [f"{served[1]}/oai/schema/environment-1.xsd"]
    answer = httpx.get(str(url[0]))
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/xml; charset=utf-8"
    assert answer.text == native_schema()
    etree.XMLSchema(etree.fromstring(answer.content))


def test_settings_name_the_repository_and_the_page_size(hub: Hub, client: httpx.Client) -> None:
    hub.app.state.oai = OaiSettings(
        page_size=1, repository_id="hub.example.org", admin_email="ops@example.org"
    )
    publish(client, "lab/a")
    publish(client, "lab/b")
    identify = oai(client, verb="Identify")
    assert identify.xpath("//oai:adminEmail/text()", namespaces=NSMAP) == ["ops@example.org"]
    assert identify.xpath("//id:repositoryIdentifier/text()", namespaces=NSMAP) == [
        "hub.example.org"
    ]
    page = oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc")
    assert page.xpath("//oai:identifier/text()", namespaces=NSMAP) == [
        "oai:hub.example.org:lab/a:1"
    ]


def test_the_openapi_document_lists_the_protocol(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/oai"]) == {"get", "post"}
    assert "text/xml" in paths["/oai"]["get"]["responses"]["200"]["content"]


def test_a_token_outlives_the_hub_that_issued_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, capacity_cpus=2)
    with serve_embedded(settings, runtimes={"fake": FakeRuntime()}) as (hub, url):
        hub.app.state.oai = OaiSettings(page_size=2)
        with httpx.Client(base_url=url) as client:
            for name in ("lab/a", "lab/b", "lab/c"):
                publish(client, name)
            first = oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc")
    token = first.findtext(".//oai:resumptionToken", namespaces=NSMAP)
    assert ids(first) == ["lab/a:1", "lab/b:1"] and token
    with serve_embedded(settings, runtimes={"fake": FakeRuntime()}) as (hub, url):
        hub.app.state.oai = OaiSettings(page_size=2)
        with httpx.Client(base_url=url) as client:
            rest = oai(client, verb="ListIdentifiers", resumptionToken=token)
    assert ids(rest) == ["lab/c:1"]
    last = rest.find(".//oai:resumptionToken", NSMAP)
    assert last is not None and not last.text and last.get("cursor") == "2"
