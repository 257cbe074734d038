"""Local files in tasks: inputs and outputs given as paths on this machine.

Each local path is sent the cheapest way the hub can use it: as a file:// URL when it lies in a
directory the hub serves (its service-info lists ``file://<dir>`` storage), else through the
hub's file store. Then inputs are uploaded into a new file space before the task is submitted
(``hub://<space>/in/<n>/<name>``), outputs are pointed at ``hub://<space>/out/<n>/...`` and
downloaded back to the local paths once the task has ended, and the space is deleted.

A task submitted without waiting leaves a small record (the space, where each output goes) in
``DATA_DIR/cli/transfers`` so that `toolferry task wait` or `toolferry task download` can bring
the outputs back later.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from toolferry.cli.client import ClientError, TesClient
from toolferry.cli.output import CliError, err, warn
from toolferry.cli.render import last_attempt
from toolferry.domain.rules import has_wildcard
from toolferry.storage.base import StorageError
from toolferry.storage.file import replacing, walk_tree
from toolferry.storage.hubfiles import SCHEME, BadPath, clean_path, hub_url, parse_hub_url

__all__ = [
    "DOWNLOADED_STATES",
    "Checked",
    "LocalPath",
    "OutputTarget",
    "Records",
    "Staged",
    "bring_back",
    "check_local",
    "destinations_below",
    "discard",
    "download_to",
    "hub_file_dirs",
    "is_local",
    "local_paths_in",
    "local_paths_of_options",
    "recorded_destinations",
    "stage",
    "transfer_progress",
]

# Outputs are uploaded even after an executor error: they are what a user debugs with.
DOWNLOADED_STATES = ("COMPLETE", "EXECUTOR_ERROR")

Kind = Literal["inputs", "outputs"]


@dataclass(frozen=True, kw_only=True)
class LocalPath:
    """An input or output of a task document whose url is a path on this machine."""

    kind: Kind
    index: int
    label: str  # names it in messages: "--input" or "inputs[0].url"
    raw: str  # the path as given


@dataclass(frozen=True, kw_only=True)
class Checked:
    """A :class:`LocalPath` that makes sense: an input that exists, an output of a known shape."""

    local: LocalPath
    path: Path  # absolute, symlinks kept (an upload is named as the user named it)
    tree: bool  # a directory input, or an output that fills a directory (DIRECTORY, wildcard)


@dataclass(frozen=True, kw_only=True)
class OutputTarget:
    """Where one output comes back to: ``url`` (the hub:// URL the task uploads it to, a prefix
    of its files when ``tree``) → ``local`` (a file, or the directory the tree goes below)."""

    url: str
    local: str
    tree: bool


@dataclass(frozen=True, kw_only=True)
class Staged:
    """What :func:`stage` set up on the hub: a file space (if any was needed) and the outputs
    that come back from it."""

    space: str | None = None
    outputs: tuple[OutputTarget, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "outputs": [asdict(o) for o in self.outputs]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Staged:
        return cls(
            space=data.get("space"),
            outputs=tuple(OutputTarget(**o) for o in data.get("outputs") or ()),
        )


# -- finding and checking local paths (no hub needed) ------------------------------------------


def is_local(url: str) -> bool:
    """A path rather than a URL: it has no scheme."""
    return "://" not in url


def local_paths_of_options(inputs: Sequence[str], outputs: Sequence[str]) -> list[LocalPath]:
    """The local paths among `toolferry run`'s ``-i``/``-o`` ``PATH=URL`` values, indexed as
    :func:`~toolferry.cli.documents.build_task` numbers them."""
    found = []
    options: tuple[tuple[Kind, str, Sequence[str]], ...] = (
        ("inputs", "--input", inputs),
        ("outputs", "--output", outputs),
    )
    for kind, option, values in options:
        for index, value in enumerate(values):
            url = value.partition("=")[2]
            if is_local(url):
                found.append(LocalPath(kind=kind, index=index, label=option, raw=url))
    return found


def local_paths_in(document: Mapping[str, Any]) -> list[LocalPath]:
    """The inputs and outputs of a task document whose ``url`` is a local path."""
    found = []
    kinds: tuple[Kind, ...] = ("inputs", "outputs")
    for kind in kinds:
        items = document.get(kind)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
                continue
            if kind == "inputs" and item.get("content") is not None:
                continue  # content wins over url (TES)
            if is_local(item["url"]):
                label = f"{kind}[{index}].url"
                found.append(LocalPath(kind=kind, index=index, label=label, raw=item["url"]))
    return found


def check_local(document: Mapping[str, Any], local: Sequence[LocalPath]) -> list[Checked]:
    """Every local path checked before anything is uploaded or submitted: inputs must exist,
    and a ``type`` given in the document must match what is on disk. Raises CliError."""
    return [_check(document[item.kind][item.index], item) for item in local]


def _check(entry: Mapping[str, Any], local: LocalPath) -> Checked:
    if not local.raw:
        raise CliError(f"{local.label}: give a URL or a local path")
    path = Path(os.path.abspath(Path(local.raw).expanduser()))
    declared = entry.get("type")
    if local.kind == "inputs":
        if not path.exists():
            where = "" if Path(local.raw).is_absolute() else f" (in {Path.cwd()})"
            raise CliError(f"{local.label}: {local.raw} does not exist{where}")
        if not (path.is_file() or path.is_dir()):
            raise CliError(f"{local.label}: {local.raw} is neither a file nor a directory")
        tree = path.is_dir()
        if declared == "FILE" and tree:
            raise CliError(f"{local.label}: {local.raw} is a directory, but the input is a FILE")
        if declared == "DIRECTORY" and not tree:
            raise CliError(f"{local.label}: {local.raw} is a file, but the input is a DIRECTORY")
        return Checked(local=local, path=path, tree=tree)
    if has_wildcard(str(entry.get("path", ""))) or declared == "DIRECTORY":
        tree = True
    elif declared == "FILE":
        tree = False
    else:  # `run -o`: a local directory (an existing one, or PATH/) gets a DIRECTORY output
        tree = local.raw.endswith("/") or path.is_dir()
    if tree and path.exists() and not path.is_dir():
        raise CliError(f"{local.label}: {local.raw} is a file; this output needs a directory")
    if not tree and path.is_dir():
        raise CliError(f"{local.label}: {local.raw} is a directory, but the output is a FILE")
    return Checked(local=local, path=path, tree=tree)


# -- staging: decide per path, upload inputs -----------------------------------------------------


def hub_file_dirs(service_info: Mapping[str, Any]) -> list[Path]:
    """The directories a hub reads and writes as file:// (its service-info ``storage``)."""
    dirs = []
    for entry in service_info.get("storage") or ():
        if isinstance(entry, str) and entry.startswith("file://"):
            path = unquote(urlsplit(entry).path)
            if path.startswith("/"):
                dirs.append(Path(os.path.realpath(path)))
    return dirs


def _served(path: Path, dirs: Sequence[Path]) -> bool:
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(d) for d in dirs)


def stage(
    client: TesClient, document: Mapping[str, Any], checked: Sequence[Checked]
) -> tuple[dict[str, Any], Staged]:
    """The task document with every local path replaced by a URL the hub can use, after
    uploading the inputs that need it; and what to bring back once the task has ended."""
    task = copy.deepcopy(dict(document))
    if not checked:
        return task, Staged()
    dirs = hub_file_dirs(client.service_info())
    remote: list[tuple[Checked, dict[str, Any]]] = []
    for item in checked:
        entry = task[item.local.kind][item.local.index]
        wildcard = has_wildcard(str(entry.get("path", "")))
        if item.tree and "type" not in entry and not wildcard:
            entry["type"] = "DIRECTORY"
        if _served(item.path, dirs):
            entry["url"] = item.path.resolve().as_uri()
        else:
            remote.append((item, entry))
    if not remote:
        return task, Staged()

    try:
        space = client.create_space()
    except ClientError as exc:
        if exc.status not in (404, 405):
            raise
        first = remote[0][0].local
        served = ", ".join(str(d) for d in dirs) or "none"
        raise CliError(
            f"{first.label}: {first.raw} is outside the directories the hub serves as file:// "
            f"({served}), and the hub has no file store to upload to (HTTP {exc.status}); "
            "give a URL instead"
        ) from None
    try:
        uploads: list[tuple[str, Checked]] = []
        targets = []
        for item, entry in remote:
            n = item.local.index
            if item.local.kind == "inputs":
                rel = f"in/{n}/{item.path.name or 'input'}"
                uploads.append((rel, item))
            elif item.tree:
                rel = f"out/{n}"
            else:
                rel = f"out/{n}/{item.path.name}"
            entry["url"] = hub_url(space, rel)
            if item.local.kind == "outputs":
                targets.append(OutputTarget(url=entry["url"], local=str(item.path), tree=item.tree))
        _upload(client, space, uploads)
    except BaseException:
        discard(client, Staged(space=space))
        raise
    return task, Staged(space=space, outputs=tuple(targets))


def _upload(client: TesClient, space: str, uploads: Sequence[tuple[str, Checked]]) -> None:
    files: list[tuple[str, Path, str]] = []  # (rel in space, source, label)
    empty_dirs: list[str] = []
    for rel, item in uploads:
        if not item.tree:
            files.append((rel, item.path, item.local.label))
            continue
        try:
            entries = list(walk_tree(item.local.raw, item.path, may_follow=lambda _: True))
        except (StorageError, OSError) as exc:
            raise CliError(f"{item.local.label}: {exc}") from None
        parents = {str(sub.parent) for sub, _, _ in entries}
        if not entries:
            empty_dirs.append(rel)
        for sub, source, is_dir in entries:
            if not is_dir:
                files.append((f"{rel}/{sub}", source, item.local.label))
            elif str(sub) not in parents:
                empty_dirs.append(f"{rel}/{sub}")
    try:
        total = sum(source.stat().st_size for _, source, _ in files)
        with transfer_progress("uploading", total) as advance:
            for rel in empty_dirs:
                client.make_dir(space, rel)
            for rel, source, label in files:
                try:
                    client.upload(space, rel, source, advance)
                except OSError as exc:
                    raise CliError(f"{label}: cannot read {source}: {exc.strerror}") from None
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if files or empty_dirs:
        err().print(
            f"[dim]uploaded {_count(len(files))} ({decimal(total)}) to {escape(hub_url(space))}[/]",
            soft_wrap=True,
        )


def discard(client: TesClient, staged: Staged) -> None:
    """Delete the file space of ``staged``, if any; a failure is only a warning."""
    if staged.space is None:
        return
    try:
        client.delete_space(staged.space)
    except ClientError as exc:
        if exc.status != 404:
            warn(f"could not delete the file space {hub_url(staged.space)} on the hub: {exc}")


# -- bringing outputs back -----------------------------------------------------------------------


def bring_back(
    client: TesClient, task: Mapping[str, Any], staged: Staged, records: Records
) -> dict[str, Any]:
    """Once the task has ended: download its outputs (when it ended COMPLETE or EXECUTOR_ERROR)
    and delete its file space. Returns the task with each downloaded output's URL in its
    last attempt replaced by the local path it went to.

    If a download fails, the space and the record stay, so `toolferry task download` can
    retry; raises CliError saying so.
    """
    if staged.space is None:
        return dict(task)
    fetched: dict[str, Path] = {}
    task_id = str(task.get("id", ""))
    if task.get("state") in DOWNLOADED_STATES and staged.outputs:
        try:
            fetched = download_to(client, recorded_destinations(task, staged))
        except (ClientError, CliError, OSError) as exc:
            records.save(task_id, staged)
            raise CliError(
                f"downloading the outputs of task {task_id} failed: {exc}; they stay on the hub "
                f"until `toolferry task download {task_id}` fetches them"
            ) from None
    discard(client, staged)
    records.drop(task_id)
    return _localized(task, fetched)


Download = tuple[str, Path, int]  # (hub:// URL, local path, size in bytes)


def recorded_destinations(task: Mapping[str, Any], staged: Staged) -> list[Download]:
    """What to download of the logged outputs that belong to one of ``staged``'s."""
    found = []
    for url, _, size in _logged(task):
        for target in staged.outputs:
            base = target.url.rstrip("/")
            if not target.tree and url == target.url:
                found.append((url, Path(target.local), size))
                break
            if target.tree and url.startswith(base + "/"):
                rel = _safe(unquote(url[len(base) + 1 :]), url)
                found.append((url, Path(target.local) / rel, size))
                break
    return found


def destinations_below(task: Mapping[str, Any], dest: Path) -> list[Download]:
    """What to download of every logged hub:// output: each to its container path below
    ``dest`` (``/out/r.txt`` → ``DEST/out/r.txt``)."""
    return [
        (url, dest / _safe(path.lstrip("/"), url), size)
        for url, path, size in _logged(task)
        if urlsplit(url).scheme == SCHEME
    ]


def _logged(task: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(url, container path, size) of each output file logged by the task's last attempt."""
    attempt = last_attempt(task) or {}
    found = []
    for item in attempt.get("outputs") or ():
        try:
            size = int(item.get("size_bytes") or 0)
        except (TypeError, ValueError):
            size = 0
        found.append((str(item.get("url", "")), str(item.get("path", "")), size))
    return found


def _safe(rel: str, url: str) -> PurePosixPath:
    """``rel`` if it stays below the folder it is joined to; the hub could be anyone."""
    try:
        return clean_path(rel)
    except BadPath as exc:
        raise CliError(f"the hub logged an output {url} whose path {exc}") from None


def download_to(client: TesClient, plan: Sequence[Download]) -> dict[str, Path]:
    """Download each hub:// URL of ``plan`` to its local path, with a progress bar; returns
    where each URL went."""
    total = sum(size for _, _, size in plan)
    fetched = {}
    with transfer_progress("downloading", total) as advance:
        for url, dest, _ in plan:
            try:
                space, rel = parse_hub_url(url)
            except BadPath as exc:
                raise CliError(f"the hub logged an output {url} that {exc}") from None
            client.download(space, rel, dest, advance)
            fetched[url] = dest
    if plan:
        err().print(f"[dim]downloaded {_count(len(plan))} ({decimal(total)})[/]", soft_wrap=True)
    return fetched


def _localized(task: Mapping[str, Any], fetched: Mapping[str, Path]) -> dict[str, Any]:
    shown = copy.deepcopy(dict(task))
    attempt = last_attempt(shown)
    if attempt is not None:
        for item in attempt.get("outputs") or ():
            if item.get("url") in fetched:
                item["url"] = str(fetched[item["url"]])
    return shown


# -- progress and records ------------------------------------------------------------------------


@contextmanager
def transfer_progress(verb: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient progress bar (bytes, speed, time left) on stderr, when it is a terminal;
    yields the function to call with each number of bytes moved."""
    console = err()
    progress = Progress(
        TextColumn(verb),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        bar = progress.add_task(verb, total=total)
        yield lambda n: progress.advance(bar, n)


def _count(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


class Records:
    """Per task submitted from here with files on the hub: its :class:`Staged`, kept until
    its outputs have come back (``DATA_DIR/cli/transfers/<task id>.json``)."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "cli" / "transfers"

    def _file(self, task_id: str) -> Path:
        return self.folder / f"{quote(task_id, safe='')}.json"

    def save(self, task_id: str, staged: Staged) -> None:
        if staged.space is None:
            return
        with replacing(self._file(task_id)) as tmp:
            tmp.write_text(json.dumps(staged.to_json()), encoding="utf-8")

    def load(self, task_id: str) -> Staged | None:
        try:
            data = json.loads(self._file(task_id).read_text(encoding="utf-8"))
            return Staged.from_json(data)
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def drop(self, task_id: str) -> None:
        self._file(task_id).unlink(missing_ok=True)
