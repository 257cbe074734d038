"""Tool interfaces: named files, parameters and a templated command, and the TES task they make."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from toolferry.domain.environment.checks import clean_opt_text, set_field
from toolferry.domain.errors import InvalidTask
from toolferry.domain.rules import check_container_path
from toolferry.domain.task import Executor, FileType, Input, Output, Resources, TaskSpec

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ``{{`` and ``}}`` are literal braces (as in str.format); any other brace is kept as it is.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(arg: str) -> list[str]:
    """The names of the ``{name}`` placeholders in one command token, in order."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(arg) if m.group(1)]


def render_token(arg: str, values: Mapping[str, str]) -> str:
    """Replace placeholders in one token, in one pass: a value is never expanded again and
    never splits the token (the command runs without a shell)."""

    def sub(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "{{":
            return "{"
        if text == "}}":
            return "}"
        return values[match.group(1)]

    return _PLACEHOLDER.sub(sub, arg)


@dataclass(frozen=True, kw_only=True)
class ToolFile:
    """A named input or output of a tool: ``{name}`` in the command stands for ``path``."""

    name: str
    path: str
    type: FileType = FileType.FILE
    description: str | None = None
    default_url: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidTask(
                "name", f"{self.name!r} must be a letter or '_' then letters, digits, '_'"
            )
        check_container_path("path", self.path)
        set_field(self, "description", clean_opt_text(self.description, "description"))
        set_field(self, "default_url", clean_opt_text(self.default_url, "default_url"))


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """A named value for the command; required unless it has a default."""

    name: str
    default: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidTask(
                "name", f"{self.name!r} must be a letter or '_' then letters, digits, '_'"
            )
        if self.default is not None and "\0" in self.default:
            raise InvalidTask("default", "must not contain a NUL character")
        set_field(self, "description", clean_opt_text(self.description, "description"))


@dataclass(frozen=True, kw_only=True)
class ToolInterface:
    """How to make a task from an environment: files in and out, parameters, a command."""

    command: tuple[str, ...]
    inputs: tuple[ToolFile, ...] = ()
    outputs: tuple[ToolFile, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    workdir: str | None = None

    def __post_init__(self) -> None:
        set_field(self, "command", tuple(self.command))
        set_field(self, "inputs", tuple(self.inputs))
        set_field(self, "outputs", tuple(self.outputs))
        set_field(self, "parameters", tuple(self.parameters))
        if not self.command or not self.command[0].strip():
            raise InvalidTask("command", "must hold at least the program to run")
        if self.workdir is not None:
            check_container_path("workdir", self.workdir)
        seen: set[str] = set()
        groups: tuple[tuple[str, tuple[ToolFile | Parameter, ...]], ...] = (
            ("inputs", self.inputs),
            ("outputs", self.outputs),
            ("parameters", self.parameters),
        )
        for group, items in groups:
            for i, item in enumerate(items):
                if item.name in seen:
                    raise InvalidTask(f"{group}[{i}].name", f"{item.name!r} is used twice")
                seen.add(item.name)
        for i, arg in enumerate(self.command):
            if "\0" in arg:
                raise InvalidTask(f"command[{i}]", "must not contain a NUL character")
            unknown = [p for p in placeholders(arg) if p not in seen]
            if unknown:
                raise InvalidTask(
                    f"command[{i}]",
                    f"unknown placeholder {{{unknown[0]}}}; write '{{{{' for a literal brace",
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a binding or a placeholder may use."""
        files = tuple(f.name for f in (*self.inputs, *self.outputs))
        return files + tuple(p.name for p in self.parameters)

    def to_task_spec(
        self,
        image_ref: str,
        bindings: Mapping[str, str],
        name: str | None = None,
        *,
        resources: Resources | None = None,
    ) -> TaskSpec:
        """A TES task running this tool from ``image_ref``.

        ``bindings`` maps an input or output name to a URL and a parameter name to a value;
        unbound names take their default. Unknown or missing names raise :class:`InvalidTask`
        on ``bindings`` listing all of them.
        """
        unknown = sorted(set(bindings) - set(self.names))
        if unknown:
            raise InvalidTask(
                "bindings",
                f"unknown names: {', '.join(unknown)} (known: {', '.join(self.names) or 'none'})",
            )
        values: dict[str, str] = {}
        urls: dict[str, str] = {}
        missing: list[str] = []
        for f in (*self.inputs, *self.outputs):
            url = bindings.get(f.name, f.default_url)
            if url is None or not url.strip():
                missing.append(f.name)
            else:
                urls[f.name] = url.strip()
            values[f.name] = f.path
        for p in self.parameters:
            value = bindings.get(p.name, p.default)
            if value is None:
                missing.append(p.name)
            else:
                values[p.name] = value
        if missing:
            raise InvalidTask("bindings", f"missing: {', '.join(missing)}")
        return TaskSpec(
            name=name,
            executors=(
                Executor(
                    image=image_ref,
                    command=tuple(render_token(arg, values) for arg in self.command),
                    workdir=self.workdir,
                ),
            ),
            inputs=tuple(
                Input(
                    name=f.name,
                    path=f.path,
                    url=urls[f.name],
                    type=f.type,
                    description=f.description,
                )
                for f in self.inputs
            ),
            outputs=tuple(
                Output(
                    name=f.name,
                    path=f.path,
                    url=urls[f.name],
                    type=f.type,
                    description=f.description,
                )
                for f in self.outputs
            ),
            resources=resources,
        )
