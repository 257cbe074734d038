"""The runtime interface: start one executor detached, wait for it, stop it, re-attach to it.

A runtime never talks to the store; the worker turns what it returns into events. Every method
that can fail for a reason outside the task raises :class:`RuntimeFailure` with a message a user
can act on (it ends the task in SYSTEM_ERROR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class RuntimeFailure(Exception):
    """The runtime could not do its job (engine down, image missing, ...): a SYSTEM_ERROR."""


@dataclass(frozen=True, kw_only=True)
class Mount:
    """A host directory or file made visible at ``container`` inside the executor."""

    host: Path
    container: str
    read_only: bool = False


@dataclass(frozen=True, kw_only=True)
class ExecSpec:
    """One executor, with every container path already mapped to a host path."""

    task_id: str
    index: int
    image: str
    command: tuple[str, ...]
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Sorted so that a parent directory comes before anything mounted inside it.
    mounts: tuple[Mount, ...] = ()
    stdin: Path | None = None  # host file piped to the executor's stdin
    stdout: Path  # host file that receives the executor's stdout (always written)
    stderr: Path  # host file that receives the executor's stderr (always written)
    cpu_cores: float | None = None
    ram_gb: float | None = None
    network: bool = False  # False: the executor has no network at all
    # A directory the runtime may use for its own state files; the attempt's executors share
    # it, so name files by ``index``.
    scratch: Path
    # Where the executor may run, for runtimes that place it on one of several nodes (e.g.
    # Docker Swarm constraints such as ``node.labels.zone==a``); others ignore it.
    placement: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RuntimeCapabilities:
    """What a runtime can promise; checked at submission so nothing fails half-way."""

    name: str
    uses_images: bool  # False: the executor's image is ignored and the host runs the command
    enforces_cpu: bool
    enforces_ram: bool
    isolates_network: bool
    stdin: bool = True  # False: an executor's stdin cannot be fed (refused at submission)


class Runtime(Protocol):
    """Runs executors. ``ref`` strings identify a started executor and survive hub restarts."""

    name: str
    capabilities: RuntimeCapabilities

    def unavailable_reason(self) -> str | None:
        """``None`` when the runtime can run executors here, else why not and how to fix it."""
        ...

    def path_problem(self, container_paths: list[str]) -> str | None:
        """Why the first of these container paths cannot be used (as a working directory or
        mount target) with this runtime, or ``None``; checked at submission."""
        ...

    def start(self, spec: ExecSpec) -> str:
        """Start the executor detached and return its ref (container id, pid, ...)."""
        ...

    def find(self, spec: ExecSpec) -> str | None:
        """The ref of this executor if an earlier process started it (the hub stopped between
        asking for the start and recording the ref), else ``None``; never starts anything."""
        ...

    def wait(self, ref: str, spec: ExecSpec) -> int:
        """Block until the executor ends; make sure spec.stdout/stderr hold its output; return
        its exit code. Works for a ref started by an earlier hub process too (re-attach)."""
        ...

    def is_alive(self, ref: str) -> bool | None:
        """True while running, False once it ended (exit code still readable), None if gone."""
        ...

    def kill(self, ref: str) -> None:
        """Stop the executor now; no error if it already ended."""
        ...

    def cleanup(self, ref: str) -> None:
        """Release what the executor left behind (a stopped container, state files)."""
        ...

    def sweep(self, keep: Callable[[str], bool]) -> int:
        """Remove what executors of tasks not kept (``keep(task_id)`` is False) left behind
        and nobody will clean up: e.g. containers of a hub that was killed. Returns how many."""
        ...
