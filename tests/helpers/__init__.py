"""Helpers shared by the test suites: real services (``services``) and where artifacts go."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.services import REPO_ROOT

__all__ = ["REPO_ROOT", "artifacts_dir"]


def artifacts_dir() -> Path:
    """A directory for files worth keeping after the run (logs, screenshots); CI keeps it.

    ``scripts/test.sh`` points TOOLFERRY_TEST_ARTIFACTS at ``test-artifacts/``.
    """
    path = Path(os.environ.get("TOOLFERRY_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
