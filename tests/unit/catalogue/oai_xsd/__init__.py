"""XML Schema validation of OAI-PMH responses, with the schemas vendored beside this file.

- ``OAI-PMH.xsd``: the protocol's schema (2004-10-12 revision) as pyoai 2.5 ships it in
  ``oaipmh/tests`` (BSD). That copy does not look inside ``metadata`` and ``description``
  (``processContents="skip"``), so :func:`validate` checks each of those against its own schema,
  which is what the official schema's strict wildcards demand.
- ``oai_dc.xsd``, ``simpledc20021212.xsd``, ``oai-identifier.xsd``: re-typed from the schemas
  the OAI and DCMI publish (no PyPI package ships them; the tests have no network).
- the native format's schema is the one the hub serves (``native_schema()``).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

from lxml import etree

from toolferry.catalogue.oai.native_schema import native_schema

HERE = Path(__file__).resolve().parent
OAI = "http://www.openarchives.org/OAI/2.0/"
NSMAP = {
    "oai": OAI,
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "tf": "urn:toolferry:environment:1",
    "id": "http://www.openarchives.org/OAI/2.0/oai-identifier",
}


@cache
def _schema(name: str) -> etree.XMLSchema:
    if name == "native":
        return etree.XMLSchema(etree.fromstring(native_schema().encode()))
    return etree.XMLSchema(etree.parse(str(HERE / name)))


_BY_NAMESPACE = {
    NSMAP["oai_dc"]: "oai_dc.xsd",
    NSMAP["tf"]: "native",
    NSMAP["id"]: "oai-identifier.xsd",
}


def check(schema_name: str, element: etree._Element) -> None:
    """Raise AssertionError with the validator's messages unless ``element`` is valid."""
    schema = _schema(schema_name)
    if not schema.validate(etree.ElementTree(copy.deepcopy(element))):
        raise AssertionError(f"invalid against {schema_name}: {schema.error_log}")


def validate(document: bytes) -> etree._Element:
    """Parse an OAI-PMH response, check it against the protocol's schema and every metadata
    and description part against its own; return the root."""
    root = etree.fromstring(document)
    check("OAI-PMH.xsd", root)
    parts = root.xpath("//oai:metadata/* | //oai:description/*", namespaces=NSMAP)
    for part in parts:
        namespace = etree.QName(part).namespace
        assert namespace in _BY_NAMESPACE, f"no schema known for {namespace}"
        check(_BY_NAMESPACE[namespace], part)
    return root
