"""The metadata formats this repository disseminates, by metadataPrefix."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from toolferry.catalogue.oai import native, oai_dc
from toolferry.catalogue.oai.records import Record
from toolferry.catalogue.oai.repository import Repository

__all__ = ["FORMATS", "MetadataFormat"]


@dataclass(frozen=True, kw_only=True)
class MetadataFormat:
    prefix: str
    namespace: str
    schema: Callable[[Repository], str]  # the XSD's URL
    render: Callable[[Record, Repository], ET.Element]


FORMATS: Mapping[str, MetadataFormat] = {
    f.prefix: f
    for f in (
        MetadataFormat(
            prefix=oai_dc.PREFIX,
            namespace=oai_dc.NAMESPACE,
            schema=lambda _: oai_dc.SCHEMA,
            render=oai_dc.oai_dc,
        ),
        MetadataFormat(
            prefix=native.PREFIX,
            namespace=native.NAMESPACE,
            schema=lambda repository: repository.native_schema_url,
            render=native.native,
        ),
    )
}
