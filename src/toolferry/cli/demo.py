"""`toolferry demo`: start an embedded hub and run small tasks that show what it does (four
everywhere, and on Docker a fifth from a catalogue environment built for the demo)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.client import TesClient
from toolferry.cli.demo_catalogue import demo_task_document, publish_demo_environment
from toolferry.cli.output import CliError, out
from toolferry.cli.render import command_line, duration, last_attempt, state_text, stream_panel
from toolferry.cli.session import deps, embedded_hub, token_of
from toolferry.config import Settings
from toolferry.domain.states import TERMINAL

__all__ = ["DEMO_IMAGE", "demo", "demo_tasks"]

_WORDS = {4: "four", 5: "five"}
# Built locally by scripts/setup.sh from the host's static busybox (no image can be pulled).
DEMO_IMAGE = "toolferry-test/busybox:1"
DEMO_TIMEOUT = 180.0


@dataclass(frozen=True, kw_only=True)
class DemoTask:
    key: str
    what: str  # one line for the audience
    expected: str  # the state this task is meant to end in
    document: dict[str, Any]


def write_reference(folder: Path) -> None:
    """The demo's reference data (a DIRECTORY input); left as it is when present, so that a
    second demo takes it from the site's input cache."""
    genes = folder / "genes.txt"
    if not genes.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        genes.write_text("BRCA2\nTP53\nAPOE\nBRCA1\nEGFR\nTP53\n", encoding="utf-8")


def demo_tasks(
    image: str, output_dir: Path, run_id: str, reference: Path | None = None
) -> list[DemoTask]:
    """The four demo tasks. Commands use only sh, cat, tr, wc, sort, uniq and echo, which the
    busybox image has and every host running the none runtime has too."""
    tags = {"toolferry-demo": run_id}
    shout = output_dir / "shout.txt"
    reference = reference or output_dir.parent / "reference"
    return [
        DemoTask(
            key="hello",
            what="an inline input is upper-cased by `tr` and uploaded as an output file",
            expected="COMPLETE",
            document={
                "name": "demo-hello",
                "description": "Inline input → tr → output file in the hub's storage",
                "inputs": [{"path": "/data/greeting.txt", "content": "hello from toolferry\n"}],
                "outputs": [{"path": "/out/shout.txt", "url": shout.as_uri()}],
                "executors": [
                    {
                        "image": image,
                        "command": [
                            "sh",
                            "-c",
                            "tr a-z A-Z < /data/greeting.txt > /out/shout.txt"
                            " && cat /out/shout.txt",
                        ],
                    }
                ],
                "tags": tags,
            },
        ),
        DemoTask(
            key="pipeline",
            what="two executors share the volume /shared: one writes, the next counts words",
            expected="COMPLETE",
            document={
                "name": "demo-pipeline",
                "description": "Two executors passing a file through a shared volume",
                "volumes": ["/shared"],
                "executors": [
                    {
                        "image": image,
                        "command": ["sh", "-c", 'echo "$WORDS" > /shared/words.txt'],
                        "env": {"WORDS": "the quick brown fox jumps over the lazy dog"},
                    },
                    {
                        "image": image,
                        "command": [
                            "sh",
                            "-c",
                            'echo "words in /shared/words.txt: $(wc -w < /shared/words.txt)"',
                        ],
                    },
                ],
                "tags": tags,
            },
        ),
        DemoTask(
            key="data",
            what=(
                "a DIRECTORY input is staged through the input cache (read-only), two "
                "wildcard outputs are uploaded, and every file's sha256 is recorded"
            ),
            expected="COMPLETE",
            document={
                "name": "demo-data",
                "description": "Directory input → sort | uniq -c → wildcard outputs",
                "inputs": [
                    {"path": "/ref", "url": reference.as_uri(), "type": "DIRECTORY"},
                ],
                "outputs": [
                    {
                        "path": "/out/*.txt",
                        "url": (output_dir / "results").as_uri(),
                        "path_prefix": "/out",
                    }
                ],
                "executors": [
                    {
                        "image": image,
                        "command": [
                            "sh",
                            "-c",
                            "sort /ref/genes.txt > /out/sorted.txt"
                            " && uniq -c /out/sorted.txt > /out/counts.txt"
                            " && cat /out/counts.txt",
                        ],
                    }
                ],
                "tags": tags,
            },
        ),
        DemoTask(
            key="failing",
            what="an executor exits with code 3: the task ends in EXECUTOR_ERROR, stderr kept",
            expected="EXECUTOR_ERROR",
            document={
                "name": "demo-failing",
                "description": "An executor that fails, to show how errors come back",
                "executors": [
                    {
                        "image": image,
                        "command": [
                            "sh",
                            "-c",
                            "echo 'reading input.csv ...'; "
                            "echo 'error: input.csv: no such file' >&2; exit 3",
                        ],
                    }
                ],
                "tags": tags,
            },
        ),
    ]


def _follow(client: TesClient, ids: dict[str, str], console: Console) -> dict[str, str]:
    """Poll every task until all have ended (or time runs out); return the last states."""
    states = dict.fromkeys(ids, "QUEUED")
    started = time.monotonic()

    def line() -> Text:
        parts: list[str | Text] = []
        for key in ids:
            parts += [f"{key} ", state_text(states[key]), "   "]
        return Text.assemble(*parts)

    with console.status(line()) as status:
        while True:
            for key, task_id in ids.items():
                if states[key] in TERMINAL:
                    continue
                state = str(client.get(task_id, view="MINIMAL").get("state", "UNKNOWN"))
                if state != states[key]:
                    states[key] = state
                    elapsed = time.monotonic() - started
                    console.print(
                        Text.assemble((f"  {elapsed:6.1f} s ", "dim"), f"{key} ", state_text(state))
                    )
            status.update(line())
            if all(s in TERMINAL for s in states.values()):
                return states
            if time.monotonic() - started > DEMO_TIMEOUT:
                return states
            time.sleep(0.25)


def _local_file(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _show(console: Console, item: DemoTask, task: dict[str, Any]) -> None:
    console.rule(Text.assemble((item.key, "bold"), " · ", state_text(task.get("state"))))
    console.print(Text(item.what, style="dim"))
    attempt = last_attempt(task) or {}
    executors = task.get("executors") or []
    for index, log in enumerate(attempt.get("logs") or []):
        code = log.get("exit_code")
        command = executors[index].get("command", []) if index < len(executors) else []
        console.print(
            Text.assemble(
                (f"executor {index} of {len(executors)}", "bold"),
                " ran ",
                (command_line(command), "cyan"),
                " → exit code ",
                (str(code), "green" if code == 0 else "red"),
            )
        )
        for panel in (
            stream_panel("stdout", log.get("stdout"), "dim"),
            stream_panel("stderr", log.get("stderr"), "red"),
        ):
            if panel is not None:
                console.print(panel)
    for output in attempt.get("outputs") or []:
        url = str(output.get("url", ""))
        console.print(
            Text.assemble(
                "output ",
                str(output.get("path", "")),
                " → ",
                url,
                (f" ({output.get('size_bytes', '?')} bytes)", "dim"),
            )
        )
        local = _local_file(url)
        if local is not None and local.is_file():
            content = local.read_text(encoding="utf-8", errors="replace")
            console.print(Text.assemble(("  which now holds: ", "dim"), content.rstrip("\n")))
    for key, digest in sorted((attempt.get("metadata") or {}).items()):
        if key.startswith("sha256:"):
            console.print(
                Text.assemble(
                    ("sha256 ", "dim"),
                    key.removeprefix("sha256:"),
                    " ",
                    (str(digest)[:16] + "…", "dim"),
                )
            )
    for line in attempt.get("system_logs") or []:
        console.print(Text(f"system: {line}", style="yellow"))


def demo(ctx: typer.Context) -> None:
    """Run example tasks on an embedded hub and show how they went.

    Starts a hub inside this command (on this machine's data directory), says which runtime it
    chose and why, then submits: a task whose inline input becomes an output file in the hub's
    storage, a two-step task sharing a volume, a task that stages a directory input through
    the input cache and uploads wildcard outputs with their checksums, and a task that fails
    on purpose; on Docker also a task made from the tool interface of a catalogue environment
    the demo publishes as a recipe and builds. Exit status 0 when every task ended as intended.
    """
    settings: Settings = deps(ctx).settings()
    console = out()
    run_id = datetime.now().strftime("%Y%m%d-%H%M%S")
    output_dir = settings.storage_dir / "demo" / run_id
    with (
        embedded_hub(settings) as (hub, url),
        # Without a token, the hub's in-process secret, as `connect` does.
        TesClient(url, token_of(settings) or hub.local_secret) as client,
    ):
        runtime, why = hub.runtime_choice
        console.print(f"[bold]toolferry demo[/]: an embedded hub at {escape(url)}")
        console.print(f"data directory {escape(str(settings.data_dir))}")
        console.print(f"runtime [bold]{escape(runtime)}[/]: {escape(why)}")
        if runtime == "docker":
            console.print(f"executors run in the image {DEMO_IMAGE}\n")
        else:
            console.print("executors run as host processes (the image is ignored)\n")

        # The image is named for the none runtime too: TES requires one, and it is ignored.
        reference = settings.storage_dir / "demo" / "reference"
        write_reference(reference)
        items = demo_tasks(DEMO_IMAGE, output_dir, run_id, reference)
        if runtime == "docker":
            ref = publish_demo_environment(client, DEMO_IMAGE, console)
            items.append(
                DemoTask(
                    key="catalogue",
                    what=f"a task made from the tool interface of the catalogue entry {ref}, "
                    "run by name and pinned to its digest",
                    expected="COMPLETE",
                    document=demo_task_document(
                        client,
                        ref,
                        reference / "genes.txt",
                        output_dir / "genecounts.txt",
                        {"toolferry-demo": run_id},
                    ),
                )
            )
            console.print()
        ids: dict[str, str] = {}
        for number, item in enumerate(items, start=1):
            ids[item.key] = client.create(item.document)
            console.print(Text.assemble(f"{number}. ", (item.key, "bold"), f" {ids[item.key]}"))
            console.print(Text(f"   {item.what}", style="dim"))
        console.print()
        _follow(client, ids, console)
        tasks = {key: client.get(task_id, view="FULL") for key, task_id in ids.items()}

    for item in items:
        console.print()
        _show(console, item, tasks[item.key])

    console.print()
    table = Table(title="Summary", title_justify="left", header_style="bold")
    table.add_column("TASK")
    table.add_column("ID", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("INTENDED", no_wrap=True)
    table.add_column("TOOK", no_wrap=True, justify="right")
    all_as_intended = True
    for item in items:
        task = tasks[item.key]
        state = str(task.get("state", "UNKNOWN"))
        ok = state == item.expected
        all_as_intended &= ok
        attempt = last_attempt(task) or {}
        table.add_row(
            item.key,
            ids[item.key],
            state_text(state),
            Text("✓ " + item.expected if ok else "✗ " + item.expected, "green" if ok else "red"),
            duration(attempt.get("start_time"), attempt.get("end_time")) or "-",
        )
    console.print(table)
    if not all_as_intended:
        hint = (
            f"; is the image {DEMO_IMAGE} built? (scripts/setup.sh builds it)"
            if runtime == "docker"
            else ""
        )
        raise CliError(f"some demo tasks did not end as intended{hint}", exit_code=1)
    console.print(
        f"\n[green]All {_WORDS.get(len(items), str(len(items)))} tasks ended as intended.[/] "
        "See them again with `toolferry task list --tag toolferry-demo`."
    )
