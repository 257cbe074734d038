"""A fake runtime for unit tests: each executor is a Python function over the host files."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from toolferry.runtimes.base import ExecSpec, RuntimeCapabilities

Behaviour = Callable[[ExecSpec, "FakeRuntime"], int]


def host(spec: ExecSpec, container_path: str) -> Path:
    """Where ``container_path`` of the executor lives on the host, through its mounts."""
    for mount in sorted(spec.mounts, key=lambda m: -len(m.container)):
        prefix = mount.container.rstrip("/") + "/"
        if container_path == mount.container or container_path.startswith(prefix):
            return mount.host / container_path[len(mount.container) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted")


class FakeRuntime:
    name = "fake"
    capabilities = RuntimeCapabilities(
        name="fake",
        uses_images=False,
        enforces_cpu=False,
        enforces_ram=False,
        isolates_network=True,
    )

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour: Behaviour = behaviour or (lambda spec, rt: 0)
        self.started: list[ExecSpec] = []
        self.killed: list[str] = []
        self.cleaned: list[str] = []
        self.release = threading.Event()
        self._specs: dict[str, ExecSpec] = {}

    def unavailable_reason(self) -> str | None:
        return None

    def path_problem(self, container_paths: list[str]) -> str | None:
        return next((f"{p} is off limits" for p in container_paths if p == "/forbidden"), None)

    def start(self, spec: ExecSpec) -> str:
        ref = f"fake-{spec.task_id}-{spec.index}"
        self.started.append(spec)
        self._specs[ref] = spec
        return ref

    def find(self, spec: ExecSpec) -> str | None:
        ref = f"fake-{spec.task_id}-{spec.index}"
        return ref if ref in self._specs else None

    def wait(self, ref: str, spec: ExecSpec) -> int:
        spec.stdout.write_text(f"stdout of {spec.index}\n")
        spec.stderr.write_text(f"stderr of {spec.index}\n")
        if ref in self.killed:
            return 137
        return self.behaviour(spec, self)

    def is_alive(self, ref: str) -> bool | None:
        return ref in self._specs and ref not in self.killed

    def kill(self, ref: str) -> None:
        self.killed.append(ref)
        self.release.set()

    def cleanup(self, ref: str) -> None:
        self.cleaned.append(ref)

    def sweep(self, keep: Callable[[str], bool]) -> int:
        return 0
