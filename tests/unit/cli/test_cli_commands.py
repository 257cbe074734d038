"""The commands through Typer's CliRunner, against the in-memory TES server in fake_tes.py."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from tests.unit.cli.fake_tes import EMBEDDED_RUNTIME, FakeTes, deps_for, executor_log
from typer.testing import CliRunner, Result

from toolferry.cli import run as run_module
from toolferry.cli import tasks as tasks_module
from toolferry.cli.live import EXIT_CODES
from toolferry.cli.main import app
from toolferry.cli.session import CliDeps, load_settings
from toolferry.domain.states import TERMINAL

WIDE = {"COLUMNS": "200"}  # so that Rich does not wrap lines the assertions look for


def invoke(fake: FakeTes, *args: str, embedded: bool = False, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        app, list(args), obj=deps_for(fake, embedded=embedded), env=WIDE, input=stdin
    )


def assert_clean_error(result: Result, code: int, *fragments: str) -> None:
    """An expected error: the exit code, one red line naming it, and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")], (
        result.stderr
    )


# -- run --------------------------------------------------------------------------------------


def test_run_maps_options_to_the_task_document() -> None:
    fake = FakeTes()
    result = invoke(
        fake,
        "run",
        "-i", "/in/a.txt=https://example.org/a.txt",
        "--output", "/out/b.txt=s3://bucket/b.txt",
        "-e", "GREETING=hi there",
        "--workdir", "/in",
        "--cpu", "2",
        "--ram", "0.5",
        "--name", "count",
        "--runtime", "docker",
        "--network",
        "--tag", "project=p1",
        "busybox",
        "--",
        "sh", "-c", "wc -l a.txt",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake.submitted == [
        {
            "name": "count",
            "executors": [
                {
                    "image": "busybox",
                    "command": ["sh", "-c", "wc -l a.txt"],
                    "workdir": "/in",
                    "env": {"GREETING": "hi there"},
                }
            ],
            "inputs": [{"path": "/in/a.txt", "url": "https://example.org/a.txt"}],
            "outputs": [{"path": "/out/b.txt", "url": "s3://bucket/b.txt"}],
            "resources": {
                "cpu_cores": 2,
                "ram_gb": 0.5,
                "backend_parameters": {"runtime": "docker", "network": "host"},
            },
            "tags": {"project": "p1"},
        }
    ]


def test_run_without_dashes_takes_everything_after_the_image_as_the_command() -> None:
    fake = FakeTes()
    result = invoke(fake, "run", "busybox", "ls", "-l", "--name", "x")
    assert result.exit_code == 0, result.output
    assert fake.submitted[0]["executors"][0]["command"] == ["ls", "-l", "--name", "x"]
    assert "name" not in fake.submitted[0]


def test_run_with_the_none_runtime_needs_no_image() -> None:
    fake = FakeTes()
    result = invoke(fake, "run", "--runtime", "none", "--", "sh", "-c", "echo hi")
    assert result.exit_code == 0, result.output
    executor = fake.submitted[0]["executors"][0]
    assert executor == {"image": "host", "command": ["sh", "-c", "echo hi"]}
    assert fake.submitted[0]["resources"] == {"backend_parameters": {"runtime": "none"}}


def test_run_submits_a_task_file_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    document = {"name": "from-file", "executors": [{"image": "i", "command": ["true"]}]}
    path.write_text(json.dumps(document), encoding="utf-8")
    fake = FakeTes()
    result = invoke(fake, "run", "--runtime", "none", str(path))
    assert result.exit_code == 0, result.output
    assert fake.submitted == [
        {**document, "resources": {"backend_parameters": {"runtime": "none"}}}
    ]


def test_run_refuses_command_options_with_a_task_file(tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    path.write_text('{"executors": []}', encoding="utf-8")
    result = invoke(FakeTes(), "run", "-e", "A=1", str(path))
    assert_clean_error(result, 2, "--env cannot be combined with a task file")


def test_run_prints_stdout_and_stderr_on_their_streams_and_outputs() -> None:
    attempt = {
        "start_time": "2024-05-01T10:00:00Z",
        "end_time": "2024-05-01T10:00:01.5Z",
        "logs": [executor_log("result line\n", "a warning\n")],
        "outputs": [{"path": "/out/b.txt", "url": "s3://bucket/b.txt", "size_bytes": "42"}],
        "system_logs": ["ignored backend parameter VmSize"],
    }
    fake = FakeTes(attempt=attempt, polls_before_end=1)
    result = invoke(fake, "run", "busybox", "echo", "x")
    assert result.exit_code == 0
    assert result.stdout == "result line\n"
    for expected in (
        "submitted task task0000000000000001",
        "RUNNING",
        "a warning",
        "output /out/b.txt → s3://bucket/b.txt (42 bytes)",
        "system: ignored backend parameter VmSize",
        "task task0000000000000001 COMPLETE in 1.50 s",
    ):
        assert expected in result.stderr


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("COMPLETE", 0),
        ("EXECUTOR_ERROR", 1),
        ("SYSTEM_ERROR", 2),
        ("CANCELED", 2),
        ("PREEMPTED", 2),
    ],
)
def test_run_exit_code_follows_the_end_state(state: str, code: int) -> None:
    result = invoke(FakeTes(final_state=state), "run", "busybox", "true")
    assert result.exit_code == code
    assert f"task task0000000000000001 {state}" in result.stderr


def test_run_shows_which_executor_failed() -> None:
    attempt = {
        "logs": [executor_log("ok\n"), executor_log("", "no such file\n", exit_code=3)],
    }
    fake = FakeTes(final_state="EXECUTOR_ERROR", attempt=attempt)
    fake_doc = ["run", "busybox", "false"]
    result = invoke(fake, *fake_doc)
    assert result.exit_code == 1
    assert "no such file" in result.stderr
    assert "executor 1 exited with code 3" in result.stderr  # from 0, as the hub counts


def test_run_numbers_executors_from_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    task = {
        "id": "t1",
        "state": "EXECUTOR_ERROR",
        "executors": [{"image": "a", "command": ["x"]}, {"image": "b", "command": ["y"]}],
        "logs": [{"logs": [executor_log("one\n"), executor_log("", "bad\n", exit_code=2)]}],
    }
    run_module.print_run_result(task)
    stderr = capsys.readouterr().err
    assert "executor 0 of 2 · a · exit 0" in stderr
    assert "executor 1 of 2 · b · exit 2" in stderr
    assert "executor 1 exited with code 2" in stderr


def test_run_ctrl_c_cancels_the_task_and_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "wait_live", interrupted)
    fake = FakeTes()
    result = invoke(fake, "run", "busybox", "sleep", "9")
    assert result.exit_code == 130, result.output
    assert "interrupted: canceled task task0000000000000001" in result.stderr
    assert fake.tasks["task0000000000000001"]["state"] == "CANCELED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "give the command to run"),
        (["run", "busybox"], "give the command to run"),
        (["run", "--", "echo", "hi"], "give the image"),
        (["run", "busybox", "extra", "--", "echo"], "only the image goes before `--`"),
        (["run", "-i", "nopath", "busybox", "true"], "--input takes PATH=URL"),
        (["run", "-o", "rel/x=s3://b/x", "busybox", "true"], "must be absolute"),
    ],
)
def test_run_usage_mistakes_are_one_line_errors(args: list[str], message: str) -> None:
    fake = FakeTes()
    result = invoke(fake, *args)
    assert_clean_error(result, 2, message)
    assert fake.requests == []


RUNTIME_LINE = f"runtime {EMBEDDED_RUNTIME[0]}: {EMBEDDED_RUNTIME[1]}"


def test_run_on_its_own_hub_says_which_runtime_that_hub_chose() -> None:
    result = invoke(FakeTes(), "run", "busybox", "true", embedded=True)
    assert result.exit_code == 0, result.output
    assert RUNTIME_LINE in result.stderr.splitlines()
    assert RUNTIME_LINE not in result.stdout


def test_run_with_a_runtime_named_says_nothing_about_the_default(tmp_path: Path) -> None:
    result = invoke(FakeTes(), "run", "--runtime", "none", "--", "true", embedded=True)
    assert result.exit_code == 0, result.output
    assert "runtime" not in result.stderr
    path = tmp_path / "t.json"
    document = {"executors": [], "resources": {"backend_parameters": {"runtime": "docker"}}}
    path.write_text(json.dumps(document), encoding="utf-8")
    result = invoke(FakeTes(), "task", "submit", str(path), embedded=True)
    assert result.exit_code == 0, result.output
    assert "runtime" not in result.stderr.replace("no hub was running", "")


def test_run_on_a_running_hub_says_nothing_about_runtimes() -> None:
    result = invoke(FakeTes(), "run", "busybox", "true")
    assert result.exit_code == 0, result.output
    assert "runtime" not in result.stderr


def test_run_rejected_by_the_hub_shows_its_reason() -> None:
    fake = FakeTes(fail=(400, {"detail": "runtime 'docker' is not available: no engine"}))
    result = invoke(fake, "run", "--runtime", "docker", "busybox", "true")
    assert_clean_error(
        result, 2, "the hub refused (HTTP 400): runtime 'docker' is not available: no engine"
    )


# -- task -------------------------------------------------------------------------------------


def test_submit_prints_only_the_id_on_stdout(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"executors": [{"image": "i", "command": ["true"]}]}', encoding="utf-8")
    fake = FakeTes()
    result = invoke(fake, "task", "submit", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "task0000000000000001\n"
    assert result.stderr == ""


def test_submit_from_stdin_in_embedded_mode_warns_that_the_hub_stops() -> None:
    fake = FakeTes()
    result = invoke(fake, "task", "submit", "-", embedded=True, stdin='{"executors": []}')
    assert result.exit_code == 0, result.output
    assert fake.submitted == [{"executors": []}]
    assert result.stdout == "task0000000000000001\n"
    assert "proceeds only while a hub runs on this data directory" in result.stderr
    assert RUNTIME_LINE in result.stderr.splitlines()


@pytest.mark.parametrize(
    "args",
    [["task", "list"], ["task", "get", "t1"], ["task", "logs", "t1"], ["task", "cancel", "t1"]],
)
def test_commands_that_run_nothing_do_not_talk_about_runtimes(args: list[str]) -> None:
    fake = FakeTes()
    fake.add(_finished_task())
    result = invoke(fake, *args, embedded=True)
    assert result.exit_code == 0, result.output
    assert "runtime" not in result.stderr


def test_submit_wait_prints_the_final_state_and_exits_with_it(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"executors": []}', encoding="utf-8")
    result = invoke(FakeTes(final_state="EXECUTOR_ERROR"), "task", "submit", "--wait", str(path))
    assert result.exit_code == 1
    assert result.stdout == "task0000000000000001\nEXECUTOR_ERROR\n"


def test_submit_with_bad_json_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{oops", encoding="utf-8")
    fake = FakeTes()
    result = invoke(fake, "task", "submit", str(path))
    assert_clean_error(result, 2, "t.json is not valid JSON")
    assert fake.requests == []


def _finished_task() -> dict[str, Any]:
    return {
        "id": "t1",
        "state": "COMPLETE",
        "name": "hello",
        "creation_time": "2024-05-01T10:00:00Z",
        "executors": [{"image": "busybox", "command": ["echo", "hello"]}],
        "logs": [{"logs": [executor_log("hello\n", "careful\n")], "system_logs": ["note"]}],
    }


def test_get_renders_the_task() -> None:
    fake = FakeTes()
    fake.add(_finished_task())
    result = invoke(fake, "task", "get", "t1")
    assert result.exit_code == 0, result.output
    for expected in ("t1", "COMPLETE", "hello", "busybox", "echo hello", "careful", "note"):
        assert expected in result.stdout
    assert fake.requests[0].url.params["view"] == "FULL"


def test_get_json_prints_the_answer_as_is() -> None:
    fake = FakeTes()
    fake.add(_finished_task())
    result = invoke(fake, "task", "get", "t1", "--json", "--view", "basic")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == _finished_task()
    assert fake.requests[0].url.params["view"] == "BASIC"


def test_get_unknown_task_is_a_404_error() -> None:
    result = invoke(FakeTes(), "task", "get", "nope")
    assert_clean_error(result, 2, "the hub refused (HTTP 404): task nope not found")


def test_list_shows_a_table_and_passes_filters() -> None:
    fake = FakeTes()
    for n in range(3):
        fake.add({"id": f"t{n}", "name": f"job-{n}", "state": "QUEUED", "creation_time": None})
    result = invoke(
        fake, "task", "list", "--state", "queued", "--name-prefix", "job", "--tag", "p=1",
        "--tag", "any",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for expected in ("ID", "NAME", "STATE", "CREATED", "t0", "job-2", "QUEUED"):
        assert expected in result.stdout
    params = fake.requests[0].url.params
    assert params["state"] == "QUEUED"
    assert params["name_prefix"] == "job"
    assert params["view"] == "BASIC"
    assert params.get_list("tag_key") == ["p", "any"]
    assert params.get_list("tag_value") == ["1", ""]


def test_list_limit_stops_early_and_says_so() -> None:
    fake = FakeTes()
    for n in range(5):
        fake.add({"id": f"t{n}", "state": "QUEUED"})
    result = invoke(fake, "task", "list", "--limit", "2", "--json")
    assert [t["id"] for t in json.loads(result.stdout)] == ["t0", "t1"]
    result = invoke(fake, "task", "list", "--limit", "2")
    assert "showing the first 2; use --limit 0 for all" in result.stderr
    result = invoke(fake, "task", "list", "--limit", "0", "--json")
    assert len(json.loads(result.stdout)) == 5


def test_list_says_when_there_are_no_tasks() -> None:
    result = invoke(FakeTes(), "task", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no tasks" in result.stderr


def test_cancel_prints_the_new_state() -> None:
    fake = FakeTes()
    fake.add({"id": "t1", "state": "QUEUED"})
    result = invoke(fake, "task", "cancel", "t1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "t1 CANCELED\n"


def test_every_end_state_has_an_exit_code() -> None:
    assert set(EXIT_CODES) == TERMINAL
    assert {EXIT_CODES[s] for s in TERMINAL} == {0, 1, 2}


@pytest.mark.parametrize(
    ("state", "code"),
    [("COMPLETE", 0), ("EXECUTOR_ERROR", 1), ("SYSTEM_ERROR", 2), ("CANCELED", 2)],
)
def test_wait_exit_code_follows_the_end_state(state: str, code: int) -> None:
    fake = FakeTes(final_state=state, polls_before_end=1)
    fake.add({"id": "t1", "state": "QUEUED"})
    result = invoke(fake, "task", "wait", "t1")
    assert result.exit_code == code
    assert result.stdout == f"t1 {state}\n"
    assert "RUNNING" in result.stderr


def test_wait_timeout_exits_2_with_the_last_state() -> None:
    fake = FakeTes(polls_before_end=10**6)
    fake.add({"id": "t1", "state": "QUEUED"})
    result = invoke(fake, "task", "wait", "t1", "--timeout", "0.1")
    assert_clean_error(result, 2, "task t1 is still RUNNING after 0.1 s")


@pytest.mark.parametrize("args", [["task", "wait", "t1"], ["task", "submit", "-", "--wait"]])
def test_ctrl_c_while_waiting_exits_130(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(tasks_module, "wait_live", interrupted)
    fake = FakeTes()
    fake.add({"id": "t1", "state": "RUNNING"})
    result = invoke(fake, *args, stdin='{"executors": []}')
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.stderr
    assert "Aborted" not in result.output
    assert fake.tasks["t1"]["state"] == "RUNNING"  # waiting stopped; the task was left alone


def test_logs_prints_each_executors_streams() -> None:
    fake = FakeTes()
    fake.add(_finished_task())
    result = invoke(fake, "task", "logs", "t1")
    assert result.exit_code == 0, result.output
    for expected in ("executor 0 · busybox · exit 0", "hello", "careful", "system logs", "note"):
        assert expected in result.stdout


def test_logs_of_a_task_not_started_yet() -> None:
    fake = FakeTes()
    fake.add({"id": "t1", "state": "QUEUED"})
    result = invoke(fake, "task", "logs", "t1")
    assert result.exit_code == 0
    assert "task t1 has not started yet (QUEUED)" in result.stderr


# -- errors reaching the hub ------------------------------------------------------------------


def test_a_token_refusal_says_how_to_get_a_token() -> None:
    result = invoke(FakeTes(fail=(401, {"detail": "a bearer token is required"})), "task", "list")
    assert_clean_error(result, 2, "a bearer token is required", "TOOLFERRY_TOKEN")


def test_a_server_failure_is_named_as_such() -> None:
    result = invoke(FakeTes(fail=(500, {"detail": "database is locked"})), "task", "get", "t1")
    assert_clean_error(result, 2, "the hub failed (HTTP 500): database is locked")


def test_unreachable_hub_at_toolferry_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("TOOLFERRY_URL", url)
    result = CliRunner().invoke(app, ["task", "list"], env=WIDE)
    assert_clean_error(result, 2, f"nothing answered at {url}", "TOOLFERRY_URL", "toolferry server")


# -- config, settings, version ----------------------------------------------------------------


def test_config_show_redacts_the_token_and_names_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFERRY_TOKEN", "very-secret-value")
    monkeypatch.setenv("TOOLFERRY_PORT", "9999")
    monkeypatch.setenv("TOOLFERRY_DATABASE_URL", "postgresql://u:pw@db/toolferry")
    result = CliRunner().invoke(app, ["config", "show", "--describe"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "very-secret-value" not in result.stdout
    assert "pw@" not in result.stdout
    assert "env TOOLFERRY_PORT" in result.stdout
    assert "9999" in result.stdout
    assert "Bearer token the CLI sends." in result.stdout

    result = CliRunner().invoke(app, ["config", "show", "--json"])
    shown = json.loads(result.stdout)
    assert shown["settings"]["token"] == "********"
    assert shown["settings"]["port"] == 9999
    assert shown["sources"]["port"] == "env TOOLFERRY_PORT"
    assert shown["sources"]["host"] == "default"
    assert shown["settings"]["database_url"] == "postgresql://***@db/toolferry"


def test_config_show_names_the_config_file_as_a_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "toolferry.toml"
    config.write_text('host = "0.0.0.0"\n', encoding="utf-8")
    monkeypatch.setenv("TOOLFERRY_CONFIG", str(config))
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    shown = json.loads(result.stdout)
    assert shown["settings"]["host"] == "0.0.0.0"
    assert shown["sources"]["host"] == f"file {config}"
    assert shown["config_file"] == str(config)


def test_invalid_settings_are_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLFERRY_PORT", "not-a-port")
    result = CliRunner().invoke(app, ["task", "list"])
    assert_clean_error(result, 2, "invalid configuration: port:", "'not-a-port'")


def test_a_missing_config_file_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLFERRY_CONFIG", str(tmp_path / "nope.toml"))
    result = CliRunner().invoke(app, ["config", "show"])
    assert_clean_error(result, 2, "invalid configuration:", "nope.toml")


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("toolferry ")


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command`` (Typer's own Click types), with its path."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize(
    ("path", "command"), ALL_COMMANDS, ids=[" ".join(p) or "toolferry" for p, _ in ALL_COMMANDS]
)
def test_every_help_text_renders_and_reflows(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    # Markdown joins the hard-wrapped lines of a docstring paragraph; Rich markup would keep
    # the source's line breaks and break lines mid-sentence.
    assert command.rich_markup_mode == "markdown"
    assert "[bold]" not in (command.help or "")
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_a_hard_wrapped_paragraph_reads_as_one() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env=WIDE)
    assert "stdout (on stdout) and stderr (on stderr), where its output files went" in (
        result.output
    )


def test_root_help_suggests_commands_that_work() -> None:
    result = CliRunner().invoke(app, [], env=WIDE)
    assert "toolferry demo" in result.output
    assert "toolferry run --runtime none -- echo hello" in result.output
    assert "busybox" not in result.output


def test_run_help_explains_local_paths_and_exit_codes() -> None:
    text = " ".join(CliRunner().invoke(app, ["run", "--help"], env=WIDE).output.split())
    for expected in (
        "file:// URLs",
        "DATA_DIR/storage",
        "file_allowed_dirs",
        "TOOLFERRY_FILE_ALLOWED_DIRS",
        "0 the task ended COMPLETE",
        "1 EXECUTOR_ERROR",
        "2 any other end state",
        "130 interrupted (Ctrl-C)",
    ):
        assert expected in text, expected
    assert "busybox" not in text


@pytest.mark.parametrize("args", [["task", "submit"], ["task", "wait"]])
def test_waiting_commands_document_the_same_exit_codes(args: list[str]) -> None:
    run_help = CliRunner().invoke(app, ["run", "--help"], env=WIDE).output
    help_text = CliRunner().invoke(app, [*args, "--help"], env=WIDE).output
    exit_line = next(line for line in run_help.splitlines() if "Exit status" in line)
    assert exit_line in help_text


def test_upper_case_choices_show_as_such_and_parse_in_any_case() -> None:
    help_text = CliRunner().invoke(app, ["task", "list", "--help"], env=WIDE).output
    assert "MINIMAL|BASIC|FULL" in help_text
    assert "COMPLETE, EXECUTOR_ERROR" in help_text
    assert "minimal" not in help_text
    assert "queued" not in help_text
    fake = FakeTes()
    result = invoke(fake, "task", "list", "--state", "Executor_Error", "--view", "minimal")
    assert result.exit_code == 0, result.output
    assert fake.requests[0].url.params["state"] == "EXECUTOR_ERROR"
    assert fake.requests[0].url.params["view"] == "MINIMAL"
    bad = invoke(fake, "task", "list", "--state", "done")
    assert bad.exit_code == 2
    assert "'done' is not one of UNKNOWN, QUEUED" in " ".join(bad.output.split())


def test_default_deps_load_real_settings() -> None:
    assert CliDeps().settings is load_settings
