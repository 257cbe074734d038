"""The native ``toolferry`` format: the whole entry, element for element from its JSON form.

Each key of :func:`environment_to_dict` becomes an element of the same name (in name order),
a list repeats its element, an object nests, ``null`` is left out. New fields of the entry
thus appear without a change here, and :mod:`native_schema` describes them from the model.
Left out are the live counters (ratings, exports, active deployments): they change without
the entry's ``updated`` time, and a record must not change without its datestamp.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from toolferry.catalogue.oai.records import Record
from toolferry.catalogue.oai.repository import Repository
from toolferry.catalogue.oai.xmltree import NS, add, qname
from toolferry.domain.environment import environment_to_dict

__all__ = ["NAMESPACE", "PREFIX", "ROOT", "VOLATILE", "native"]

PREFIX = "toolferry"
NAMESPACE = NS["toolferry"]
ROOT = "environment"
VOLATILE = frozenset({"ratings", "total_exports", "active_deployments"})


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"no XML form for {type(value).__name__}")


def _put(parent: ET.Element, key: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _put(parent, key, item)
    elif isinstance(value, dict):
        child = add(parent, key, prefix=PREFIX)
        for name in sorted(value):
            _put(child, name, value[name])
    else:
        add(parent, key, _text(value), prefix=PREFIX)


def native(record: Record, repository: Repository) -> ET.Element:
    root = ET.Element(
        qname(PREFIX, ROOT),
        {qname("xsi", "schemaLocation"): f"{NAMESPACE} {repository.native_schema_url}"},
    )
    document = environment_to_dict(record.environment)
    for key in sorted(document):
        if key not in VOLATILE:
            _put(root, key, document[key])
    return root
