"""Where a task attempt keeps its files on the host, and which directories executors see.

Every container path ``/p`` of a task lives at ``ROOT/p`` on the host (ROOT is the attempt's
``root`` folder), so inputs, outputs, volumes and stdout/stderr files written by the host and by
the executors agree.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from toolferry.domain.rules import has_wildcard
from toolferry.domain.task import FileType, TaskSpec
from toolferry.runtimes.base import Mount


def mount_dir(path: str) -> str:
    """The longest leading directory of ``path`` without wildcards."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if has_wildcard(part):
            return "/".join(parts[:i]) or "/"
    return posixpath.dirname(path) or "/"


def _inside(path: str, directory: str) -> bool:
    return directory == "/" or path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass(frozen=True)
class Layout:
    attempt_dir: Path

    @property
    def root(self) -> Path:
        return self.attempt_dir / "root"

    @property
    def meta(self) -> Path:
        """Executors' default stdout/stderr files and the runtime's state files (one folder: each
        folder costs a mkdir and an rmdir per task)."""
        return self.attempt_dir / "meta"

    def host_path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def confines(self, path: Path) -> bool:
        """Whether ``path`` (resolving symlinks) stays inside the attempt's folder."""
        real = os.path.realpath(path)
        top = os.path.realpath(self.attempt_dir)
        return real == top or real.startswith(top + os.sep)

    def stdout(self, spec: TaskSpec, index: int) -> Path:
        ex = spec.executors[index]
        return self.host_path(ex.stdout) if ex.stdout else self.meta / f"{index}.stdout"

    def stderr(self, spec: TaskSpec, index: int) -> Path:
        ex = spec.executors[index]
        return self.host_path(ex.stderr) if ex.stderr else self.meta / f"{index}.stderr"

    def mounts(self, spec: TaskSpec) -> tuple[Mount, ...]:
        """Writable: volumes, output locations, stdout/stderr folders; read-only: every input."""
        writable: set[str] = set(spec.volumes)
        for out in spec.outputs:
            if has_wildcard(out.path):
                writable.add(mount_dir(out.path))
            elif out.type is FileType.DIRECTORY:
                writable.add(out.path)
            else:
                writable.add(posixpath.dirname(out.path) or "/")
        for ex in spec.executors:
            for path in (ex.stdout, ex.stderr):
                if path:
                    writable.add(posixpath.dirname(path) or "/")
        writable = {p.rstrip("/") or "/" for p in writable}
        top = sorted(d for d in writable if not any(o != d and _inside(d, o) for o in writable))
        # Every input, even one inside a writable folder: its file is a hard link into the
        # site's input cache, which no executor may change.
        readonly = sorted(i.path.rstrip("/") or "/" for i in spec.inputs)
        mounts = [Mount(host=self.host_path(d), container=d) for d in top]
        mounts += [Mount(host=self.host_path(p), container=p, read_only=True) for p in readonly]
        return tuple(sorted(mounts, key=lambda m: (m.container.count("/"), m.container)))

    def create(self, spec: TaskSpec) -> None:
        """Make the folders every mount and log file needs (input files are staged later)."""
        for directory in (self.root, self.meta):
            directory.mkdir(parents=True, exist_ok=True)
        input_paths = {i.path for i in spec.inputs}
        for mount in self.mounts(spec):
            if mount.container not in input_paths:
                mount.host.mkdir(parents=True, exist_ok=True)
        for volume in spec.volumes:  # a volume inside another is no mount of its own
            self.host_path(volume).mkdir(parents=True, exist_ok=True)
