"""Test helpers for runtimes: run specs in a throw-away work area and clean up after."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from toolferry.runtimes.base import ExecSpec, Mount, Runtime


@dataclass
class Runtimes:
    """Hands out runtime instances of one kind; kills and removes whatever they started."""

    factory: Callable[[], Runtime]
    made: list[Runtime] = field(default_factory=list)
    started: list[tuple[Runtime, str]] = field(default_factory=list)

    def new(self) -> Runtime:
        runtime = self.factory()
        self.made.append(runtime)
        return runtime

    def start(self, runtime: Runtime, spec: ExecSpec) -> str:
        ref = runtime.start(spec)
        self.started.append((runtime, ref))
        return ref

    def close(self) -> None:
        for runtime, ref in reversed(self.started):
            runtime.cleanup(ref)
        for runtime in self.made:
            close: Any = getattr(runtime, "close", None)
            if close:
                close()


@dataclass
class Harness:
    """One runtime plus a task work area: ``/data`` (rw), ``/inputs`` (ro), log files."""

    runtime: Runtime
    runtimes: Runtimes
    root: Path
    image: str
    task_id: str = field(default_factory=lambda: f"rt{uuid.uuid4().hex[:12]}")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    def spec(self, *command: str, **changes: Any) -> ExecSpec:
        spec = ExecSpec(
            task_id=self.task_id,
            index=0,
            image=self.image,
            command=command,
            mounts=(
                Mount(host=self.data, container="/data"),
                Mount(host=self.inputs, container="/inputs", read_only=True),
            ),
            stdout=self.root / "logs" / "stdout",
            stderr=self.root / "logs" / "stderr",
            scratch=self.root / "scratch",
        )
        return replace(spec, **changes)

    def start(self, spec: ExecSpec) -> str:
        return self.runtimes.start(self.runtime, spec)

    def run(self, spec: ExecSpec) -> int:
        """Start, wait and clean up; the exit code."""
        ref = self.start(spec)
        code = self.runtime.wait(ref, spec)
        self.runtime.cleanup(ref)
        return code

    def stdout(self) -> str:
        return (self.root / "logs" / "stdout").read_text()

    def stderr(self) -> str:
        return (self.root / "logs" / "stderr").read_text()


def make_harness(runtimes: Runtimes, root: Path, image: str) -> Harness:
    for sub in ("data", "inputs", "scratch"):
        (root / sub).mkdir(parents=True)
    return Harness(runtime=runtimes.new(), runtimes=runtimes, root=root, image=image)
