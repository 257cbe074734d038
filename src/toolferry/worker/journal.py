"""The attempt's journal: where the worker is, written atomically so a restarted hub can resume."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path


class Phase(StrEnum):
    STAGING_IN = "staging_in"
    RUNNING = "running"
    STAGING_OUT = "staging_out"
    DONE = "done"


@dataclass(frozen=True, kw_only=True)
class Journal:
    task_id: str
    attempt: int
    runtime: str
    phase: Phase
    executor: int = 0
    ref: str | None = None  # the runtime's ref of the executor that is running
    started_at: str | None = None  # when that executor started (ISO 8601)
    starting: bool = False  # its start was asked for, its ref not yet known
    executor_error: bool = False

    @staticmethod
    def path(attempt_dir: Path) -> Path:
        return attempt_dir / "journal.json"

    def save(self, attempt_dir: Path) -> None:
        target = self.path(attempt_dir)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, target)

    @classmethod
    def load(cls, attempt_dir: Path) -> Journal | None:
        try:
            data = json.loads(cls.path(attempt_dir).read_text())
        except (OSError, ValueError):
            return None
        return cls(**{**data, "phase": Phase(data["phase"])})
