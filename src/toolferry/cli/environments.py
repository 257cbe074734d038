"""`toolferry env ...`: the environment catalogue from the command line.

Every command talks to the hub's REST API (`/api/v1/environments`), so what it shows and
refuses is what any client sees. Versions are named ``NAME:VERSION``; ``NAME`` alone means the
latest version you may read.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.client import TesClient
from toolferry.cli.output import CliError, err, out, print_json
from toolferry.cli.render import format_time
from toolferry.cli.session import session

__all__ = ["app", "split_ref"]

app = typer.Typer(
    name="env",
    help=(
        "The environment catalogue: publish, import, find, match and export research "
        "environments (container images, recipes, VM disks, Apptainer images).\n\n"
        "A version is named NAME:VERSION (e.g. lab/align:2); NAME alone is the latest one you "
        "may read. Tasks run a catalogue entry when an executor's image is "
        "`catalogue:NAME:VERSION`."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_REF = re.compile(r"(?P<name>[^:@\s]+)(?::(?P<version>[1-9][0-9]*))?")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RefArg = Annotated[str, typer.Argument(metavar="NAME[:VERSION]", help="e.g. lab/align:2")]
VersionArg = Annotated[str, typer.Argument(metavar="NAME:VERSION", help="e.g. lab/align:2")]


def split_ref(text: str, *, need_version: bool = False) -> tuple[str, int | None]:
    """``"lab/align:2"`` → ``("lab/align", 2)``; ``"lab/align"`` → ``("lab/align", None)``."""
    match = _REF.fullmatch(text.strip())
    if not match:
        raise CliError(f"{text!r} is not NAME or NAME:VERSION (e.g. lab/align:2)")
    version = match["version"]
    if need_version and version is None:
        raise CliError(f"{text!r} names no version; write NAME:VERSION (e.g. {text}:1)")
    return match["name"], int(version) if version else None


def env_path(name: str, version: int | None = None, suffix: str = "") -> str:
    path = f"environments/{quote(name, safe='/')}"
    if version is not None:
        path += f"/versions/{version}"
    return path + suffix


def _read_document(source: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{source} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CliError(f"{source} must hold one JSON object (an environment)")
    return document


def _summary_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("NAME:VERSION", "KIND", "TITLE", "STATUS", "REVIEW", "RATING", "UPDATED"):
        table.add_column(column, overflow="fold", no_wrap=column == "NAME:VERSION")
    for e in entries:
        ratings = e.get("ratings") or []
        rating = f"{sum(ratings) / len(ratings):.1f} ({len(ratings)})" if ratings else "-"
        table.add_row(
            Text(f"{e.get('name')}:{e.get('version')}"),
            Text(str(e.get("kind", ""))),
            Text(str((e.get("classification") or {}).get("title", ""))),
            Text(str(e.get("status", ""))),
            Text(str(e.get("review", ""))),
            Text(rating),
            Text(format_time(e.get("updated"))),
        )
    return table


def show_entry(entry: dict[str, Any]) -> None:
    """A version as a readable block: identity, bookkeeping, then its classification."""
    lines = [
        f"[bold]{escape(str(entry.get('name')))}:{entry.get('version')}[/]  "
        f"{escape(str(entry.get('kind')))}  {escape(str(entry.get('digest')))}",
    ]
    for key in ("status", "review", "owner_id", "group_id", "permissions", "base"):
        if entry.get(key) is not None:
            lines.append(f"  {key}: {escape(str(entry[key]))}")
    lines.append(
        f"  exports: {entry.get('total_exports', 0)}  "
        f"active deployments: {entry.get('active_deployments', 0)}  "
        f"ratings: {entry.get('ratings') or '-'}"
    )
    lines.append(f"  published: {format_time(entry.get('created'))}")
    for section in ("classification", "content", "interface"):
        body = entry.get(section)
        if not body:
            continue
        lines.append(f"[bold]{section}[/]")
        for key, value in body.items():
            if value in (None, [], ""):
                continue
            shown = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"  {key}: {escape(shown)}")
    out().print("\n".join(lines), soft_wrap=True)


@app.command(no_args_is_help=True)
def register(
    ctx: typer.Context,
    document: Annotated[
        str, typer.Argument(metavar="FILE", help="JSON file of the environment, or - for stdin.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Publish a version from a JSON document (name, kind, digest, classification, interface).

    A new name starts at version 1; a known name gets the next version, based on the latest.
    A published version never changes: publishing it again is refused.

    **Example**

        toolferry env register align.json
    """
    body = _read_document(document)
    with session(ctx) as s:
        entry = s.client.catalogue("POST", "environments", json=body)
    if as_json:
        print_json(entry)
        return
    out().print(f"published [bold]{escape(entry['name'])}:{entry['version']}[/]", soft_wrap=True)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="[CRITERIA]",
            help="e.g. 'at least 8 GB RAM, ubuntu, has samtools' or 'ram>=8 has=samtools>=1.17'.",
        ),
    ] = None,
    community: Annotated[
        list[str] | None, typer.Option("--community", help="Facet filter; repeatable.")
    ] = None,
    purpose: Annotated[list[str] | None, typer.Option("--purpose", help="Facet filter.")] = None,
    os: Annotated[list[str] | None, typer.Option("--os", help="Facet filter.")] = None,
    software: Annotated[
        list[str] | None, typer.Option("--software", help="Facet filter: package name.")
    ] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Facet filter.")] = None,
    facets: Annotated[bool, typer.Option("--facets", help="Also count facet values.")] = False,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include tombstones.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Find environments by criteria and facets (everything you may read, without any).

    **Examples**

        toolferry env search 'at least 8 GB RAM, ubuntu, has samtools'
        toolferry env search --community biology --facets
    """
    params: list[tuple[str, str]] = [("q", query)] if query else []
    for key, values in (
        ("community", community),
        ("purpose", purpose),
        ("os", os),
        ("software", software),
        ("kind", kind),
    ):
        params += [(key, v) for v in values or []]
    if facets:
        params.append(("facets", "true"))
    if deleted:
        params.append(("include_deleted", "true"))
    with session(ctx) as s:
        found = s.client.catalogue("GET", "environments", params=params)
    if as_json:
        print_json(found)
        return
    entries = found.get("environments") or []
    if entries:
        out().print(_summary_table(entries))
    else:
        err().print("[dim]nothing matches[/]")
    for facet, counts in (found.get("facets") or {}).items():
        if counts:
            shown = ", ".join(f"{escape(v)} ({n})" for v, n in counts.items())
            out().print(f"[bold]{facet}[/]: {shown}", soft_wrap=True)


@app.command(no_args_is_help=True)
def show(ctx: typer.Context, ref: RefArg, as_json: JsonFlag = False) -> None:
    """Show one version: classification, interface, content, status, review and counters."""
    name, version = split_ref(ref)
    with session(ctx) as s:
        entry = s.client.catalogue("GET", env_path(name, version))
    if as_json:
        print_json(entry)
    else:
        show_entry(entry)


@app.command(no_args_is_help=True)
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    as_json: JsonFlag = False,
) -> None:
    """List every version of NAME you may read, oldest first, tombstones included."""
    with session(ctx) as s:
        found = s.client.catalogue("GET", env_path(split_ref(name)[0], suffix="/versions"))
    if as_json:
        print_json(found)
    else:
        out().print(_summary_table(found.get("environments") or []))


@app.command(no_args_is_help=True)
def rate(
    ctx: typer.Context,
    ref: VersionArg,
    rating: Annotated[int, typer.Argument(min=1, max=5, help="1 (poor) to 5 (excellent).")],
) -> None:
    """Rate a version from 1 to 5 (anyone who may read it may rate it)."""
    name, version = split_ref(ref, need_version=True)
    with session(ctx) as s:
        entry = s.client.catalogue(
            "POST", env_path(name, version, "/ratings"), json={"rating": rating}
        )
    out().print(f"rated {escape(ref)}: now {entry.get('ratings')}", soft_wrap=True)


def _status_change(ctx: typer.Context, ref: str, method: str, suffix: str, done: str) -> None:
    name, version = split_ref(ref, need_version=True)
    with session(ctx) as s:
        entry = s.client.catalogue(method, env_path(name, version, suffix))
    out().print(f"{done} {escape(ref)} (status {entry.get('status')})", soft_wrap=True)


@app.command(no_args_is_help=True)
def deprecate(ctx: typer.Context, ref: VersionArg) -> None:
    """Mark a version deprecated: it still runs, but new work should move on."""
    _status_change(ctx, ref, "POST", ":deprecate", "deprecated")


@app.command(no_args_is_help=True)
def delete(ctx: typer.Context, ref: VersionArg) -> None:
    """Delete a version: it stays listed as a tombstone and never runs again."""
    _status_change(ctx, ref, "DELETE", "", "deleted")


@app.command(no_args_is_help=True)
def review(
    ctx: typer.Context,
    ref: VersionArg,
    status: Annotated[str, typer.Argument(metavar="STATUS", help="draft, in-review or trusted.")],
) -> None:
    """Move a version's review: ask for one (in-review), or as a reviewer, trust it."""
    name, version = split_ref(ref, need_version=True)
    with session(ctx) as s:
        entry = s.client.catalogue(
            "POST", env_path(name, version, ":review"), json={"review": status}
        )
    out().print(f"{escape(ref)} is now {entry.get('review')}", soft_wrap=True)


@app.command()
def match(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(metavar="[NAME:VERSION]", help="Where can this version run?"),
    ] = None,
    site: Annotated[
        str | None,
        typer.Option("--site", help="Instead: which environments can run on this site?"),
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="With --site: criteria to narrow.")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="With --site: also those that cannot, with why.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Match environments and execution environments (ViCE's table IV and hardware).

    **Examples**

        toolferry env match lab/align:2          # where can it run, and if not, why not
        toolferry env match --site local         # what can run on this hub's site
    """
    if (ref is None) == (site is None):
        raise CliError("give NAME:VERSION or --site SITE (one of them)")
    with session(ctx) as s:
        if ref is not None:
            name, version = split_ref(ref, need_version=True)
            found = s.client.catalogue("GET", env_path(name, version, "/matches"))
        else:
            params: dict[str, str] = {"all": "true"} if show_all else {}
            if query:
                params["q"] = query
            found = s.client.catalogue(
                "GET",
                f"execution-environments/{quote(str(site), safe='')}/environments",
                params=params,
            )
    if as_json:
        print_json(found)
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("ENVIRONMENT", "WHERE", "RUNS", "RUNTIME", "WHY NOT"):
        table.add_column(column, overflow="fold")
    for m in found.get("matches") or []:
        table.add_row(
            Text(str(m["environment"])),
            Text(str(m["execution_environment"]["name"])),
            Text("yes" if m["ok"] else "no", style="green" if m["ok"] else "red"),
            Text(str(m.get("runtime") or "-")),
            Text("; ".join(m.get("reasons") or []) or "-"),
        )
    out().print(table)


DocumentOpt = Annotated[
    str | None,
    typer.Option(
        "--document",
        "-d",
        metavar="FILE",
        help="JSON with more metadata (classification, interface, permissions, ...); its "
        "fields win over what the content says.",
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", "-n", help="The environment's name (e.g. lab/align)."),
]
_LONG = 3600.0  # imports and builds move whole images


def _document(name: str | None, source: str | None) -> dict[str, Any]:
    document = _read_document(source) if source else {}
    if name is not None:
        document["name"] = name
    if not document.get("name"):
        raise CliError('give the environment\'s name: --name NAME (or "name" in --document)')
    return document


def _published(entry: dict[str, Any], as_json: bool, verb: str = "published") -> None:
    if as_json:
        print_json(entry)
        return
    out().print(
        f"{verb} [bold]{escape(entry['name'])}:{entry['version']}[/] "
        f"({escape(entry['kind'])}, {escape(entry['digest'])})",
        soft_wrap=True,
    )


def _import_file(
    client: TesClient, path: Path, document: dict[str, Any], fmt: str | None
) -> dict[str, Any]:
    """Upload ``path`` to a file space of the hub, import it from there, drop the space."""
    if not path.is_file():
        raise CliError(f"{path} is not a file")
    space = client.create_space()
    try:
        client.upload(space, path.name, path)
        body: dict[str, Any] = {"url": f"hub://{space}/{path.name}", "document": document}
        if fmt:
            body["format"] = fmt
        return client.catalogue("POST", "environments:import", json=body, timeout=_LONG)
    finally:
        client.delete_space(space)


@app.command("import", no_args_is_help=True)
def import_(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="REFERENCE|FILE",
            help="An OCI reference (host/repo:tag, host/repo@sha256:...), or with --file a "
            "local file: Docker/OCI archive, Dockerfile or build-context tar, VM disk (qcow2, "
            "raw, vmdk, OVA), Apptainer SIF.",
        ),
    ],
    name: NameOpt = None,
    document: DocumentOpt = None,
    file: Annotated[bool, typer.Option("--file", "-f", help="SOURCE is a local file.")] = False,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="With --file: what the file is (else read from it)."),
    ] = None,
    platform: Annotated[
        str, typer.Option("--platform", help="Which platform's config fills the metadata.")
    ] = "linux/amd64",
    as_json: JsonFlag = False,
) -> None:
    """Import content into the catalogue, pinned by digest, with metadata read from it (image
    labels, `org.opencontainers.image.*`, `toolferry.*`; disk format and size; SIF header).

    **Examples**

        toolferry env import 127.0.0.1:5000/lab/align:1.0 --name lab/align
        toolferry env import --file disk.qcow2 --name lab/vm --document vm.json
    """
    body = _document(name, document)
    if fmt and not file:
        raise CliError("--format goes with --file")
    with session(ctx) as s:
        if file:
            entry = _import_file(s.client, Path(source), body, fmt)
        else:
            entry = s.client.catalogue(
                "POST",
                "environments:import",
                json={"reference": source, "document": body, "platform": platform},
                timeout=_LONG,
            )
    _published(entry, as_json, "imported")


@app.command(no_args_is_help=True)
def push(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="An image in your local Docker Engine.")],
    name: NameOpt = None,
    document: DocumentOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish an image from your local container engine (`docker save`, uploaded to the hub,
    stored in its registry or layout).

    **Example**

        toolferry env push my-tool:dev --name lab/my-tool
    """
    import shutil
    import subprocess
    import tempfile

    body = _document(name, document)
    docker = shutil.which("docker")
    if docker is None:
        raise CliError("push needs the docker CLI (apt-get install docker.io)")
    with tempfile.TemporaryDirectory(prefix="toolferry-push-") as work:
        archive = Path(work) / "image.tar"
        saved = subprocess.run(
            [docker, "save", "-o", str(archive), image], capture_output=True, text=True
        )
        if saved.returncode != 0:
            raise CliError(f"docker save {image} failed: {saved.stderr.strip()}")
        with session(ctx) as s:
            entry = _import_file(s.client, archive, body, "docker-archive")
    _published(entry, as_json, "pushed")


def _context_tar(source: Path, dest: Path) -> None:
    import tarfile

    with tarfile.open(dest, "w") as tar:
        if source.is_file():
            tar.add(source, arcname="Dockerfile")
            return
        if not any((source / n).is_file() for n in ("Dockerfile", "Containerfile")):
            raise CliError(f"{source} holds no Dockerfile or Containerfile")
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(source)), recursive=False)


@app.command(no_args_is_help=True)
def build(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="DIR|DOCKERFILE|NAME:VERSION",
            help="A build context folder or a Dockerfile (published as a recipe first), or a "
            "recipe already in the catalogue.",
        ),
    ],
    name: NameOpt = None,
    document: DocumentOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Build a recipe into an image with the hub's engine (no network during the build) and
    publish it: the recipe as one version, the image as the next, based on it.

    **Examples**

        toolferry env build ./align --name lab/align
        toolferry env build lab/align:3
    """
    import tempfile

    path = Path(source)
    with session(ctx) as s:
        if path.exists():
            body = _document(name, document)
            with tempfile.TemporaryDirectory(prefix="toolferry-build-") as work:
                context = Path(work) / "context.tar"
                _context_tar(path, context)
                recipe = _import_file(s.client, context, dict(body), "context")
            _published(recipe, False, "published recipe")
            recipe_name, version = recipe["name"], int(recipe["version"])
            target: dict[str, Any] = {k: v for k, v in body.items() if k != "version"}
        else:
            recipe_name, maybe = split_ref(source, need_version=True)
            version = int(maybe or 0)
            target = _read_document(document) if document else {}
            if name:
                target["name"] = name
        entry = s.client.catalogue(
            "POST",
            env_path(recipe_name, version, ":build"),
            json={"document": target},
            timeout=_LONG,
        )
    _published(entry, as_json, "built")


@app.command(no_args_is_help=True)
def export(
    ctx: typer.Context,
    ref: VersionArg,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="images: oci-archive, docker-archive; VM disks: original, qcow2, raw, vmdk; "
            "SIF: sif; recipes: context, recipe; any: json.",
        ),
    ] = "json",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write (default: the hub's file name)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file that is already there.")
    ] = False,
) -> None:
    """Export a version as a file (`docker load`, `skopeo`, `qemu-img` and Apptainer read them).

    **Examples**

        toolferry env export lab/align:2 --format docker-archive -o align.tar
        toolferry env export lab/vm:1 --format vmdk
    """
    name, version = split_ref(ref, need_version=True)
    if output is not None and output.exists() and not force:
        raise CliError(f"{output} exists; give --force to replace it")
    with session(ctx) as s:
        dest = output or Path(f"{name.replace('/', '_')}-{version}.download")
        suggested, size = s.client.catalogue_download(
            env_path(name, version, "/export"), dest, params={"format": fmt}
        )
    if output is None and suggested:
        final = Path(Path(suggested).name)
        if final.exists() and not force:
            dest.unlink()
            raise CliError(f"{final} exists; give --force to replace it, or -o FILE")
        dest.replace(final)
        dest = final
    out().print(f"wrote {escape(str(dest))} ({size} bytes)", soft_wrap=True)


@app.command(no_args_is_help=True)
def run(
    ctx: typer.Context,
    ref: VersionArg,
    bindings: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME=VALUE]...",
            help="Inputs and outputs to URLs, parameters to values (see `env show`).",
        ),
    ] = None,
    task_name: Annotated[str | None, typer.Option("--task-name", help="The task's name.")] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Wait for the task to end.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the TES task instead of submitting it.")
    ] = False,
) -> None:
    """Run a version's tool interface as a TES task (pinned to the version's digest).

    Exit status with --wait: 0 COMPLETE, 1 EXECUTOR_ERROR, 2 any other end.

    **Example**

        toolferry env run lab/align:2 reads=hub://SPACE/r.fq out=hub://SPACE/aln.sam threads=4 -w
    """
    from toolferry.cli.live import exit_code_for, wait_live
    from toolferry.cli.render import state_text

    name, version = split_ref(ref, need_version=True)
    values: dict[str, str] = {}
    for item in bindings or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{item!r} is not NAME=VALUE")
        if key in values:
            raise CliError(f"{key} is bound twice")
        values[key] = value
    body: dict[str, Any] = {"bindings": values, "dry_run": dry_run}
    if task_name:
        body["name"] = task_name
    with session(ctx) as s:
        answer = s.client.catalogue("POST", env_path(name, version, ":run"), json=body)
        if dry_run:
            print_json(answer.get("task"))
            return
        task_id = str(answer["id"])
        out().print(task_id, markup=False)
        if not wait:
            return
        task = wait_live(s.client, task_id)
    state = str(task.get("state", "UNKNOWN"))
    out().print(state_text(state))
    raise typer.Exit(exit_code_for(state))
