"""XML for OAI-PMH responses: the namespaces, and serialisation that is always well-formed.

ElementTree builds the trees; :func:`serialize` writes them itself, because ElementTree cannot
make the OAI namespace the default one while attributes such as ``verb`` stay unqualified.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

__all__ = ["NS", "add", "clean", "qname", "serialize"]

# Prefix → namespace of every vocabulary a response uses; "" is the default namespace.
NS: Mapping[str, str] = {
    "oai": "http://www.openarchives.org/OAI/2.0/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "oai-identifier": "http://www.openarchives.org/OAI/2.0/oai-identifier",
    "toolferry": "urn:toolferry:environment:1",
}
_PREFIX_OF = {uri: ("" if prefix == "oai" else prefix) for prefix, uri in NS.items()}

# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_ATTR_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;", "\n": "&#10;", "\t": "&#9;"}
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTR_SPECIAL = re.compile('[&<>\r"\n\t]')


def clean(text: str) -> str:
    """``text`` with the characters XML 1.0 forbids replaced by U+FFFD, so that any catalogue
    text or request argument still gives a well-formed document."""
    return _NOT_XML.sub("\ufffd", text)


def qname(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


def add(
    parent: ET.Element,
    tag: str,
    text: str | None = None,
    attrs: Mapping[str, str] | None = None,
    *,
    prefix: str = "oai",
) -> ET.Element:
    """A child ``prefix:tag`` of ``parent`` with cleaned text and attributes."""
    child = ET.SubElement(
        parent, qname(prefix, tag), {k: clean(v) for k, v in (attrs or {}).items()}
    )
    if text is not None:
        child.text = clean(text)
    return child


def _name(name: str) -> str:
    if not name.startswith("{"):
        return name
    uri, _, local = name[1:].partition("}")
    prefix = _PREFIX_OF[uri]  # a namespace outside NS is a programming error
    return f"{prefix}:{local}" if prefix else local


def _write(elem: ET.Element, out: list[str], declarations: str) -> None:
    tag = _name(elem.tag)
    out.append(f"<{tag}{declarations}")
    for key, value in elem.attrib.items():
        escaped = _ATTR_SPECIAL.sub(lambda m: _ATTR_ESCAPES[m.group()], clean(value))
        out.append(f' {_name(key)}="{escaped}"')
    if elem.text is None and len(elem) == 0:
        out.append("/>")
        return
    out.append(">")
    if elem.text:
        out.append(_TEXT_SPECIAL.sub(lambda m: _TEXT_ESCAPES[m.group()], clean(elem.text)))
    for child in elem:
        _write(child, out, "")
    out.append(f"</{tag}>")


def serialize(root: ET.Element) -> bytes:
    """UTF-8 bytes with an XML declaration; the namespaces used are declared on the root."""
    used: set[str] = set()
    for elem in root.iter():
        for name in (elem.tag, *elem.attrib):
            if name.startswith("{"):
                used.add(name[1:].partition("}")[0])
    declarations = "".join(
        f' xmlns{":" + _PREFIX_OF[uri] if _PREFIX_OF[uri] else ""}="{uri}"'
        for uri in sorted(used, key=lambda u: (_PREFIX_OF[u] != "", _PREFIX_OF[u]))
    )
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write(root, out, declarations)
    out.append("\n")
    return "".join(out).encode("utf-8")
