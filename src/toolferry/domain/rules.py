"""Rules a task document must follow before it is stored; each failure names the field."""

from __future__ import annotations

import re

from toolferry.domain.errors import InvalidTask
from toolferry.domain.task import TaskSpec

_WILDCARD = re.compile(r"[*?\[]")


def has_wildcard(path: str) -> bool:
    return bool(_WILDCARD.search(path))


def check_container_path(field: str, path: str) -> None:
    """A path inside the container: absolute, no ``..`` component, no NUL byte."""
    if not path:
        raise InvalidTask(field, "must not be empty")
    if not path.startswith("/"):
        raise InvalidTask(field, f"must be an absolute path, got {path!r}")
    if "\0" in path:
        raise InvalidTask(field, "must not contain a NUL byte")
    if ".." in path.split("/"):
        raise InvalidTask(field, f"must not contain '..', got {path!r}")


# Linux refuses a single argument or environment string longer than this (MAX_ARG_STRLEN),
# and programs fail to start when all of them together pass ARG_MAX; refuse them up front.
MAX_ARG_BYTES = 128 * 1024 - 1
MAX_ARGS_TOTAL_BYTES = 1024 * 1024
MIN_RAM_GB = 0.01  # container engines refuse smaller memory limits (docker: 6 MB)


def _check_text(field: str, value: str | None) -> None:
    if value is not None and "\0" in value:
        raise InvalidTask(field, "must not contain a NUL character")


def _check_exec_strings(where: str, strings: list[tuple[str, str]]) -> None:
    total = 0
    for field, value in strings:
        _check_text(f"{where}.{field}", value)
        size = len(value.encode())
        if size > MAX_ARG_BYTES:
            raise InvalidTask(
                f"{where}.{field}",
                f"is {size} bytes; a program cannot receive a string over {MAX_ARG_BYTES}; pass "
                "large data as an input file",
            )
        total += size + 1
    if total > MAX_ARGS_TOTAL_BYTES:
        raise InvalidTask(
            where,
            f"command and environment take {total} bytes; the limit is {MAX_ARGS_TOTAL_BYTES}",
        )


def check_spec(spec: TaskSpec, *, max_content_bytes: int) -> None:
    """Raise :class:`InvalidTask` for the first rule ``spec`` breaks."""
    _check_text("name", spec.name)
    _check_text("description", spec.description)
    for key, value in spec.tags.items():
        _check_text(f"tags.{key}", key + value)
    if not spec.executors:
        raise InvalidTask("executors", "at least one executor is required")
    for i, ex in enumerate(spec.executors):
        where = f"executors[{i}]"
        if not ex.image.strip():
            raise InvalidTask(f"{where}.image", "must not be empty")
        if not ex.command:
            raise InvalidTask(f"{where}.command", "must hold at least the program to run")
        if not ex.command[0]:
            raise InvalidTask(f"{where}.command[0]", "the program to run must not be empty")
        for name in ("workdir", "stdin", "stdout", "stderr"):
            value = getattr(ex, name)
            if value is not None:
                check_container_path(f"{where}.{name}", value)
        for key in ex.env:
            if not key or "=" in key or "\0" in key:
                raise InvalidTask(f"{where}.env", f"invalid variable name {key!r}")
        _check_text(f"{where}.image", ex.image)
        _check_exec_strings(
            where,
            [(f"command[{n}]", arg) for n, arg in enumerate(ex.command)]
            + [(f"env.{k}", f"{k}={v}") for k, v in ex.env.items()],
        )
    for i, inp in enumerate(spec.inputs):
        where = f"inputs[{i}]"
        check_container_path(f"{where}.path", inp.path)
        if inp.content is not None and inp.url:
            raise InvalidTask(where, "set either 'url' or 'content', not both")
        if inp.content is None and not inp.url:
            raise InvalidTask(f"{where}.url", "required unless 'content' is set")
        if inp.content is not None and len(inp.content.encode()) > max_content_bytes:
            raise InvalidTask(
                f"{where}.content",
                f"is {len(inp.content.encode())} bytes; the limit is {max_content_bytes}",
            )
    for i, out in enumerate(spec.outputs):
        where = f"outputs[{i}]"
        check_container_path(f"{where}.path", out.path)
        if not out.url:
            raise InvalidTask(f"{where}.url", "must not be empty")
        if has_wildcard(out.path):
            if not out.path_prefix:
                raise InvalidTask(f"{where}.path_prefix", "required when 'path' has wildcards")
            if not out.path.startswith(out.path_prefix):
                raise InvalidTask(f"{where}.path_prefix", "must be a prefix of 'path'")
    for i, vol in enumerate(spec.volumes):
        check_container_path(f"volumes[{i}]", vol)
        if has_wildcard(vol):
            raise InvalidTask(f"volumes[{i}]", "must not contain wildcards")
    res = spec.resources
    if res is not None:
        if res.cpu_cores is not None and res.cpu_cores < 1:
            raise InvalidTask("resources.cpu_cores", "must be at least 1")
        for name in ("ram_gb", "disk_gb"):
            value = getattr(res, name)
            if value is not None and not value > 0:  # also refuses NaN
                raise InvalidTask(f"resources.{name}", "must be greater than 0")
        if res.ram_gb is not None and res.ram_gb < MIN_RAM_GB:
            raise InvalidTask("resources.ram_gb", f"must be at least {MIN_RAM_GB} (10 MB)")
