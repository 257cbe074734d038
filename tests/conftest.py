"""Global test setup: no test reads the user's real toolferry settings or data directory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Shared helpers are imported as `tests.helpers`; the pytest console script, unlike
# `python -m pytest`, does not put the checkout on sys.path.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

# TOOLFERRY_TEST_* variables belong to the test harness (e.g. TOOLFERRY_TEST_ARTIFACTS), not to
# the settings, so they survive the scrub below.
_HARNESS_PREFIX = "TOOLFERRY_TEST_"


@pytest.fixture(scope="session", autouse=True)
def _toolferry_test_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Points TOOLFERRY_DATA_DIR (and XDG_DATA_HOME) at fresh directories and unsets every other
    TOOLFERRY_* setting; a test that needs a setting sets it with ``monkeypatch.setenv``."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("TOOLFERRY_") and not name.startswith(_HARNESS_PREFIX):
                mp.delenv(name)
        data_dir = tmp_path_factory.mktemp("toolferry-data")
        mp.setenv("TOOLFERRY_DATA_DIR", str(data_dir))
        # The fallback when a test unsets TOOLFERRY_DATA_DIR to exercise the default.
        mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        yield data_dir
