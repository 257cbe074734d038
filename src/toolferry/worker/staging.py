"""Moving one attempt's data: inputs in (through the site's cache), outputs out, in parallel.

Inputs come from the shared input cache as hard links that the runtime mounts read-only, so
no executor can change what another task sees. Every input and output is recorded with its
sha256. Failures name the input or output, its URL (credentials redacted) and the cause.
"""

from __future__ import annotations

import glob
import hashlib
import os
import posixpath
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import dataclass
from pathlib import Path

from toolferry.domain.events import Event
from toolferry.domain.rules import has_wildcard
from toolferry.domain.task import FileType, Input, Task
from toolferry.storage.base import Credential, LocalStorage, StorageError
from toolferry.storage.integrity import sha256_file, tree_digest
from toolferry.storage.redact import redact
from toolferry.worker.layout import Layout
from toolferry.worker.transfers import CredentialLookup, Transfers, scrub

__all__ = ["OutputSource", "StagingFailed", "fetch_inputs", "find_outputs", "upload_outputs"]


class StagingFailed(Exception):
    """An input could not be staged; the message is shown to the user."""


@dataclass(frozen=True, kw_only=True)
class OutputSource:
    index: int
    host: Path
    container: str
    url: str
    is_dir: bool


def _credential(credentials: CredentialLookup, url: str, what: str) -> Credential | None:
    try:
        return credentials(url)
    except Exception as exc:  # e.g. a stored secret that the hub's key cannot open
        raise StagingFailed(f"{what}: the storage credentials cannot be used: {exc}") from exc


def _fetch_one(
    task_id: str,
    index: int,
    inp: Input,
    layout: Layout,
    transfers: Transfers,
    credentials: CredentialLookup,
) -> Event:
    dest = layout.host_path(inp.path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if inp.content is not None:
        data = inp.content.encode("utf-8")
        dest.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        return Event.input_staged(task_id, "", inp.path, len(data), digest, cached=False)
    assert inp.url is not None  # guaranteed by the submission rules
    directory = inp.type is FileType.DIRECTORY
    storage = transfers.router.for_url(inp.url)
    if inp.streamable and isinstance(storage, LocalStorage):
        return _in_place(task_id, index, inp, dest, storage)
    credential = _credential(credentials, inp.url, f"input {index} ({inp.path})")
    try:
        staged = transfers.cache.stage(
            inp.url, dest, directory=directory, router=transfers.router, credential=credential
        )
    except StorageError as exc:
        message = scrub(str(exc), credential)
        raise StagingFailed(f"input {index} ({inp.path}) could not be staged: {message}") from exc
    return Event.input_staged(
        task_id,
        redact(inp.url),
        inp.path,
        staged.size,
        staged.sha256,
        cached=staged.hit,
        directory=directory,
    )


def _in_place(task_id: str, index: int, inp: Input, dest: Path, storage: LocalStorage) -> Event:
    """A ``streamable`` input on this host: a link to it, which the runtime mounts read-only,
    so the executor reads it where it lies (no copy, nothing in the cache)."""
    assert inp.url is not None
    directory = inp.type is FileType.DIRECTORY
    what = f"input {index} ({inp.path})"
    try:
        source = storage.local_path(inp.url)
    except StorageError as exc:
        raise StagingFailed(f"{what} could not be staged: {exc}") from exc
    if source.is_dir() != directory:
        kind = "DIRECTORY" if source.is_dir() else "FILE"
        raise StagingFailed(f"{what}: {redact(inp.url)} is a {kind.lower()}; declare it a {kind}")
    dest.symlink_to(source)
    if directory:
        digest, size, _ = tree_digest(source)
    else:
        digest, size = sha256_file(source), source.stat().st_size
    return Event.input_staged(
        task_id, redact(inp.url), inp.path, size, digest, cached=False, directory=directory
    )


def fetch_inputs(
    task: Task,
    layout: Layout,
    transfers: Transfers,
    credentials: CredentialLookup,
    *,
    canceled: threading.Event,
) -> list[Event]:
    """Stage every input (parallel, within the site's bound); one INPUT_STAGED event each, in
    input order. Returns early, leaving downloads to finish unseen, when ``canceled`` is set."""
    futures: list[Future[Event]] = [
        transfers.pool.submit(_fetch_one, task.id, i, inp, layout, transfers, credentials)
        for i, inp in enumerate(task.spec.inputs)
    ]
    pending: set[Future[Event]] = set(futures)
    while pending and not canceled.is_set():
        _, pending = wait(pending, timeout=0.05, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f.done() and f.exception() is not None]
        if failed:
            for future in pending:
                future.cancel()
            # The first failing input in task order, so the message does not depend on timing.
            raise failed[0].exception()  # type: ignore[misc]
    if canceled.is_set():
        for future in futures:
            future.cancel()
        return []
    return [f.result() for f in futures]


def find_outputs(task: Task, layout: Layout) -> tuple[list[OutputSource], list[str]]:
    """Every output to upload, and a message for each declared output that matched nothing."""
    found: list[OutputSource] = []
    missing: list[str] = []
    for i, out in enumerate(task.spec.outputs):
        kind = "directory" if out.type is FileType.DIRECTORY else "file"
        if has_wildcard(out.path):
            pattern = glob.escape(str(layout.root)) + out.path
            prefix = out.path_prefix or "/"
            matches = sorted(glob.glob(pattern))
            for match in matches:
                container = "/" + os.path.relpath(match, layout.root)
                rel = posixpath.relpath(container, prefix)
                url = out.url.rstrip("/") + "/" + rel
                found.append(
                    OutputSource(
                        index=i,
                        host=Path(match),
                        container=container,
                        url=url,
                        is_dir=os.path.isdir(match),
                    )
                )
            if not matches:
                missing.append(f"output {i}: {out.path} matched no file or directory in the task")
            continue
        host = layout.host_path(out.path)
        is_dir = out.type is FileType.DIRECTORY
        if (is_dir and host.is_dir()) or (not is_dir and host.is_file()):
            found.append(
                OutputSource(index=i, host=host, container=out.path, url=out.url, is_dir=is_dir)
            )
        elif host.is_dir() or host.is_file():
            other = "directory" if host.is_dir() else "file"
            missing.append(f"output {i}: {out.path} is a {other}, but the output is a {kind}")
        else:
            missing.append(f"output {i}: {out.path} matched no {kind} in the task")
    return found, missing


def _upload_one(
    task_id: str,
    source: OutputSource,
    layout: Layout,
    transfers: Transfers,
    credentials: CredentialLookup,
) -> list[Event]:
    if not layout.confines(source.host):
        # A symlink made inside the task must not upload a file of the host.
        raise StagingFailed(
            f"output {source.index}: {source.container} links outside the task's files; "
            "not uploaded"
        )
    credential = _credential(credentials, source.url, f"output {source.index} ({source.container})")
    try:
        uploaded = transfers.router.put(
            source.host, source.url, directory=source.is_dir, credential=credential
        )
    except StorageError as exc:
        message = scrub(str(exc), credential)
        raise StagingFailed(
            f"output {source.index} ({source.container}) could not be uploaded: {message}"
        ) from exc
    events = []
    for item in uploaded:
        path = source.container
        if source.is_dir:
            path = posixpath.join(source.container, os.path.relpath(item.path, source.host))
        # What was uploaded is what the executors left: nothing writes the file any more.
        digest = sha256_file(item.path)
        events.append(Event.output_uploaded(task_id, redact(item.url), path, item.size, digest))
    return events


def upload_outputs(
    task: Task,
    sources: list[OutputSource],
    layout: Layout,
    transfers: Transfers,
    credentials: CredentialLookup,
    *,
    emit: Callable[..., None],
    already: set[str],
) -> list[str]:
    """Upload every source (parallel, within the site's bound), emitting OUTPUT_UPLOADED events
    in source order; ``already`` holds URLs recorded before a restart. Returns the problems."""
    futures = [
        transfers.pool.submit(_upload_one, task.id, source, layout, transfers, credentials)
        for source in sources
    ]
    problems: list[str] = []
    for future in futures:
        try:
            events = future.result()
        except StagingFailed as exc:
            problems.append(str(exc))
            emit(Event.system_log(task.id, str(exc)))
            continue
        fresh = [e for e in events if e.data["url"] not in already]
        if fresh:
            emit(*fresh)
    return problems
