"""The ``oai_dc`` format: unqualified Dublin Core from the ViCE classification."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from toolferry.catalogue.oai.dates import datestamp
from toolferry.catalogue.oai.records import Record, identifier_of
from toolferry.catalogue.oai.repository import Repository
from toolferry.catalogue.oai.xmltree import NS, add, qname
from toolferry.domain.environment import parse_base

__all__ = ["NAMESPACE", "PREFIX", "SCHEMA", "oai_dc"]

PREFIX = "oai_dc"
NAMESPACE = NS["oai_dc"]
SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"


def oai_dc(record: Record, repository: Repository) -> ET.Element:
    """title; creator = owner; subject = communities, purposes, operating systems and
    software; description; publisher = the repository; date = created; type = Software and
    the kind; format = the content type; identifier = the REST URL, ``name:version`` and the
    digest; source = the origin location; relation = the base version's OAI identifier, the
    content references and the service dependencies."""
    env = record.environment
    c = env.classification
    root = ET.Element(
        qname("oai_dc", "dc"), {qname("xsi", "schemaLocation"): f"{NAMESPACE} {SCHEMA}"}
    )

    def dc(element: str, *values: str) -> None:
        for value in values:
            add(root, element, value, prefix="dc")

    dc("title", c.title)
    dc("creator", env.owner_id)
    dc("subject", *c.community, *c.purpose, *c.operating_system, *c.software_packages)
    if c.description:
        dc("description", c.description)
    dc("publisher", repository.name)
    dc("date", datestamp(env.created))
    dc("type", "Software", env.kind.value)
    dc("format", c.content_type.value)
    if repository.catalogue_url is not None:
        dc("identifier", f"{repository.catalogue_url}/{env.name}/versions/{env.version}")
    dc("identifier", env.ref, env.digest)
    if c.location is not None:
        dc("source", c.location)
    if env.base is not None:
        dc("relation", identifier_of(repository.repository_id, *parse_base(env.base)))
    dc("relation", *c.content_refs, *c.service_dependencies)
    return root
