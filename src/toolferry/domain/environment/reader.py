"""Typed, path-naming reads from JSON objects, for the environment codec."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from toolferry.domain.environment.checks import errors_under, join_path, parse_enum
from toolferry.domain.errors import InvalidTask

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")


class Reader:
    """Typed reads from one JSON object; every failure names ``where.key``."""

    def __init__(self, data: object, where: str, known: Collection[str]) -> None:
        if not isinstance(data, Mapping):
            raise InvalidTask(where, "must be an object")
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidTask(join_path(where, str(unknown[0])), "unknown field")
        self.data: dict[str, Any] = dict(data)
        self.where = where

    def at(self, key: str) -> str:
        return join_path(self.where, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, *, required: bool = False) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise InvalidTask(self.at(key), "is required")
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.raw(key, required=required)
        if value is not None and not isinstance(value, str):
            raise InvalidTask(self.at(key), "must be a string")
        return value

    def req_text(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def integer(self, key: str) -> int | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidTask(self.at(key), "must be an integer")
        return value

    def req_integer(self, key: str) -> int:
        self.raw(key, required=True)
        value = self.integer(key)
        assert value is not None
        return value

    def number(self, key: str) -> float | None:
        value = self.raw(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidTask(self.at(key), "must be a number")
        return None if value is None else float(value)

    def strs(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise InvalidTask(self.at(key), "must be a list of strings")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidTask(f"{self.at(key)}[{i}]", "must be a string")
        return tuple(value)

    def objects(self, key: str) -> list[object]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidTask(self.at(key), "must be a list")
        return value

    def enum(self, cls: type[_E], key: str, *, required: bool = False) -> _E | None:
        value = self.raw(key, required=required)
        return None if value is None else parse_enum(cls, value, self.at(key))

    def req_enum(self, cls: type[_E], key: str) -> _E:
        return parse_enum(cls, self.raw(key, required=True), self.at(key))

    def time(self, key: str) -> datetime:
        text = self.req_text(key)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise InvalidTask(self.at(key), f"{text!r} is not an ISO 8601 date and time") from None


def field_names(cls: type[object]) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]


def build_at(cls: type[_T], where: str, kwargs: dict[str, Any]) -> _T:
    """Construct ``cls``, naming its own validation errors under ``where``. The arguments are
    read before, so that their errors already carry their full path."""
    with errors_under(where):
        return cls(**kwargs)
