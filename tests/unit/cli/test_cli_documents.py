"""Task documents from `toolferry run` options and from JSON files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from toolferry.cli.documents import (
    HOST_IMAGE,
    apply_overrides,
    build_task,
    parse_pairs,
    read_task_document,
    to_url,
)
from toolferry.cli.output import CliError


def test_every_run_option_lands_in_its_tes_field(tmp_path: Path) -> None:
    task = build_task(
        image="busybox",
        command=["sh", "-c", "wc -l /in/a.txt > /out/n.txt"],
        inputs=["/in/a.txt=https://example.org/a.txt?sig=x=y"],
        outputs=["/out/n.txt=s3://bucket/n.txt"],
        env=["A=1", "B=x=y", "EMPTY="],
        tags=["project=p1"],
        workdir="/in",
        cpu=2,
        ram=1.5,
        name="count",
        runtime="docker",
        network=True,
    )
    assert task == {
        "name": "count",
        "executors": [
            {
                "image": "busybox",
                "command": ["sh", "-c", "wc -l /in/a.txt > /out/n.txt"],
                "workdir": "/in",
                "env": {"A": "1", "B": "x=y", "EMPTY": ""},
            }
        ],
        # Split at the first "=": URLs keep theirs.
        "inputs": [{"path": "/in/a.txt", "url": "https://example.org/a.txt?sig=x=y"}],
        "outputs": [{"path": "/out/n.txt", "url": "s3://bucket/n.txt"}],
        "resources": {
            "cpu_cores": 2,
            "ram_gb": 1.5,
            "backend_parameters": {"runtime": "docker", "network": "host"},
        },
        "tags": {"project": "p1"},
    }


def test_a_minimal_run_sends_only_the_executor() -> None:
    assert build_task(image="busybox", command=["echo", "hi"]) == {
        "executors": [{"image": "busybox", "command": ["echo", "hi"]}]
    }


def test_network_is_left_out_unless_asked_for() -> None:
    task = build_task(image="i", command=["true"], runtime="none")
    assert task["resources"] == {"backend_parameters": {"runtime": "none"}}


def test_local_paths_become_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    task = build_task(
        image="i", command=["true"], inputs=["/in/a=a.txt"], outputs=[f"/out/b={tmp_path}/b"]
    )
    assert task["inputs"][0]["url"] == (tmp_path / "a.txt").as_uri()
    assert task["outputs"][0]["url"] == (tmp_path / "b").as_uri()
    assert to_url("file:///x") == "file:///x"


def test_the_none_runtime_needs_no_image() -> None:
    task = build_task(image=None, command=["echo"], runtime="none")
    assert task["executors"][0]["image"] == HOST_IMAGE


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image": None, "command": ["echo"]}, "give the image"),
        ({"image": "i", "command": []}, "give the command"),
        ({"image": "i", "command": ["x"], "inputs": ["/in/a"]}, "--input takes PATH=URL"),
        ({"image": "i", "command": ["x"], "inputs": ["=u"]}, "--input takes PATH=URL"),
        ({"image": "i", "command": ["x"], "outputs": ["out=u"]}, "must be absolute"),
        ({"image": "i", "command": ["x"], "env": ["NOVALUE"]}, "--env takes NAME=VALUE"),
        ({"image": "i", "command": ["x"], "tags": ["k"]}, "--tag takes KEY=VALUE"),
    ],
)
def test_bad_run_options_are_refused_with_a_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CliError, match=message):
        build_task(**kwargs)  # type: ignore[arg-type]


def test_parse_pairs_splits_at_the_first_equals_sign() -> None:
    assert parse_pairs(["a=b=c", "d="], "--x", "A=B") == [("a", "b=c"), ("d", "")]


def test_overrides_are_laid_over_a_task_file() -> None:
    task = {
        "name": "old",
        "executors": [{"image": "i", "command": ["true"]}],
        "resources": {"cpu_cores": 1, "ram_gb": 2.0, "backend_parameters": {"VmSize": "big"}},
        "tags": {"a": "1"},
    }
    result = apply_overrides(task, name="new", cpu=4, runtime="none", network=True, tags=["b=2"])
    assert result["name"] == "new"
    assert result["resources"] == {
        "cpu_cores": 4,
        "ram_gb": 2.0,
        "backend_parameters": {"VmSize": "big", "runtime": "none", "network": "host"},
    }
    assert result["tags"] == {"a": "1", "b": "2"}
    assert task["name"] == "old"  # the caller's document is left alone
    assert apply_overrides(task) == task


def test_read_task_document_from_a_file_and_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"executors": []}', encoding="utf-8")
    assert read_task_document(str(path)) == {"executors": []}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"name": "x"}'))
    assert read_task_document("-") == {"name": "x"}


def test_bad_task_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="does not exist"):
        read_task_document(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"executors": [}\n', encoding="utf-8")
    with pytest.raises(CliError, match=r"bad.json is not valid JSON: .* line 1 column 16"):
        read_task_document(str(bad))
    listed = tmp_path / "list.json"
    listed.write_text("[]", encoding="utf-8")
    with pytest.raises(CliError, match="must hold a JSON object"):
        read_task_document(str(listed))


def test_backend_and_params_become_backend_parameters() -> None:
    task = build_task(
        image="i",
        command=["true"],
        backend="slurm",
        params=["partition=debug", "qos=short"],
        runtime="docker",
    )
    assert task["resources"]["backend_parameters"] == {
        "partition": "debug",
        "qos": "short",
        "backend": "slurm",
        "runtime": "docker",
    }


def test_a_param_without_a_value_names_the_option() -> None:
    with pytest.raises(CliError, match="--param"):
        build_task(image="i", command=["true"], params=["partition"])


def test_overrides_add_backend_parameters_to_a_task_file() -> None:
    task = {"executors": [], "resources": {"backend_parameters": {"network": "host"}}}
    result = apply_overrides(task, backend="swarm", params=["constraints=node.role==manager"])
    assert result["resources"]["backend_parameters"] == {
        "network": "host",
        "constraints": "node.role==manager",
        "backend": "swarm",
    }
