"""One hub process per data directory: an exclusive lock, and a note saying where that hub is.

Two hubs on one data dir would both run the local site's recovery and each run the same
task. The lock (``hub.lock``, flock: released by the kernel when the process dies) keeps a
second one out; ``hub.json`` (mode 0600: it holds the operator secret) tells CLI commands on
this machine which hub to talk to.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any


class SiteBusy(Exception):
    """Another process holds the data directory's lock."""


def running_hub_info(data_dir: Path) -> dict[str, Any] | None:
    """What the hub serving ``data_dir`` wrote about itself, if anything (not verified)."""
    try:
        info = json.loads((data_dir / "hub.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


class SiteLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`SiteBusy` naming the holder."""
        if self._handle is not None:
            return
        handle = (self.data_dir / "hub.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            info = running_hub_info(self.data_dir) or {}
            where = f" at {info['url']}" if "url" in info else ""
            pid = f" (pid {info['pid']})" if "pid" in info else ""
            raise SiteBusy(
                f"another hub{pid} runs on {self.data_dir}{where}; talk to it (TOOLFERRY_URL) "
                "or use another TOOLFERRY_DATA_DIR"
            ) from None
        self._handle = handle

    def announce(self, url: str, secret: str) -> None:
        """Write hub.json for CLI commands on this machine (readable by the owner only)."""
        target = self.data_dir / "hub.json"
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"url": url, "pid": os.getpid(), "secret": secret}, fh)
        os.replace(tmp, target)

    def release(self) -> None:
        if self._handle is None:
            return
        info = running_hub_info(self.data_dir)
        if info and info.get("pid") == os.getpid():
            (self.data_dir / "hub.json").unlink(missing_ok=True)
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None
