"""What the record verbs share: finding an item or a format, and the header and record
elements."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from toolferry.catalogue.oai.dates import datestamp
from toolferry.catalogue.oai.errors import ErrorCode, OaiError
from toolferry.catalogue.oai.formats import FORMATS, MetadataFormat
from toolferry.catalogue.oai.records import Record, Records
from toolferry.catalogue.oai.repository import Repository
from toolferry.catalogue.oai.xmltree import add

__all__ = ["add_header", "add_record", "find", "metadata_format"]


def find(records: Records, identifier: str) -> Record:
    for record in records():
        if record.identifier == identifier:
            return record
    raise OaiError(
        ErrorCode.ID_DOES_NOT_EXIST,
        f"no record {identifier!r} in this repository",
        argument="identifier",
    )


def metadata_format(prefix: str) -> MetadataFormat:
    found = FORMATS.get(prefix)
    if found is None:
        raise OaiError(
            ErrorCode.CANNOT_DISSEMINATE_FORMAT,
            f"metadataPrefix {prefix!r} is not disseminated here; use one of " + ", ".join(FORMATS),
            argument="metadataPrefix",
        )
    return found


def add_header(parent: ET.Element, record: Record) -> None:
    header = add(parent, "header", attrs={"status": "deleted"} if record.deleted else None)
    add(header, "identifier", record.identifier)
    add(header, "datestamp", datestamp(record.updated))
    for spec in record.sets:
        add(header, "setSpec", spec)


def add_record(
    parent: ET.Element, record: Record, fmt: MetadataFormat, repository: Repository
) -> None:
    element = add(parent, "record")
    add_header(element, record)
    if not record.deleted:
        add(element, "metadata").append(fmt.render(record, repository))
