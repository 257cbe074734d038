"""`toolferry env ...` through CliRunner against a real embedded hub (fake runtime)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from toolferry.cli.main import app
from toolferry.cli.session import CliDeps

WIDE = {"COLUMNS": "200"}


def invoke(deps: CliDeps, *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(app, ["env", *args], obj=deps, env=WIDE, input=stdin)
    assert "Traceback" not in result.output
    return result


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def entry(name: str = "lab/align", digit: str = "a", **classification: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "oci-image",
        "digest": "sha256:" + digit * 64,
        "classification": {
            "title": "Aligner",
            "content_type": "oci",
            "operating_system": ["ubuntu 22.04"],
            "software_packages": ["samtools 1.17"],
            "minimal_hardware": {"ram_gb": 8},
            **classification,
        },
    }


def test_register_show_versions_search(deps: CliDeps, tmp_path: Path) -> None:
    doc = tmp_path / "align.json"
    doc.write_text(json.dumps(entry(community=["biology"])))
    assert "published lab/align:1" in ok(invoke(deps, "register", str(doc)))
    assert "published lab/align:2" in ok(
        invoke(deps, "register", "-", stdin=json.dumps(entry(digit="b")))
    )
    shown = ok(invoke(deps, "show", "lab/align:1"))
    assert "lab/align:1" in shown and "samtools 1.17" in shown and "biology" in shown
    assert json.loads(ok(invoke(deps, "show", "lab/align", "--json")))["version"] == 2
    listed = ok(invoke(deps, "versions", "lab/align"))
    assert "lab/align:1" in listed and "lab/align:2" in listed
    found = ok(invoke(deps, "search", "at least 4 GB RAM, ubuntu, has samtools", "--facets"))
    assert "lab/align:2" in found and "software: samtools (2)" in found
    assert "nothing matches" in invoke(deps, "search", "--community", "physics").stderr
    as_json = json.loads(ok(invoke(deps, "search", "--community", "biology", "--json")))
    assert [e["version"] for e in as_json["environments"]] == [1]


def test_bookkeeping_commands(deps: CliDeps) -> None:
    ok(invoke(deps, "register", "-", stdin=json.dumps(entry())))
    assert "[5]" in ok(invoke(deps, "rate", "lab/align:1", "5"))
    assert "in-review" in ok(invoke(deps, "review", "lab/align:1", "in-review"))
    assert "deprecated" in ok(invoke(deps, "deprecate", "lab/align:1"))
    assert "status deleted" in ok(invoke(deps, "delete", "lab/align:1"))
    assert "deleted" in ok(invoke(deps, "search", "--deleted"))


def test_match_both_ways(deps: CliDeps) -> None:
    ok(invoke(deps, "register", "-", stdin=json.dumps(entry())))
    where = ok(invoke(deps, "match", "lab/align:1"))
    assert "local" in where and "cannot run on fake" in where
    site = ok(invoke(deps, "match", "--site", "local", "--all"))
    assert "lab/align:1" in site


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("register", "-"), "not json", "is not JSON"),
        (("register", "-"), "[1]", "one JSON object"),
        (("register", "/nonexistent.json"), None, "cannot read /nonexistent.json"),
        (("rate", "lab/align", "3"), None, "names no version"),
        (("show", "lab/align:x"), None, "is not NAME or NAME:VERSION"),
        (("match",), None, "give NAME:VERSION or --site"),
        (("show", "lab/nothing:1"), None, "no environment lab/nothing:1"),
        (("rate", "lab/align:1", "9"), None, "less than or equal to 5"),
    ],
)
def test_bad_input_is_named(
    deps: CliDeps, args: tuple[str, ...], stdin: str | None, says: str
) -> None:
    result = invoke(deps, *args, stdin=stdin)
    assert result.exit_code == 2, result.output
    assert says in result.stderr, result.stderr


def test_a_second_publish_of_a_version_is_refused(deps: CliDeps) -> None:
    ok(invoke(deps, "register", "-", stdin=json.dumps(entry())))
    again = invoke(deps, "register", "-", stdin=json.dumps({**entry(), "version": 1}))
    assert again.exit_code != 0 and "lab/align:1" in again.stderr
