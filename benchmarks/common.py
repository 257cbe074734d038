"""Shared pieces of the benchmarks: a hub served by `toolferry server` in its own process (as
users run it), in a scratch data dir, and waiting on tasks over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}
TOOLFERRY = str(Path(sys.executable).with_name("toolferry"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def hub_client(**settings: str) -> Iterator[httpx.Client]:
    """An HTTP client (TES 1.1 base URL) for a fresh hub running in a separate process."""
    with tempfile.TemporaryDirectory(prefix="toolferry-bench-") as tmp:
        port = _free_port()
        env = {**os.environ, "TOOLFERRY_DATA_DIR": tmp}
        env.update({f"TOOLFERRY_{k.upper()}": v for k, v in settings.items()})
        log = (Path(tmp) / "server.log").open("wb")
        server = subprocess.Popen(
            [TOOLFERRY, "server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=f"{base}/ga4gh/tes/v1", timeout=60) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"{base}/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the hub did not start; see {log.name}")
                    time.sleep(0.05)
                yield client
        finally:
            server.terminate()
            server.wait(30)
            log.close()


def wait(client: httpx.Client, task_id: str, poll: float = 0.002) -> dict[str, Any]:
    while True:
        task: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
        if task["state"] in TERMINAL:
            return task
        time.sleep(poll)
