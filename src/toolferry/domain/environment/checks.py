"""Shared field checks for the environment models; failures raise InvalidTask naming the field."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from toolferry.domain.errors import InvalidTask

_E = TypeVar("_E", bound=StrEnum)


def join_path(where: str, inner: str) -> str:
    if not where:
        return inner
    if not inner:
        return where
    return f"{where}{inner}" if inner.startswith("[") else f"{where}.{inner}"


@contextmanager
def errors_under(where: str) -> Iterator[None]:
    """Prefix the field of any :class:`InvalidTask` raised inside with ``where``."""
    try:
        yield
    except InvalidTask as err:
        raise InvalidTask(join_path(where, err.field), err.message) from None


def set_field(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass in __post_init__


def parse_enum(cls: type[_E], value: object, where: str) -> _E:
    if isinstance(value, str):
        try:
            return cls(value)
        except ValueError:
            pass
    choices = ", ".join(member.value for member in cls)
    raise InvalidTask(where, f"{value!r} is not one of {choices}")


def clean_text(value: str, where: str, *, required: bool = True) -> str:
    trimmed = value.strip()
    if required and not trimmed:
        raise InvalidTask(where, "must not be empty")
    if "\0" in trimmed:
        raise InvalidTask(where, "must not contain a NUL character")
    return trimmed


def clean_opt_text(value: str | None, where: str) -> str | None:
    return None if value is None else clean_text(value, where)


def clean_texts(values: Collection[str], where: str) -> tuple[str, ...]:
    return tuple(clean_text(v, f"{where}[{i}]") for i, v in enumerate(values))


def check_aware(value: datetime, where: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTask(where, "must carry a time zone")
