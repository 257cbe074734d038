"""The XML Schema of the native format, derived from the environment model's type hints.

Every dataclass the entry holds becomes a complex type whose elements are its fields in name
order (as :mod:`native` writes them); an optional field may be absent, a tuple repeats, an
enum lists its values. A field of a type this module does not know fails loudly, so a model
change cannot silently produce records the schema rejects.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from enum import StrEnum
from functools import cache
from xml.sax.saxutils import quoteattr

from toolferry.catalogue.oai.native import NAMESPACE, ROOT, VOLATILE
from toolferry.domain.environment import Environment, Permissions

__all__ = ["native_schema"]

_SIMPLE: dict[type, str] = {
    str: "xs:string",
    bool: "xs:boolean",
    int: "xs:integer",
    float: "xs:double",
    datetime: "xs:dateTime",
}
_PERMISSIONS_PATTERN = "(rw|r-|-w|--),(rw|r-|-w|--),(rw|r-|-w|--)"


class _Builder:
    def __init__(self) -> None:
        self.definitions: dict[str, str] = {}

    def type_of(self, hint: object) -> str:
        """The schema type name for ``hint``, defining it on first use."""
        if isinstance(hint, type):
            if hint in _SIMPLE:
                return _SIMPLE[hint]
            if hint is Permissions:  # written as "rw,r-,--"
                return self._define(hint.__name__, self._permissions)
            if issubclass(hint, StrEnum):
                return self._define(hint.__name__, lambda: self._enum(hint))
            if dataclasses.is_dataclass(hint):
                return self._define(hint.__name__, lambda: self._complex(hint))
        raise TypeError(f"the native format has no XML form for {hint!r}")

    def _define(self, name: str, body: typing.Callable[[], str]) -> str:
        if name not in self.definitions:
            self.definitions[name] = ""  # reserved first: types may refer to themselves
            self.definitions[name] = body()
        return f"tf:{name}"

    def _permissions(self) -> str:
        return (
            '  <xs:simpleType name="Permissions">\n'
            '    <xs:restriction base="xs:string">\n'
            f"      <xs:pattern value={quoteattr(_PERMISSIONS_PATTERN)}/>\n"
            "    </xs:restriction>\n"
            "  </xs:simpleType>\n"
        )

    def _enum(self, cls: type[StrEnum]) -> str:
        values = "".join(
            f"      <xs:enumeration value={quoteattr(member.value)}/>\n" for member in cls
        )
        return (
            f'  <xs:simpleType name="{cls.__name__}">\n'
            '    <xs:restriction base="xs:string">\n'
            f"{values}"
            "    </xs:restriction>\n"
            "  </xs:simpleType>\n"
        )

    def _complex(self, cls: type, skip: frozenset[str] = frozenset()) -> str:
        hints = typing.get_type_hints(cls)
        elements = []
        for field in sorted(dataclasses.fields(cls), key=lambda f: f.name):
            if field.name in skip:
                continue
            hint, low, high = _occurrence(hints[field.name])
            elements.append(
                f'      <xs:element name="{field.name}" type="{self.type_of(hint)}"'
                f' minOccurs="{low}" maxOccurs="{high}"/>\n'
            )
        return (
            f'  <xs:complexType name="{cls.__name__}">\n'
            "    <xs:sequence>\n"
            f"{''.join(elements)}"
            "    </xs:sequence>\n"
            "  </xs:complexType>\n"
        )

    def root(self) -> str:
        self.definitions[Environment.__name__] = ""
        self.definitions[Environment.__name__] = self._complex(Environment, VOLATILE)
        return f'  <xs:element name="{ROOT}" type="tf:{Environment.__name__}"/>\n'


def _occurrence(hint: object) -> tuple[object, int, str]:
    """``(inner type, minOccurs, maxOccurs)``: ``X | None`` may be absent, ``tuple[X, ...]``
    repeats."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"the native format has no XML form for {hint!r}")
        inner, _, high = _occurrence(rest[0])
        return inner, 0, high
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0], 0, "unbounded"
    return hint, 1, "1"


@cache
def native_schema() -> str:
    """The XSD text (served at ``/oai/schema/environment-1.xsd``)."""
    builder = _Builder()
    root = builder.root()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"\n'
        f"           xmlns:tf={quoteattr(NAMESPACE)}\n"
        f"           targetNamespace={quoteattr(NAMESPACE)}\n"
        '           elementFormDefault="qualified" attributeFormDefault="unqualified">\n'
        "  <xs:annotation>\n"
        "    <xs:documentation>One toolferry catalogue entry (an environment version) with its\n"
        "      whole ViCE classification, hardware, tool interface and version bookkeeping;\n"
        "      elements in name order. Generated from the entry model.</xs:documentation>\n"
        "  </xs:annotation>\n"
        f"{root}"
        f"{''.join(builder.definitions[name] for name in sorted(builder.definitions))}"
        "</xs:schema>\n"
    )
