"""The real `toolferry` CLI against real hubs: embedded ones, `serve_embedded`, `toolferry server`.

Commands run through Typer's CliRunner in this process, except `toolferry server`, which runs as
the installed console script. Every test gets its own data directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from toolferry.cli.main import app
from toolferry.config import Settings
from toolferry.hub import serve_embedded

pytestmark = pytest.mark.integration

WIDE = {"COLUMNS": "200"}  # so that Rich does not wrap lines the assertions look for


def cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=WIDE, input=stdin)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("TOOLFERRY_DATA_DIR", str(path))
    return path


@pytest.fixture
def served(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A hub served on loopback for the test; TOOLFERRY_URL points the CLI at it."""
    with serve_embedded(Settings()) as (_hub, url):
        monkeypatch.setenv("TOOLFERRY_URL", url)
        yield url


def write_task(path: Path, command: str, **extra: object) -> Path:
    document = {
        "executors": [{"image": "host", "command": ["sh", "-c", command]}],
        "resources": {"backend_parameters": {"runtime": "none"}},
        **extra,
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# -- run on an embedded hub -------------------------------------------------------------------


def test_run_none_runtime_prints_the_commands_output(bwrap: str, data_dir: Path) -> None:
    result = cli("run", "--runtime", "none", "--", "sh", "-c", "echo hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hi\n"
    assert "COMPLETE" in result.stderr
    assert "runtime" not in result.stderr  # it named one: the hub's default does not matter


def test_run_on_its_own_hub_says_which_runtime_that_hub_chose(
    bwrap: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLFERRY_RUNTIME", "none")
    result = cli("run", "any-image", "--", "sh", "-c", "echo hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hi\n"
    assert "runtime none: configured (TOOLFERRY_RUNTIME=none)" in result.stderr.splitlines()


def test_run_of_a_failing_command_exits_1_and_shows_its_stderr(bwrap: str, data_dir: Path) -> None:
    result = cli("run", "--runtime", "none", "--", "sh", "-c", "echo bad input >&2; exit 3")
    assert result.exit_code == 1, result.output
    assert "bad input" in result.stderr
    assert "executor 0 exited with code 3" in result.stderr
    assert "EXECUTOR_ERROR" in result.stderr


def test_run_stages_inputs_and_outputs(bwrap: str, data_dir: Path) -> None:
    storage = Settings().storage_dir
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "in.txt").write_text("shout this\n", encoding="utf-8")
    result = cli(
        "run",
        "--runtime", "none",
        "--input", f"/data/in.txt={storage / 'in.txt'}",
        "--output", f"/out/result.txt={storage / 'result.txt'}",
        "--env", "SUFFIX=!",
        "--",
        "sh", "-c", 'tr a-z A-Z < /data/in.txt > /out/result.txt; echo "done$SUFFIX"',
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "done!\n"
    assert (storage / "result.txt").read_text(encoding="utf-8") == "SHOUT THIS\n"
    assert f"output /out/result.txt → {(storage / 'result.txt').as_uri()}" in result.stderr


def test_run_docker_runtime_in_the_busybox_image(busybox_image: str, data_dir: Path) -> None:
    result = cli(
        "run", "--runtime", "docker", busybox_image, "--", "sh", "-c", "echo hi from $(uname -s)"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "hi from Linux\n"


def test_run_a_task_file(bwrap: str, data_dir: Path, tmp_path: Path) -> None:
    path = write_task(tmp_path / "task.json", "echo from a file", name="file-task")
    result = cli("run", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "from a file\n"


def test_a_task_submitted_embedded_runs_at_the_next_command(bwrap: str, data_dir: Path) -> None:
    path = write_task(data_dir.parent / "task.json", "echo later")
    submitted = cli("task", "submit", str(path))
    assert submitted.exit_code == 0, submitted.output
    assert "proceeds only while a hub runs on this data directory" in submitted.stderr
    task_id = submitted.stdout.strip()

    waited = cli("task", "wait", task_id, "--timeout", "60")
    assert waited.exit_code == 0, waited.output
    assert waited.stdout == f"{task_id} COMPLETE\n"
    logs = cli("task", "logs", task_id)
    assert "later" in logs.stdout


# -- the hub serving the data directory ----------------------------------------------------------


def test_commands_use_the_hub_serving_the_data_dir(
    bwrap: str, data_dir: Path, tmp_path: Path
) -> None:
    # With a token, the hub asks for one: the CLI sends the operator secret from hub.json.
    assert cli("token", "create", "--user", "alice").exit_code == 0
    path = write_task(tmp_path / "t.json", "echo served")
    with serve_embedded(Settings()) as (_hub, url):  # it writes DATA_DIR/hub.json
        assert json.loads((data_dir / "hub.json").read_text(encoding="utf-8"))["url"] == url
        submitted = cli("task", "submit", str(path))
        assert submitted.exit_code == 0, submitted.output
        assert submitted.stderr == ""  # neither the embedded-hub warning nor a runtime line
        task_id = submitted.stdout.strip()
        waited = cli("task", "wait", task_id, "--timeout", "60")
        assert waited.exit_code == 0, waited.output
        assert "served" in cli("task", "logs", task_id).stdout

        ran = cli("run", "--runtime", "none", "--", "echo", "hi")
        assert ran.exit_code == 0, ran.output
        assert "runtime" not in ran.stderr

        # A second hub on the data directory is refused, naming the first.
        second = cli("server", "--port", str(_free_port()))
        assert second.exit_code == 2
        assert f"another hub (pid {os.getpid()}) runs on {data_dir} at {url}" in second.stderr
        assert "Traceback" not in second.output
    assert not (data_dir / "hub.json").exists()


def test_a_hub_file_left_behind_is_ignored(bwrap: str, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = {"url": "http://127.0.0.1:1", "pid": gone.pid, "secret": "x"}
    (data_dir / "hub.json").write_text(json.dumps(stale), encoding="utf-8")
    result = cli("run", "--runtime", "none", "--", "echo", "own hub")
    assert result.exit_code == 0, result.output
    assert result.stdout == "own hub\n"


# -- task commands against a served hub --------------------------------------------------------


def test_task_submit_get_list_cancel_against_a_served_hub(
    bwrap: str, served: str, tmp_path: Path
) -> None:
    slow = write_task(tmp_path / "slow.json", "sleep 60", name="slow-one", tags={"suite": "cli"})
    submitted = cli("task", "submit", str(slow))
    assert submitted.exit_code == 0, submitted.output
    assert submitted.stderr == ""  # a served hub keeps running: no warning
    task_id = submitted.stdout.strip()

    got = cli("task", "get", task_id, "--json")
    assert got.exit_code == 0, got.output
    task = json.loads(got.stdout)
    assert task["id"] == task_id
    assert task["name"] == "slow-one"
    assert task["state"] in ("QUEUED", "INITIALIZING", "RUNNING")

    shown = cli("task", "get", task_id)
    assert "slow-one" in shown.stdout
    assert "sh -c 'sleep 60'" in shown.stdout

    listed = cli("task", "list", "--tag", "suite=cli")
    assert listed.exit_code == 0, listed.output
    assert task_id in listed.stdout
    assert "slow-one" in listed.stdout
    assert cli("task", "list", "--tag", "suite=other", "--json").stdout.strip() == "[]"
    by_prefix = json.loads(cli("task", "list", "--name-prefix", "slow", "--json").stdout)
    assert [t["id"] for t in by_prefix] == [task_id]

    canceled = cli("task", "cancel", task_id)
    assert canceled.exit_code == 0, canceled.output
    assert canceled.stdout.startswith(task_id)

    waited = cli("task", "wait", task_id, "--timeout", "60")
    assert waited.exit_code == 2
    assert waited.stdout == f"{task_id} CANCELED\n"


def test_task_submit_wait_and_logs_against_a_served_hub(
    bwrap: str, served: str, tmp_path: Path
) -> None:
    path = write_task(tmp_path / "t.json", "echo out; echo err >&2")
    result = cli("task", "submit", "--wait", str(path))
    assert result.exit_code == 0, result.output
    task_id, state = result.stdout.split()
    assert state == "COMPLETE"
    logs = cli("task", "logs", task_id)
    assert logs.exit_code == 0, logs.output
    assert "out" in logs.stdout
    assert "err" in logs.stdout


def test_task_submit_from_stdin(bwrap: str, served: str) -> None:
    document = {"executors": [{"image": "host", "command": ["true"]}]}
    result = cli("task", "submit", "-", stdin=json.dumps(document))
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip()) == 20


def test_the_hubs_refusals_are_one_line_errors(served: str, tmp_path: Path) -> None:
    missing = cli("task", "get", "01hxnotthere000000000")
    assert missing.exit_code == 2
    assert "HTTP 404" in missing.stderr
    assert "Traceback" not in missing.output

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"executors": []}), encoding="utf-8")
    refused = cli("task", "submit", str(bad))
    assert refused.exit_code == 2
    assert "the hub refused (HTTP 400)" in refused.stderr


# -- tokens -----------------------------------------------------------------------------------


def test_token_create_then_requests_need_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = cli("token", "create", "--user", "alice", "--description", "laptop")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret
    assert "cannot be shown again" in created.stderr

    listed = json.loads(cli("token", "list", "--json").stdout)
    assert [(t["user"], t["description"], t["revoked"]) for t in listed] == [
        ("alice", "laptop", False)
    ]
    assert secret not in cli("token", "list").stdout

    with serve_embedded(Settings()) as (_hub, url):
        monkeypatch.setenv("TOOLFERRY_URL", url)
        refused = cli("task", "list")
        assert refused.exit_code == 2
        assert "HTTP 401" in refused.stderr or "token" in refused.stderr
        assert "TOOLFERRY_TOKEN" in refused.stderr

        monkeypatch.setenv("TOOLFERRY_TOKEN", secret)
        allowed = cli("task", "list")
        assert allowed.exit_code == 0, allowed.output

        revoked = cli("token", "revoke", listed[0]["id"])
        assert revoked.exit_code == 0, revoked.output
        assert cli("task", "list").exit_code == 2

    again = cli("token", "revoke", "no-such-token")
    assert again.exit_code == 2
    assert "no active token" in again.stderr


def test_token_create_needs_a_user(data_dir: Path) -> None:
    result = cli("token", "create")
    assert result.exit_code == 2
    assert "--user" in result.output


# -- config, server, demo ---------------------------------------------------------------------


def test_config_show(data_dir: Path) -> None:
    result = cli("config", "show")
    assert result.exit_code == 0, result.output
    assert "data_dir" in result.stdout
    assert str(data_dir) in result.stdout
    assert "env TOOLFERRY_DATA_DIR" in result.stdout
    shown = json.loads(cli("config", "show", "--json").stdout)
    assert shown["settings"]["data_dir"] == str(data_dir)


def test_server_refuses_a_public_address_without_auth(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("server", "--host", "0.0.0.0", "--port", "1")
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "Traceback" not in result.output

    monkeypatch.setenv("TOOLFERRY_AUTH", "none")
    result = cli("server", "--host", "0.0.0.0", "--port", "1")
    assert result.exit_code == 2
    assert "TOOLFERRY_AUTH=none" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_command_serves_the_tes_api(data_dir: Path) -> None:
    port = _free_port()
    script = Path(sys.executable).with_name("toolferry")
    env = {**os.environ, "TOOLFERRY_DATA_DIR": str(data_dir), "TOOLFERRY_RUNTIME": "none"}
    proc = subprocess.Popen(
        [str(script), "server", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                info = httpx.get(f"{url}/ga4gh/tes/v1/service-info", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {proc.communicate()}") from None
                time.sleep(0.1)
        assert info.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert f"toolferry hub on {url}/ga4gh/tes/v1" in stderr
    assert "runtime none" in stderr


def test_demo_with_the_none_runtime(
    bwrap: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLFERRY_RUNTIME", "none")
    result = cli("demo")
    assert result.exit_code == 0, result.output
    for expected in (
        "runtime none",
        "HELLO FROM TOOLFERRY",
        "words in /shared/words.txt: 9",
        "error: input.csv: no such file",
        "EXECUTOR_ERROR",
        "sha256 /ref",
        "sha256 /out/counts.txt",
        "All four tasks ended as intended",
    ):
        assert expected in result.stdout, expected
    outputs = list((data_dir / "storage" / "demo").glob("*/shout.txt"))
    assert [p.read_text(encoding="utf-8") for p in outputs] == ["HELLO FROM TOOLFERRY\n"]
    (counts,) = (data_dir / "storage" / "demo").glob("*/results/counts.txt")
    assert "2 TP53" in counts.read_text(encoding="utf-8")


def test_demo_with_the_docker_runtime(
    busybox_image: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLFERRY_RUNTIME", "docker")
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert "runtime docker" in result.stdout
    assert f"executors run in the image {busybox_image}" in result.stdout
    assert "catalogue: published the recipe demo/genecount:1" in result.stdout
    assert "built it into demo/genecount:2" in result.stdout
    assert "All five tasks ended as intended" in result.stdout
    (counts,) = (data_dir / "storage" / "demo").glob("*/genecounts.txt")
    assert counts.read_text(encoding="utf-8").splitlines()[0].split() == ["2", "TP53"]
    again = cli("demo")  # a second demo reuses the environment the first one built
    assert again.exit_code == 0, again.output
    assert "catalogue: reusing demo/genecount:2" in again.stdout


def test_a_terminated_run_cancels_its_task(bwrap: str, tmp_path: Path) -> None:
    toolferry = str(Path(sys.executable).with_name("toolferry"))
    env = {**os.environ, "TOOLFERRY_DATA_DIR": str(tmp_path)}
    env.pop("TOOLFERRY_URL", None)
    with subprocess.Popen(
        [toolferry, "run", "--runtime", "none", "--", "sh", "-c", "sleep 30"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        task_id = ""
        for line in proc.stderr:
            if line.startswith("submitted task "):
                task_id = line.split()[-1]
                break
        assert task_id, "run never said which task it submitted"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(30) == 130, rest
    assert f"canceled task {task_id}" in rest
    shown = subprocess.run(
        [toolferry, "task", "get", task_id, "--json", "--view", "MINIMAL"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout)["state"] == "CANCELED"
