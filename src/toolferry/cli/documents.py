"""TES task documents from what a user types: a JSON file, or `toolferry run` options.

Pure functions: they raise :class:`CliError` for bad input and never talk to a hub.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from toolferry.cli.output import CliError

__all__ = ["HOST_IMAGE", "build_task", "parse_pairs", "read_task_document", "to_url"]

# The image named in a task for the host-process runtime, which ignores images; TES requires one.
HOST_IMAGE = "host"


def read_task_document(source: str) -> dict[str, Any]:
    """A task document from a JSON file, or from stdin when ``source`` is ``-``."""
    label = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"task file {label} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read task file {label}: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{label} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise CliError(
            f"{label} must hold a JSON object (a TES task), not {type(document).__name__}"
        )
    return document


def parse_pairs(values: Iterable[str], option: str, shape: str) -> list[tuple[str, str]]:
    """``A=B`` strings → pairs, split at the first ``=`` (URLs and values may contain more)."""
    pairs = []
    for value in values:
        left, sep, right = value.partition("=")
        if not sep or not left:
            raise CliError(f"{option} takes {shape}, got {value!r}")
        pairs.append((left, right))
    return pairs


def to_url(value: str) -> str:
    """A URL as given, or a local path turned into a file:// URL (TES accepts both; the URL
    form does not depend on the hub's working directory)."""
    if "://" in value:
        return value
    return Path(value).expanduser().resolve().as_uri()


def _container_path(path: str, option: str) -> str:
    if not path.startswith("/"):
        raise CliError(f"{option}: the path inside the container must be absolute, got {path!r}")
    return path


def _resources(
    cpu: int | None,
    ram: float | None,
    runtime: str | None,
    network: bool,
    backend: str | None = None,
    params_given: Iterable[str] = (),
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if cpu is not None:
        resources["cpu_cores"] = cpu
    if ram is not None:
        resources["ram_gb"] = ram
    params = dict(parse_pairs(params_given, "--param", "KEY=VALUE"))
    if backend is not None:
        params["backend"] = backend
    if runtime is not None:
        params["runtime"] = runtime
    if network:
        params["network"] = "host"
    if params:
        resources["backend_parameters"] = params
    return resources


def build_task(
    *,
    image: str | None,
    command: Sequence[str],
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    env: Iterable[str] = (),
    tags: Iterable[str] = (),
    workdir: str | None = None,
    cpu: int | None = None,
    ram: float | None = None,
    name: str | None = None,
    runtime: str | None = None,
    network: bool = False,
    backend: str | None = None,
    params: Iterable[str] = (),
) -> dict[str, Any]:
    """The TES document of ``toolferry run IMAGE [options] -- CMD...``."""
    if not command:
        raise CliError(
            "give the command to run after the image, e.g. `toolferry run busybox -- echo hi`"
        )
    if image is None:
        if runtime != "none":
            raise CliError(
                "give the image to run the command in, e.g. `toolferry run busybox -- echo hi` "
                "(only `--runtime none`, which runs commands on the host, needs none)"
            )
        image = HOST_IMAGE
    executor: dict[str, Any] = {"image": image, "command": list(command)}
    if workdir:
        executor["workdir"] = workdir
    env_pairs = parse_pairs(env, "--env", "NAME=VALUE")
    if env_pairs:
        executor["env"] = dict(env_pairs)
    task: dict[str, Any] = {"executors": [executor]}
    if name:
        task["name"] = name
    task_inputs = [
        {"path": _container_path(path, "--input"), "url": to_url(url)}
        for path, url in parse_pairs(inputs, "--input", "PATH=URL")
    ]
    if task_inputs:
        task["inputs"] = task_inputs
    task_outputs = [
        {"path": _container_path(path, "--output"), "url": to_url(url)}
        for path, url in parse_pairs(outputs, "--output", "PATH=URL")
    ]
    if task_outputs:
        task["outputs"] = task_outputs
    resources = _resources(cpu, ram, runtime, network, backend, params)
    if resources:
        task["resources"] = resources
    tag_pairs = parse_pairs(tags, "--tag", "KEY=VALUE")
    if tag_pairs:
        task["tags"] = dict(tag_pairs)
    return task


def apply_overrides(
    task: Mapping[str, Any],
    *,
    name: str | None = None,
    cpu: int | None = None,
    ram: float | None = None,
    runtime: str | None = None,
    network: bool = False,
    tags: Iterable[str] = (),
    backend: str | None = None,
    params: Iterable[str] = (),
) -> dict[str, Any]:
    """A task file's document with the options given on the command line laid over it."""
    result = dict(task)
    if name:
        result["name"] = name
    extra = _resources(cpu, ram, runtime, network, backend, params)
    if extra:
        resources = dict(result.get("resources") or {})
        params = {
            **(resources.get("backend_parameters") or {}),
            **extra.pop("backend_parameters", {}),
        }
        resources.update(extra)
        if params:
            resources["backend_parameters"] = params
        result["resources"] = resources
    tag_pairs = parse_pairs(tags, "--tag", "KEY=VALUE")
    if tag_pairs:
        result["tags"] = {**(result.get("tags") or {}), **dict(tag_pairs)}
    return result
