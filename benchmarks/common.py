"""Shared pieces of the benchmarks: a served hub in a scratch data dir, and waiting on tasks."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from toolferry.config import Settings
from toolferry.hub import serve_embedded

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


@contextmanager
def hub_client(**settings: Any) -> Iterator[httpx.Client]:
    """An HTTP client for a fresh embedded hub (TES 1.1 base URL)."""
    with tempfile.TemporaryDirectory(prefix="toolferry-bench-") as tmp:
        conf = Settings(data_dir=Path(tmp), **settings)
        with (
            serve_embedded(conf) as (_hub, url),
            httpx.Client(base_url=f"{url}/ga4gh/tes/v1", timeout=60) as client,
        ):
            yield client


def wait(client: httpx.Client, task_id: str, poll: float = 0.002) -> dict[str, Any]:
    while True:
        task: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
        if task["state"] in TERMINAL:
            return task
        time.sleep(poll)
