"""`toolferry cache ls|prune`: the site's shared input cache, inspected and trimmed in place.

These are operator commands for a site's machine: they work on the cache directory named by
the settings (`cache_dir`, default DATA_DIR/cache), not through a hub, and are safe to run
while tasks stage inputs (the cache coordinates through file locks).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.output import CliError, err, out, print_json
from toolferry.cli.render import format_time
from toolferry.cli.session import deps
from toolferry.config import Settings

if TYPE_CHECKING:  # imported where used: the storage stack costs ~0.3 s at every CLI start
    from toolferry.storage.cache import CacheEntry, InputCache

__all__ = ["app", "format_size", "parse_duration", "parse_size"]

app = typer.Typer(
    name="cache",
    help=(
        "Inspect and trim this machine's shared input cache.\n\n"
        "Inputs are downloaded once into the cache (`cache_dir`, default DATA_DIR/cache) and "
        "hard-linked into each task that needs them; an entry is reused while its source is "
        "unchanged (same size and modification time or ETag, or the same `#sha256=` "
        "checksum). When the cache grows past `cache_max_gb`, the least recently used "
        "entries go first."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` or a sum such as ``1d12h``; ``ValueError`` otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30m, 12h, 7d or 1d12h")
    return timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def parse_size(text: str) -> int:
    """Bytes from ``0``, ``500MB`` (powers of 1000) or ``5GiB`` (powers of 1024)."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or match[2] not in _SIZE_UNITS:
        raise ValueError(
            f"{text!r} is not a size; write e.g. 0, 500MB, 5GB or 5GiB "
            "(B, kB, MB, GB, TB count in 1000s; KiB, MiB, GiB, TiB in 1024s)"
        )
    return int(float(match[1]) * _SIZE_UNITS[match[2]])


def format_size(size: int) -> str:
    """``1.5 GiB``, ``340 KiB``, ``12 B``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _open(settings: Settings) -> InputCache | None:
    """The cache of ``settings``, or None when it was never created (nothing cached yet)."""
    root = settings.effective_cache_dir
    if not root.is_dir():
        return None
    try:
        from toolferry.storage.cache import InputCache

        return InputCache(root, max_bytes=settings.cache_max_bytes)
    except OSError as exc:
        raise CliError(f"cannot open the input cache at {root}: {exc}") from exc


def _entry_json(entry: CacheEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "kind": entry.kind,
        "size": entry.size,
        "sha256": entry.sha256,
        "url": entry.url,
        "created": entry.created.isoformat(),
        "last_used": entry.last_used.isoformat(),
        "hits": entry.hits,
    }


def _url_text(entry: CacheEntry) -> Text:
    if entry.url is None:
        return Text("(no validators: reused only for identical content)", style="dim")
    return Text(entry.url)


def _summary(used: int, cap: int, count: int, settings: Settings) -> str:
    noun = "entry" if count == 1 else "entries"
    return (
        f"{count} {noun}, {format_size(used)} of {format_size(cap)} "
        f"(cache_max_gb = {settings.cache_max_gb:g}) in {settings.effective_cache_dir}"
    )


@app.command("ls")
def list_entries(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (sizes in bytes, times in UTC).")
    ] = False,
) -> None:
    """List what the input cache holds, most recently used first.

    Each row is an input some task fetched: its key, whether it is a file or a directory,
    its size and sha256 (of the file; of the whole tree for a directory), when a task last
    used it, how often it was served without a download, and its URL (credentials hidden).
    Rows without a key hold content whose source gave no validators: only a later input with
    identical content can reuse it, and the next prune removes it.
    """
    settings = deps(ctx).settings()
    cache = _open(settings)
    cap = settings.cache_max_bytes
    entries = cache.entries() if cache else []
    used = cache.usage() if cache else 0
    if as_json:
        print_json(
            {
                "cache_dir": str(settings.effective_cache_dir),
                "usage": used,
                "max_bytes": cap,
                "entries": [_entry_json(e) for e in entries],
            }
        )
        return
    if not entries:
        err().print(
            f"[dim]the input cache at {escape(str(settings.effective_cache_dir))} is empty[/]"
        )
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("KEY", no_wrap=True)
    table.add_column("KIND", no_wrap=True)
    table.add_column("SIZE", no_wrap=True, justify="right")
    table.add_column("SHA256", no_wrap=True)
    table.add_column("LAST USED", no_wrap=True)
    table.add_column("HITS", no_wrap=True, justify="right")
    table.add_column("URL", overflow="fold")
    for e in entries:
        table.add_row(
            Text(e.key[:12]) if e.key else Text("-", style="dim"),
            e.kind,
            format_size(e.size),
            Text(e.sha256[:12]),
            format_time(e.last_used.isoformat()),
            str(e.hits),
            _url_text(e),
        )
    console = out()
    console.print(table)
    style = "yellow" if used > cap else "dim"
    console.print(f"\n[{style}]{escape(_summary(used, cap, len(entries), settings))}[/]")


@app.command()
def prune(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Empty the cache completely.")] = False,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Remove entries no task has used for this long: 30m, 12h, 7d, 2w, 1d12h.",
            show_default=False,
        ),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size",
            metavar="SIZE",
            help=(
                "Remove the least recently used entries until at most SIZE remains: "
                "500MB, 5GB, 5GiB, or 0 for nothing."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Remove entries from the input cache and print what went.

    Without options, shrink the cache to its configured cap (`cache_max_gb`), least recently
    used entries first, as tasks do after each download. `--older-than` and `--max-size`
    can be combined. Content no entry refers to any more is always removed.

    Safe while tasks run: an input already staged keeps its own link to the content, so
    pruning never breaks a running task (its disk space returns when the task ends).
    """
    age = size = None
    try:
        if older_than is not None:
            age = parse_duration(older_than)
    except ValueError as exc:
        raise CliError(f"--older-than: {exc}") from None
    try:
        if max_size is not None:
            size = parse_size(max_size)
    except ValueError as exc:
        raise CliError(f"--max-size: {exc}") from None
    if everything and (age is not None or size is not None):
        raise CliError("--all removes everything; it cannot be combined with other options")
    settings = deps(ctx).settings()
    cache = _open(settings)
    if cache is None:
        err().print(
            f"[dim]nothing to prune: the input cache at "
            f"{escape(str(settings.effective_cache_dir))} is empty[/]"
        )
        return
    try:
        result = cache.prune(max_bytes=size, older_than=age, everything=everything)
    except OSError as exc:
        raise CliError(f"cannot prune the input cache at {cache.root}: {exc}") from exc
    console = out()
    for e in result.removed:
        label = e.key[:12] if e.key else "-"
        console.print(
            Text.assemble(
                "removed ",
                (label, "bold"),
                f" {e.kind} {format_size(e.size)} ",
                _url_text(e),
            ),
            soft_wrap=True,
        )
    left = cache.usage()
    cap = settings.cache_max_bytes
    if result.removed:
        noun = "entry" if len(result.removed) == 1 else "entries"
        console.print(
            f"removed {len(result.removed)} {noun}, freed {format_size(result.freed)}; "
            f"{format_size(left)} left (cap {format_size(cap)})",
            soft_wrap=True,
        )
    else:
        console.print(
            f"nothing to remove; {format_size(left)} in use (cap {format_size(cap)})",
            soft_wrap=True,
        )
