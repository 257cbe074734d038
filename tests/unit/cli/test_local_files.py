"""Local paths as task inputs and outputs: file:// when the hub serves them, else uploaded to
the hub's file store and downloaded back, against an in-memory hub (TES + files API)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from tests.unit.cli.fake_tes import PREFIX, FakeTes, deps_for
from typer.testing import CliRunner, Result

from toolferry.cli.main import app
from toolferry.cli.output import CliError
from toolferry.cli.transfer import (
    Records,
    Staged,
    check_local,
    hub_file_dirs,
    local_paths_in,
    local_paths_of_options,
)
from toolferry.storage.hubfiles import BadPath, parse_hub_url

FILES = "/toolferry/v1/files"
WIDE = {"COLUMNS": "200"}

# What a task "produces": (output url, path in the container, content) per output file.
Produce = Callable[[dict[str, Any]], list[tuple[str, str, bytes]]]


@dataclass
class FakeHub(FakeTes):
    """FakeTes plus service-info storage and the files API; when a task ends, ``produce``
    says which output files it uploaded (hub:// ones land in the fake file store)."""

    served: list[Path] = field(default_factory=list)
    spaces: dict[str, dict[str, bytes]] = field(default_factory=dict)
    dirs: dict[str, set[str]] = field(default_factory=dict)
    produce: Produce = field(default=lambda task: [])
    fail_uploads: bool = False
    _made: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"{PREFIX}/service-info":
            self.requests.append(request)
            storage = [f"file://{d}" for d in self.served] + ["http://"]
            return httpx.Response(200, json={"id": "fake", "storage": storage})
        if path.startswith(FILES):
            self.requests.append(request)
            return self._files(request, path.removeprefix(FILES))
        return super().handle(request)

    def _files(self, request: httpx.Request, path: str) -> httpx.Response:
        parts = path.strip("/").split("/", 1) if path.strip("/") else []
        if request.method == "POST" and not parts:
            self._made += 1
            space = f"{self._made:032x}"
            self.spaces[space] = {}
            self.dirs[space] = set()
            return httpx.Response(201, json={"id": space, "url": f"hub://{space}/"})
        space = parts[0] if parts else ""
        if space not in self.spaces:
            return httpx.Response(404, json={"detail": f"no file space {space!r}"})
        files = self.spaces[space]
        if len(parts) == 1:
            if request.method == "DELETE":
                del self.spaces[space]
                return httpx.Response(204)
            listed = [{"path": p, "size": len(d), "url": ""} for p, d in sorted(files.items())]
            return httpx.Response(200, json={"files": listed})
        rel = unquote(parts[1])
        if request.method == "PUT":
            if request.url.params.get("directory") == "true":
                self.dirs[space].add(rel)
                return httpx.Response(201, json={"path": rel, "size": 0, "url": ""})
            if self.fail_uploads:
                return httpx.Response(507, json={"detail": "the hub's file store is full"})
            data = request.read()
            files[rel] = data
            digest = hashlib.sha256(data).hexdigest()
            return httpx.Response(
                201, json={"path": rel, "size": len(data), "sha256": digest, "url": ""}
            )
        if rel not in files:
            return httpx.Response(404, json={"detail": f"no file {rel!r}"})
        return httpx.Response(200, content=files[rel])

    def _advance(self, task: dict[str, Any]) -> None:
        before = task["state"]
        super()._advance(task)
        if before in ("QUEUED", "RUNNING") and task["state"] not in ("QUEUED", "RUNNING"):
            logged = []
            for url, path, data in self.produce(task):
                if url.startswith("hub://"):
                    with contextlib.suppress(BadPath):  # a test's forged URL: only logged
                        space, rel = parse_hub_url(url)
                        self.spaces[space][rel] = data
                logged.append({"url": url, "path": path, "size_bytes": str(len(data))})
            task["logs"] = [{**self.attempt, "outputs": logged}]

    def end(self, task_id: str) -> None:
        """End the task as if someone had waited for it."""
        self._advance(self.tasks[task_id])

    @property
    def created(self) -> list[dict[str, Any]]:
        return self.submitted

    def paths(self, method: str) -> list[str]:
        return [r.url.path for r in self.requests if r.method == method]


def copies(fake: FakeHub, pairs: dict[str, str]) -> Produce:
    """A task that copied input paths to output paths: each output gets its input's content,
    read from the fake store (hub://) or the local file (file://)."""

    def produce(task: dict[str, Any]) -> list[tuple[str, str, bytes]]:
        made = []
        sources = {i["path"]: i["url"] for i in task.get("inputs", [])}
        for out in task.get("outputs", []):
            source = sources[pairs[out["path"]]]
            if source.startswith("file://"):
                data = Path(unquote(source.removeprefix("file://"))).read_bytes()
            else:
                space, rel = parse_hub_url(source)
                data = fake.spaces[space][rel]
            made.append((out["url"], out["path"], data))
        return made

    return produce


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    monkeypatch.setenv("TOOLFERRY_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "shared").mkdir()
    return FakeHub(served=[tmp_path / "shared"])


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory: a folder the hub does not serve."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def invoke(fake: FakeHub, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=deps_for(fake), env=WIDE)


def records(tmp_path: Path) -> Records:
    return Records(tmp_path / "data")


# -- run ------------------------------------------------------------------------------------


def test_run_uploads_a_local_input_and_downloads_the_output(
    fake: FakeHub, here: Path, tmp_path: Path
) -> None:
    (here / "local.txt").write_text("content\n")
    fake.produce = copies(fake, {"/out/b": "/in/a"})
    result = invoke(
        fake, "run", "--runtime", "none", "-i", "/in/a=local.txt", "-o", "/out/b=res/b.txt",
        "--", "cp", "/in/a", "/out/b",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [task] = fake.created
    space = "1".zfill(32)
    assert task["inputs"] == [{"path": "/in/a", "url": f"hub://{space}/in/0/local.txt"}]
    assert task["outputs"] == [{"path": "/out/b", "url": f"hub://{space}/out/0/b.txt"}]
    assert (here / "res" / "b.txt").read_text() == "content\n"
    assert space not in fake.spaces  # deleted once the output was back
    assert "uploaded 1 file (8 bytes)" in result.stderr
    assert "downloaded 1 file (8 bytes)" in result.stderr
    # The summary names where the output went on this machine.
    assert f"output /out/b → {here / 'res' / 'b.txt'}" in result.stderr
    assert list(records(tmp_path).folder.glob("*.json")) == []


def test_paths_the_hub_serves_go_as_file_urls_without_a_copy(
    fake: FakeHub, here: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    (shared / "in.txt").write_text("x")
    result = invoke(
        fake, "run", "--runtime", "none",
        "-i", f"/in/a={shared / 'in.txt'}", "-o", f"/out/b={shared / 'sub'}/",
        "--", "true",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [task] = fake.created
    assert task["inputs"] == [{"path": "/in/a", "url": (shared / "in.txt").as_uri()}]
    assert task["outputs"] == [
        {"path": "/out/b", "url": (shared / "sub").as_uri(), "type": "DIRECTORY"}
    ]
    assert fake.paths("POST") == [f"{PREFIX}/tasks"]  # no file space
    assert "uploaded" not in result.stderr


def test_urls_are_left_alone(fake: FakeHub, here: Path) -> None:
    result = invoke(
        fake, "run", "--runtime", "none", "-i", "/in/a=https://example.org/a",
        "-o", "/out/b=file:///elsewhere/b", "--", "true",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [task] = fake.created
    assert task["inputs"][0]["url"] == "https://example.org/a"
    assert task["outputs"][0]["url"] == "file:///elsewhere/b"
    assert fake.requests[0].url.path == f"{PREFIX}/tasks"  # not even service-info


def test_a_missing_local_input_fails_before_anything_is_sent(fake: FakeHub, here: Path) -> None:
    (here / "there.txt").write_text("x")
    result = invoke(
        fake, "run", "--runtime", "none", "-i", "/in/a=there.txt", "-i", "/in/b=missing.txt",
        "--", "true",
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"error: --input: missing.txt does not exist (in {here})" in result.stderr
    assert fake.requests == []


def test_directory_inputs_and_outputs_round_trip(fake: FakeHub, here: Path) -> None:
    data = here / "data"
    (data / "sub" / "empty").mkdir(parents=True)
    (data / "a.txt").write_text("a")
    (data / "sub" / "b.txt").write_text("bb")

    def produce(task: dict[str, Any]) -> list[tuple[str, str, bytes]]:
        url = task["outputs"][0]["url"]
        return [
            (f"{url}/x.txt", "/out/r/x.txt", b"x"),
            (f"{url}/d/y%20z.txt", "/out/r/d/y z.txt", b"yz"),
        ]

    fake.produce = produce
    result = invoke(
        fake, "run", "--runtime", "none", "-i", "/in=data", "-o", "/out/r=results/",
        "--", "true",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [task] = fake.created
    space = "1".zfill(32)
    assert task["inputs"] == [
        {"path": "/in", "url": f"hub://{space}/in/0/data", "type": "DIRECTORY"}
    ]
    assert task["outputs"] == [
        {"path": "/out/r", "url": f"hub://{space}/out/0", "type": "DIRECTORY"}
    ]
    uploads = sorted(unquote(p.removeprefix(f"{FILES}/{space}/")) for p in fake.paths("PUT"))
    assert uploads == ["in/0/data/a.txt", "in/0/data/sub/b.txt", "in/0/data/sub/empty"]
    assert (here / "results" / "x.txt").read_text() == "x"
    assert (here / "results" / "d" / "y z.txt").read_text() == "yz"


def test_outputs_come_back_after_an_executor_error(fake: FakeHub, here: Path) -> None:
    fake.final_state = "EXECUTOR_ERROR"
    fake.produce = lambda task: [(task["outputs"][0]["url"], "/out/log", b"why it failed")]
    result = invoke(fake, "run", "--runtime", "none", "-o", "/out/log=log.txt", "--", "false")
    assert result.exit_code == 1, result.output
    assert (here / "log.txt").read_text() == "why it failed"


def test_no_download_after_a_system_error_but_the_space_goes(fake: FakeHub, here: Path) -> None:
    fake.final_state = "SYSTEM_ERROR"
    fake.produce = lambda task: [(task["outputs"][0]["url"], "/out/log", b"partial")]
    result = invoke(fake, "run", "--runtime", "none", "-o", "/out/log=log.txt", "--", "true")
    assert result.exit_code == 2, result.output
    assert not (here / "log.txt").exists()
    assert fake.spaces == {}


def test_a_failed_upload_submits_nothing_and_deletes_the_space(fake: FakeHub, here: Path) -> None:
    (here / "a.txt").write_text("a")
    fake.fail_uploads = True
    result = invoke(fake, "run", "--runtime", "none", "-i", "/in/a=a.txt", "--", "true")
    assert result.exit_code == 2
    assert "HTTP 507" in result.stderr and "file store is full" in result.stderr
    assert fake.created == []
    assert fake.spaces == {}


def test_a_hub_without_a_file_store_is_told_apart(here: Path) -> None:
    (here / "a.txt").write_text("a")
    plain = FakeTes()  # a TES server with neither file:// storage nor a files API
    result = CliRunner().invoke(
        app, ["run", "--runtime", "none", "-i", "/in/a=a.txt", "--", "true"], obj=deps_for(plain)
    )
    assert result.exit_code == 2
    assert (
        "error: --input: a.txt is outside the directories the hub serves as file:// (none), "
        "and the hub has no file store to upload to (HTTP 404)"
    ) in " ".join(result.stderr.split())
    assert plain.submitted == []


def test_a_task_file_with_local_paths(fake: FakeHub, here: Path) -> None:
    (here / "in.txt").write_text("from a file")
    (here / "task.json").write_text(
        json.dumps(
            {
                "executors": [{"image": "host", "command": ["true"]}],
                "inputs": [{"path": "/in/a", "url": "in.txt"}],
                "outputs": [{"path": "/out/b", "url": "out/b.txt"}],
            }
        )
    )
    fake.produce = copies(fake, {"/out/b": "/in/a"})
    result = invoke(fake, "run", "task.json")
    assert result.exit_code == 0, result.output
    assert (here / "out" / "b.txt").read_text() == "from a file"


# -- task submit / wait / download ----------------------------------------------------------


def write_task(here: Path) -> None:
    (here / "in.txt").write_text("payload")
    (here / "task.json").write_text(
        json.dumps(
            {
                "executors": [{"image": "host", "command": ["true"]}],
                "inputs": [{"path": "/in/a", "url": "in.txt"}],
                "outputs": [{"path": "/out/b", "url": str(here / "back.txt")}],
            }
        )
    )


def test_submit_records_where_outputs_go_and_download_fetches_them(
    fake: FakeHub, here: Path, tmp_path: Path
) -> None:
    write_task(here)
    fake.produce = copies(fake, {"/out/b": "/in/a"})
    submitted = invoke(fake, "task", "submit", "task.json")
    assert submitted.exit_code == 0, submitted.output
    task_id = submitted.stdout.strip()
    assert f"`toolferry task download {task_id}`" in submitted.stderr
    staged = records(tmp_path).load(task_id)
    assert staged is not None and staged.space in fake.spaces

    early = invoke(fake, "task", "download", task_id)
    assert early.exit_code == 2
    assert "is QUEUED" in early.stderr
    fake.end(task_id)

    done = invoke(fake, "task", "download", task_id)
    assert done.exit_code == 0, done.output
    assert done.stdout == f"{here / 'back.txt'}\n"
    assert (here / "back.txt").read_text() == "payload"
    assert staged.space not in fake.spaces
    assert records(tmp_path).load(task_id) is None


def test_download_to_a_directory_uses_container_paths_and_keep_keeps(
    fake: FakeHub, here: Path, tmp_path: Path
) -> None:
    write_task(here)
    fake.produce = copies(fake, {"/out/b": "/in/a"})
    task_id = invoke(fake, "task", "submit", "--wait", "task.json").stdout.splitlines()[0]
    # --wait brought the output back already and deleted the space.
    assert (here / "back.txt").read_text() == "payload"
    assert fake.spaces == {}

    write_task(here)
    task_id = invoke(fake, "task", "submit", "task.json").stdout.strip()
    fake.end(task_id)
    kept = invoke(fake, "task", "download", task_id, "dest", "--keep")
    assert kept.exit_code == 0, kept.output
    assert (here / "dest" / "out" / "b").read_text() == "payload"
    assert len(fake.spaces) == 1
    assert records(tmp_path).load(task_id) is not None


def test_download_without_a_record_needs_dest(fake: FakeHub, here: Path) -> None:
    fake.add({"id": "other", "state": "COMPLETE"})
    result = invoke(fake, "task", "download", "other")
    assert result.exit_code == 2
    assert "no local destinations are recorded for task other" in result.stderr
    empty = invoke(fake, "task", "download", "other", "dest")
    assert empty.exit_code == 0
    assert "left no outputs in the hub's file store" in empty.stderr


def test_wait_brings_back_the_outputs_of_a_recorded_task(
    fake: FakeHub, here: Path, tmp_path: Path
) -> None:
    write_task(here)
    fake.produce = copies(fake, {"/out/b": "/in/a"})
    task_id = invoke(fake, "task", "submit", "task.json").stdout.strip()
    waited = invoke(fake, "task", "wait", task_id)
    assert waited.exit_code == 0, waited.output
    assert (here / "back.txt").read_text() == "payload"
    assert fake.spaces == {}
    assert records(tmp_path).load(task_id) is None


def test_a_hub_logging_a_path_outside_the_destination_is_refused(fake: FakeHub, here: Path) -> None:
    fake.produce = lambda task: [(task["outputs"][0]["url"] + "/..%2F..%2Fevil", "/o/x", b"x")]
    result = invoke(fake, "run", "--runtime", "none", "-o", "/out/r=r/", "--", "true")
    assert result.exit_code == 2
    assert "whose path must not contain '..'" in result.stderr
    assert not (here.parent / "evil").exists()


# -- the pure parts -------------------------------------------------------------------------


def test_local_paths_are_those_without_a_scheme() -> None:
    found = local_paths_of_options(["/a=x.txt", "/b=s3://b/k"], ["/c=/abs/out", "/d=http://h/"])
    assert [(p.kind, p.index, p.label, p.raw) for p in found] == [
        ("inputs", 0, "--input", "x.txt"),
        ("outputs", 0, "--output", "/abs/out"),
    ]
    document = {
        "inputs": [
            {"path": "/a", "url": "rel.txt"},
            {"path": "/b", "content": "inline", "url": "ignored"},
            {"path": "/c", "url": "ftp://h/x"},
        ],
        "outputs": [{"path": "/o", "url": "/abs/o"}],
    }
    assert [(p.label, p.raw) for p in local_paths_in(document)] == [
        ("inputs[0].url", "rel.txt"),
        ("outputs[0].url", "/abs/o"),
    ]


@pytest.mark.parametrize(
    ("entry", "make", "needle"),
    [
        (
            {"path": "/a", "url": "d", "type": "FILE"},
            "dir",
            "is a directory, but the input is a FILE",
        ),
        (
            {"path": "/a", "url": "f", "type": "DIRECTORY"},
            "file",
            "is a file, but the input is a DIRECTORY",
        ),
        ({"path": "/a", "url": ""}, "", "give a URL or a local path"),
    ],
)
def test_declared_types_must_match_what_is_on_disk(
    here: Path, entry: dict[str, Any], make: str, needle: str
) -> None:
    if make == "dir":
        (here / "d").mkdir()
    elif make == "file":
        (here / "f").write_text("x")
    document = {"inputs": [entry]}
    with pytest.raises(CliError, match=needle):
        check_local(document, local_paths_in(document))


def test_outputs_into_a_file_where_a_directory_is_needed_are_refused(here: Path) -> None:
    (here / "f").write_text("x")
    document = {"outputs": [{"path": "/o/*.txt", "url": "f"}]}
    with pytest.raises(CliError, match="is a file; this output needs a directory"):
        check_local(document, local_paths_in(document))
    (here / "d").mkdir()
    document = {"outputs": [{"path": "/o", "url": "d", "type": "FILE"}]}
    with pytest.raises(CliError, match="is a directory, but the output is a FILE"):
        check_local(document, local_paths_in(document))


def test_hub_file_dirs_reads_service_info_storage(tmp_path: Path) -> None:
    info = {"storage": [f"file://{tmp_path}", "s3://", "file://relative", 7]}
    assert hub_file_dirs(info) == [tmp_path.resolve()]
    assert hub_file_dirs({}) == []


def test_records_survive_a_round_trip_and_ignore_garbage(tmp_path: Path) -> None:
    store = Records(tmp_path)
    staged = Staged.from_json(
        {"space": "s", "outputs": [{"url": "u", "local": "/l", "tree": True}]}
    )
    store.save("t/1", staged)
    assert store.load("t/1") == staged
    store._file("bad").parent.mkdir(parents=True, exist_ok=True)
    store._file("bad").write_text("[1, 2]")
    assert store.load("bad") is None
    store.drop("t/1")
    assert store.load("t/1") is None
