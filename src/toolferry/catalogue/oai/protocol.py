"""The six OAI-PMH verbs as one pure function: request arguments and records in, XML out.

:func:`respond` checks the verb and arguments (badVerb, badArgument), then answers the verb or
its error conditions. The ``request`` element echoes the arguments, except after badVerb or
badArgument (none, as the protocol requires) and except the argument an error is about.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

from toolferry.catalogue.oai import arguments
from toolferry.catalogue.oai.dates import GRANULARITY, datestamp
from toolferry.catalogue.oai.errors import ErrorCode, OaiError, Refusal
from toolferry.catalogue.oai.formats import FORMATS
from toolferry.catalogue.oai.items import add_record, find, metadata_format
from toolferry.catalogue.oai.listing import lister
from toolferry.catalogue.oai.records import Records, identifier_of
from toolferry.catalogue.oai.repository import Repository
from toolferry.catalogue.oai.sets import sets_in_use
from toolferry.catalogue.oai.xmltree import NS, add, qname, serialize

__all__ = ["respond"]

_OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
_ID_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai-identifier.xsd"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def respond(
    pairs: Sequence[tuple[str, str]], repository: Repository, records: Records, now: datetime
) -> bytes:
    """The response document to a request with the arguments ``pairs`` (in their order,
    repeats kept). ``records`` is called at most once, when the verb needs the records."""
    root = ET.Element(
        qname("oai", "OAI-PMH"), {qname("xsi", "schemaLocation"): f"{NS['oai']} {_OAI_SCHEMA}"}
    )
    add(root, "responseDate", datestamp(now))
    try:
        verb, args = arguments.check(pairs)
    except (OaiError, Refusal) as err:
        add(root, "request", repository.base_url)
        _errors(root, err)
        return serialize(root)
    request = add(root, "request", repository.base_url)
    try:
        body = _VERBS[verb](args, repository, records, now)
    except (OaiError, Refusal) as err:
        failed = {e.argument for e in (err.errors if isinstance(err, Refusal) else [err])}
        request.attrib.update(_echo(verb, args, skip=failed))
        _errors(root, err)
    else:
        request.attrib.update(_echo(verb, args))
        root.append(body)
    return serialize(root)


def _echo(verb: str, args: dict[str, str], skip: Collection[str | None] = ()) -> dict[str, str]:
    return {"verb": verb} | {k: v for k, v in args.items() if k not in skip}


def _errors(root: ET.Element, err: OaiError | Refusal) -> None:
    for e in err.errors if isinstance(err, Refusal) else [err]:
        add(root, "error", e.message, {"code": e.code.value})


# The verbs


def _identify(
    args: dict[str, str], repository: Repository, records: Records, now: datetime
) -> ET.Element:
    found = records()
    earliest = min((r.updated for r in found), default=_EPOCH)
    body = ET.Element(qname("oai", "Identify"))
    add(body, "repositoryName", repository.name)
    add(body, "baseURL", repository.base_url)
    add(body, "protocolVersion", "2.0")
    for email in repository.admin_emails:
        add(body, "adminEmail", email)
    add(body, "earliestDatestamp", datestamp(earliest))
    add(body, "deletedRecord", "persistent")
    add(body, "granularity", GRANULARITY)
    description = add(body, "description")
    scheme = add(
        description,
        "oai-identifier",
        attrs={qname("xsi", "schemaLocation"): f"{NS['oai-identifier']} {_ID_SCHEMA}"},
        prefix="oai-identifier",
    )
    add(scheme, "scheme", "oai", prefix="oai-identifier")
    add(scheme, "repositoryIdentifier", repository.repository_id, prefix="oai-identifier")
    add(scheme, "delimiter", ":", prefix="oai-identifier")
    sample = (
        found[0].identifier if found else identifier_of(repository.repository_id, "lab/tool", 1)
    )
    add(scheme, "sampleIdentifier", sample, prefix="oai-identifier")
    return body


def _list_metadata_formats(
    args: dict[str, str], repository: Repository, records: Records, now: datetime
) -> ET.Element:
    if "identifier" in args:
        record = find(records, args["identifier"])
        if record.deleted:
            raise OaiError(
                ErrorCode.NO_METADATA_FORMATS,
                f"{record.identifier} is deleted: only its header remains",
            )
    body = ET.Element(qname("oai", "ListMetadataFormats"))
    for f in FORMATS.values():
        entry = add(body, "metadataFormat")
        add(entry, "metadataPrefix", f.prefix)
        add(entry, "schema", f.schema(repository))
        add(entry, "metadataNamespace", f.namespace)
    return body


def _list_sets(
    args: dict[str, str], repository: Repository, records: Records, now: datetime
) -> ET.Element:
    if arguments.EXCLUSIVE in args:
        raise OaiError(
            ErrorCode.BAD_RESUMPTION_TOKEN,
            "ListSets answers in one complete list; this repository issues no token for it",
            argument=arguments.EXCLUSIVE,
        )
    body = ET.Element(qname("oai", "ListSets"))
    for info in sets_in_use(r.environment for r in records()):
        entry = add(body, "set")
        add(entry, "setSpec", info.spec)
        add(entry, "setName", info.name)
    return body


def _get_record(
    args: dict[str, str], repository: Repository, records: Records, now: datetime
) -> ET.Element:
    problems: list[OaiError] = []
    fmt = record = None
    try:
        fmt = metadata_format(args["metadataPrefix"])
    except OaiError as err:
        problems.append(err)
    try:
        record = find(records, args["identifier"])
    except OaiError as err:
        problems.append(err)
    if problems:
        raise Refusal(problems)
    assert fmt is not None and record is not None
    body = ET.Element(qname("oai", "GetRecord"))
    add_record(body, record, fmt, repository)
    return body


_VERBS: dict[str, Callable[[dict[str, str], Repository, Records, datetime], ET.Element]] = {
    "Identify": _identify,
    "ListMetadataFormats": _list_metadata_formats,
    "ListSets": _list_sets,
    "GetRecord": _get_record,
    "ListIdentifiers": lister("ListIdentifiers"),
    "ListRecords": lister("ListRecords"),
}
