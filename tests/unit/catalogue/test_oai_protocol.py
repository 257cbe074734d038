"""The OAI-PMH verbs as pure functions: every response valid against the protocol's schema,
every error condition, the request echo, selective harvesting and resumption."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from lxml import etree
from tests.unit.catalogue.oai_xsd import NSMAP, validate

from toolferry.catalogue.oai import Repository, record_of, respond
from toolferry.domain.environment import Environment, environment_from_dict

REPO = Repository(
    name="Test catalogue",
    base_url="https://hub.example.org/oai",
    repository_id="hub.example.org",
    admin_emails=("ops@example.org",),
    catalogue_url="https://hub.example.org/api/v1/environments",
    page_size=2,
)
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW = datetime(2024, 6, 1, tzinfo=UTC)
_CONTENT = {"oci-image": "oci", "recipe": "dockerfile", "vm-disk": "qcow2", "apptainer-sif": "sif"}


def make(
    name: str,
    version: int = 1,
    *,
    at: timedelta = timedelta(0),
    kind: str = "oci-image",
    community: Sequence[str] = (),
    status: str = "active",
) -> Environment:
    moment = (T0 + at).isoformat()
    document: dict[str, Any] = {
        "id": f"{name}-{version}",
        "name": name,
        "version": version,
        "kind": kind,
        "digest": "sha256:" + "a" * 64,
        "created": moment,
        "updated": moment,
        "owner_id": "ada",
        "permissions": "rw,r-,r-",
        "status": status,
        "classification": {
            "title": f"Tool {name}",
            "content_type": _CONTENT[kind],
            "community": list(community),
        },
    }
    if version > 1:
        document["base"] = f"{name}:{version - 1}"
    return environment_from_dict(document)


# Five entries, one change a minute apart, in harvest order.
CATALOGUE = [
    make("lab/align", at=timedelta(minutes=0), community=["Life Sciences"]),
    make("lab/qc", at=timedelta(minutes=1), kind="recipe", community=["Life Sciences", "Teaching"]),
    make("lab/align", 2, at=timedelta(minutes=2), community=["Life Sciences"]),
    make("hpc/mpi", at=timedelta(days=1), kind="vm-disk", community=["Physics"]),
    make("old/tool", at=timedelta(days=2), status="deleted"),
]


def ask(
    query: str | Sequence[tuple[str, str]],
    envs: Sequence[Environment] = CATALOGUE,
    *,
    now: datetime = NOW,
    repository: REPO.__class__ = REPO,
) -> etree._Element:
    """The validated response to ``query`` (a query string or argument pairs)."""
    pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query)
    records = [record_of(repository.repository_id, env) for env in envs]
    return validate(respond(pairs, repository, lambda: records, now))


def codes(root: etree._Element) -> list[str]:
    return [e.get("code") for e in root.findall("oai:error", NSMAP)]


def echoed(root: etree._Element) -> dict[str, str]:
    request = root.find("oai:request", NSMAP)
    assert request is not None and request.text == REPO.base_url
    return dict(request.attrib)


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.xpath(path, namespaces=NSMAP)]


def ids(root: etree._Element) -> list[str]:
    return [
        i.removeprefix("oai:hub.example.org:") for i in texts(root, "//oai:header/oai:identifier")
    ]


def token_of(root: etree._Element) -> etree._Element | None:
    return root.find(".//oai:resumptionToken", NSMAP)


# Identify and the envelope


def test_identify_describes_the_repository() -> None:
    root = ask("verb=Identify")
    assert echoed(root) == {"verb": "Identify"}
    assert root.findtext("oai:responseDate", namespaces=NSMAP) == "2024-06-01T00:00:00Z"
    identify = root.find("oai:Identify", NSMAP)
    assert identify is not None
    fields = {etree.QName(e).localname: e.text for e in identify if e.text}
    assert fields == {
        "repositoryName": "Test catalogue",
        "baseURL": REPO.base_url,
        "protocolVersion": "2.0",
        "adminEmail": "ops@example.org",
        "earliestDatestamp": "2024-03-01T12:00:00Z",
        "deletedRecord": "persistent",
        "granularity": "YYYY-MM-DDThh:mm:ssZ",
    }
    assert texts(root, "//id:repositoryIdentifier") == ["hub.example.org"]
    assert texts(root, "//id:sampleIdentifier") == ["oai:hub.example.org:lab/align:1"]


def test_identify_on_an_empty_catalogue_is_still_valid() -> None:
    root = ask("verb=Identify", [])
    assert texts(root, "//oai:earliestDatestamp") == ["1970-01-01T00:00:00Z"]
    assert texts(root, "//id:sampleIdentifier") == ["oai:hub.example.org:lab/tool:1"]


# badVerb and badArgument: the request element carries no attributes


@pytest.mark.parametrize(
    "query", ["", "verb=", "verb=Frobnicate", "verb=Identify&verb=Identify", "verb=identify"]
)
def test_a_missing_repeated_or_unknown_verb_is_bad_verb(query: str) -> None:
    root = ask(query)
    assert codes(root) == ["badVerb"]
    assert echoed(root) == {}


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("verb=Identify&metadataPrefix=oai_dc", "'metadataPrefix' is not an argument of Identify"),
        ("verb=ListRecords", "ListRecords needs metadataPrefix"),
        ("verb=GetRecord&metadataPrefix=oai_dc", "GetRecord needs identifier"),
        ("verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=oai_dc", "given 2 times"),
        ("verb=ListIdentifiers&metadataPrefix=oai_dc&resumptionToken=x", "exclusive"),
        ("verb=ListSets&set=kind&resumptionToken=x", "'set' is not an argument of ListSets"),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2024-13-01", "from='2024-13-01'"),
        ("verb=ListRecords&metadataPrefix=oai_dc&until=yesterday", "until='yesterday'"),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2024-03-01T12:00:00", "from="),
        (
            "verb=ListRecords&metadataPrefix=oai_dc&from=2024-03-01&until=2024-04-01T00:00:00Z",
            "same granularity",
        ),
        ("verb=ListRecords&metadataPrefix=oai_dc&from=2024-04-02&until=2024-04-01", "is after"),
        ("verb=ListRecords&metadataPrefix=oai_dc&set=no spaces", "not a setSpec"),
        ("verb=ListRecords&metadataPrefix=oai_dc&set=", "set is empty"),
        ("verb=GetRecord&identifier=x&metadataPrefix=a b", "characters a prefix cannot"),
    ],
)
def test_bad_arguments_are_named_and_not_echoed(query: str, says: str) -> None:
    root = ask(query)
    assert set(codes(root)) == {"badArgument"}
    assert echoed(root) == {}
    assert any(says in message for message in texts(root, "//oai:error")), texts(
        root, "//oai:error"
    )


def test_every_bad_argument_is_reported() -> None:
    root = ask("verb=ListRecords&foo=1&from=x")
    assert codes(root) == ["badArgument"] * 3


def test_characters_xml_cannot_carry_still_give_a_well_formed_answer() -> None:
    root = ask(
        [("verb", "GetRecord"), ("identifier", "oai:\x01\ud800"), ("metadataPrefix", "oai_dc")]
    )
    assert codes(root) == ["idDoesNotExist"]
    assert "'oai:\\x01\\ud800'" in texts(root, "//oai:error")[0]


# ListMetadataFormats


def test_list_metadata_formats_for_the_repository_and_for_an_item() -> None:
    for query in (
        "verb=ListMetadataFormats",
        "verb=ListMetadataFormats&identifier=oai:hub.example.org:lab/qc:1",
    ):
        root = ask(query)
        assert texts(root, "//oai:metadataPrefix") == ["oai_dc", "toolferry"]
        assert texts(root, "//oai:schema") == [
            "http://www.openarchives.org/OAI/2.0/oai_dc.xsd",
            "https://hub.example.org/oai/schema/environment-1.xsd",
        ]
        assert texts(root, "//oai:metadataNamespace") == [
            "http://www.openarchives.org/OAI/2.0/oai_dc/",
            "urn:toolferry:environment:1",
        ]
    assert echoed(root) == {
        "verb": "ListMetadataFormats",
        "identifier": "oai:hub.example.org:lab/qc:1",
    }


def test_list_metadata_formats_errors() -> None:
    unknown = ask("verb=ListMetadataFormats&identifier=oai:hub.example.org:lab/none:1")
    assert codes(unknown) == ["idDoesNotExist"]
    assert echoed(unknown) == {"verb": "ListMetadataFormats"}
    deleted = ask("verb=ListMetadataFormats&identifier=oai:hub.example.org:old/tool:1")
    assert codes(deleted) == ["noMetadataFormats"]


# ListSets


def test_list_sets_lists_the_parents_and_the_sets_in_use() -> None:
    root = ask("verb=ListSets")
    assert dict(zip(texts(root, "//oai:setSpec"), texts(root, "//oai:setName"), strict=True)) == {
        "community": "Environments by target community",
        "kind": "Environments by kind",
        "community:life-sciences": "Life Sciences",
        "community:physics": "Physics",
        "community:teaching": "Teaching",
        "kind:oci-image": "OCI container images",
        "kind:recipe": "Recipes (Dockerfile, Containerfile, Packerfile)",
        "kind:vm-disk": "Virtual machine disk images",
    }
    assert texts(ask("verb=ListSets", []), "//oai:setSpec") == ["community", "kind"]


def test_list_sets_issues_no_tokens() -> None:
    root = ask("verb=ListSets&resumptionToken=abc")
    assert codes(root) == ["badResumptionToken"]
    assert echoed(root) == {"verb": "ListSets"}


# GetRecord


def test_get_record_in_both_formats() -> None:
    query = "verb=GetRecord&identifier=oai:hub.example.org:lab/align:2&metadataPrefix="
    dc = ask(query + "oai_dc")
    assert echoed(dc) == {
        "verb": "GetRecord",
        "identifier": "oai:hub.example.org:lab/align:2",
        "metadataPrefix": "oai_dc",
    }
    assert texts(dc, "//oai:header/oai:datestamp") == ["2024-03-01T12:02:00Z"]
    assert texts(dc, "//oai:header/oai:setSpec") == ["community:life-sciences", "kind:oci-image"]
    assert texts(dc, "//dc:title") == ["Tool lab/align"]
    assert texts(dc, "//dc:relation") == ["oai:hub.example.org:lab/align:1"]
    native = ask(query + "toolferry")
    assert texts(native, "//tf:environment/tf:name") == ["lab/align"]
    assert texts(native, "//tf:environment/tf:base") == ["lab/align:1"]


def test_a_deleted_record_is_a_header_with_status_deleted_and_no_metadata() -> None:
    root = ask("verb=GetRecord&identifier=oai:hub.example.org:old/tool:1&metadataPrefix=toolferry")
    header = root.find(".//oai:header", NSMAP)
    assert header is not None and header.get("status") == "deleted"
    assert root.find(".//oai:metadata", NSMAP) is None
    assert texts(root, "//oai:header/oai:datestamp") == ["2024-03-03T12:00:00Z"]


def test_get_record_reports_both_an_unknown_item_and_an_unknown_format() -> None:
    root = ask("verb=GetRecord&identifier=oai:elsewhere.org:lab/align:1&metadataPrefix=marc21")
    assert sorted(codes(root)) == ["cannotDisseminateFormat", "idDoesNotExist"]
    assert echoed(root) == {"verb": "GetRecord"}
    for identifier in (
        "oai:hub.example.org:lab/align",
        "oai:hub.example.org:lab/align:0",
        "lab/align:1",
    ):
        root = ask(f"verb=GetRecord&identifier={identifier}&metadataPrefix=oai_dc")
        assert codes(root) == ["idDoesNotExist"]


# ListIdentifiers and ListRecords


def harvest(verb: str, query: str, envs: Sequence[Environment] = CATALOGUE) -> list[etree._Element]:
    """Every page of a list request, following its tokens."""
    pages = [ask(f"verb={verb}&{query}", envs)]
    while (token := token_of(pages[-1])) is not None and token.text:
        pages.append(ask([("verb", verb), ("resumptionToken", token.text)], envs))
    return pages


def test_a_list_comes_in_pages_with_cursor_and_complete_list_size() -> None:
    pages = harvest("ListIdentifiers", "metadataPrefix=oai_dc")
    assert [ids(p) for p in pages] == [
        ["lab/align:1", "lab/qc:1"],
        ["lab/align:2", "hpc/mpi:1"],
        ["old/tool:1"],
    ]
    tokens = [token_of(p) for p in pages]
    assert [(t.get("cursor"), t.get("completeListSize")) for t in tokens if t is not None] == [
        ("0", "5"),
        ("2", "5"),
        ("4", "5"),
    ]
    first, last = tokens[0], tokens[-1]
    assert first is not None and first.get("expirationDate") == "2024-06-02T00:00:00Z"
    assert last is not None and last.text is None and last.get("expirationDate") is None
    resumed = ask([("verb", "ListIdentifiers"), ("resumptionToken", first.text or "")])
    assert echoed(resumed) == {"verb": "ListIdentifiers", "resumptionToken": first.text}


def test_list_records_carries_metadata_except_for_deleted_records() -> None:
    pages = harvest("ListRecords", "metadataPrefix=toolferry")
    records = [r for p in pages for r in p.findall(".//oai:record", NSMAP)]
    assert len(records) == 5
    deleted = [r for r in records if r.find("oai:header", NSMAP).get("status") == "deleted"]  # type: ignore[union-attr]
    assert [r.find("oai:metadata", NSMAP) for r in deleted] == [None]
    assert sum(r.find("oai:metadata", NSMAP) is not None for r in records) == 4


def test_a_single_page_has_no_token() -> None:
    root = ask("verb=ListRecords&metadataPrefix=oai_dc&set=community:physics")
    assert ids(root) == ["hpc/mpi:1"]
    assert token_of(root) is None


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ("set=kind:recipe", ["lab/qc:1"]),
        ("set=community:life-sciences", ["lab/align:1", "lab/qc:1", "lab/align:2"]),
        ("set=community", ["lab/align:1", "lab/qc:1", "lab/align:2", "hpc/mpi:1"]),
        ("set=kind", ["lab/align:1", "lab/qc:1", "lab/align:2", "hpc/mpi:1", "old/tool:1"]),
        ("from=2024-03-02", ["hpc/mpi:1", "old/tool:1"]),
        ("until=2024-03-01", ["lab/align:1", "lab/qc:1", "lab/align:2"]),
        ("from=2024-03-01&until=2024-03-01", ["lab/align:1", "lab/qc:1", "lab/align:2"]),
        ("from=2024-03-01T12:01:00Z&until=2024-03-01T12:02:00Z", ["lab/qc:1", "lab/align:2"]),
        ("from=2024-03-02T12:00:00Z&set=community", ["hpc/mpi:1"]),
    ],
)
def test_selective_harvesting_by_set_and_inclusive_dates(
    selection: str, expected: list[str]
) -> None:
    pages = harvest("ListIdentifiers", f"metadataPrefix=oai_dc&{selection}")
    assert [i for p in pages for i in ids(p)] == expected
    assert echoed(pages[0]) == {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"} | dict(
        parse_qsl(selection)
    )


def test_no_records_match_and_cannot_disseminate_format() -> None:
    for selection in ("set=community:chemistry", "from=2025-01-01", "until=2020-01-01"):
        root = ask(f"verb=ListRecords&metadataPrefix=oai_dc&{selection}")
        assert codes(root) == ["noRecordsMatch"]
        assert echoed(root) == {"verb": "ListRecords", "metadataPrefix": "oai_dc"} | dict(
            parse_qsl(selection)
        )
    assert codes(ask("verb=ListRecords&metadataPrefix=oai_dc", [])) == ["noRecordsMatch"]
    root = ask("verb=ListIdentifiers&metadataPrefix=marc21")
    assert codes(root) == ["cannotDisseminateFormat"]
    assert echoed(root) == {"verb": "ListIdentifiers"}


# Resumption tokens


def first_token(verb: str = "ListRecords", query: str = "metadataPrefix=oai_dc") -> str:
    token = token_of(ask(f"verb={verb}&{query}"))
    assert token is not None and token.text
    return token.text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),
        lambda t: "x" + t,
        lambda t: t.replace(".", ""),
        lambda t: "not a token",
        lambda t: "",
    ],
)
def test_an_altered_token_is_a_bad_resumption_token(mangle: Any) -> None:
    root = ask([("verb", "ListRecords"), ("resumptionToken", mangle(first_token()))])
    assert codes(root) == ["badResumptionToken"]
    assert echoed(root) == {"verb": "ListRecords"}


def test_a_token_is_bound_to_its_verb_its_repository_and_its_lifetime() -> None:
    token = first_token()
    other_verb = ask([("verb", "ListIdentifiers"), ("resumptionToken", token)])
    assert codes(other_verb) == ["badResumptionToken"]
    assert "belongs to ListRecords" in texts(other_verb, "//oai:error")[0]
    elsewhere = replace(REPO, repository_id="other.example.org")
    assert codes(
        ask([("verb", "ListRecords"), ("resumptionToken", token)], repository=elsewhere)
    ) == ["badResumptionToken"]
    late = ask([("verb", "ListRecords"), ("resumptionToken", token)], now=NOW + timedelta(days=1))
    assert codes(late) == ["badResumptionToken"]
    assert "expired" in texts(late, "//oai:error")[0]
    in_time = ask(
        [("verb", "ListRecords"), ("resumptionToken", token)], now=NOW + timedelta(hours=23)
    )
    assert ids(in_time) == ["lab/align:2", "hpc/mpi:1"]


def test_a_token_keeps_the_query_it_started_with() -> None:
    token = first_token("ListIdentifiers", "metadataPrefix=toolferry&set=community")
    root = ask([("verb", "ListIdentifiers"), ("resumptionToken", token)])
    assert ids(root) == ["lab/align:2", "hpc/mpi:1"]
    assert token_of(root) is not None and not token_of(root).text  # type: ignore[union-attr]


def test_an_entry_changed_during_a_harvest_is_not_lost() -> None:
    token = first_token("ListIdentifiers")  # handed out lab/align:1 and lab/qc:1
    # lab/align:1 is deprecated now: its datestamp moves past everything handed out so far.
    changed = [
        e.deprecate(now=T0 + timedelta(days=3)) if e.ref == "lab/align:1" else e for e in CATALOGUE
    ]
    seen = []
    root = ask([("verb", "ListIdentifiers"), ("resumptionToken", token)], changed)
    while True:
        seen += ids(root)
        token_element = token_of(root)
        if token_element is None or not token_element.text:
            break
        root = ask([("verb", "ListIdentifiers"), ("resumptionToken", token_element.text)], changed)
    assert seen == ["lab/align:2", "hpc/mpi:1", "old/tool:1", "lab/align:1"]


def test_a_token_with_nothing_left_answers_no_records_match() -> None:
    token = first_token("ListIdentifiers")
    assert codes(ask([("verb", "ListIdentifiers"), ("resumptionToken", token)], CATALOGUE[:2])) == [
        "noRecordsMatch"
    ]
