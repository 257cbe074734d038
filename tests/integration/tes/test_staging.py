"""Data staging through the TES API against real servers on loopback: inputs and outputs over
file://, http(s)://, s3://, webdav:// and ftp://, the shared input cache, checksums, and
failures that end in SYSTEM_ERROR naming the URL and the cause.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.storage.http_server import FileServer, serving
from tests.integration.storage.servers import FtpArea, MotoServer, WebdavArea
from tests.integration.tes.tessupport import RunningHub, error_detail, file_url, running_hub, sh

from toolferry.config import Settings


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    with serving(tmp_path_factory.mktemp("web")) as server:
        yield server


def _hub(
    tmp_path_factory: pytest.TempPathFactory, runtime: str, moto: MotoServer
) -> Iterator[RunningHub]:
    """A hub whose site reaches the test S3 endpoint with a site-wide credential."""
    root = tmp_path_factory.mktemp(f"staging-{runtime}")
    allowed = root / "allowed"
    allowed.mkdir()
    settings = Settings(
        data_dir=root / "data",
        runtime=runtime,
        file_allowed_dirs=[allowed],
        capacity_cpus=8,
        transfer_attempts=2,
        s3_endpoint_url=moto.endpoint_url,
        s3_region=moto.region,
        storage_credentials=[
            {"prefix": "s3://", "access_key": moto.key, "secret_key": moto.secret}
        ],
    )
    with running_hub(settings) as running:
        yield running


@pytest.fixture(scope="module")
def docker_hub(
    busybox_image: str, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    yield from _hub(tmp_path_factory, "docker", moto_server)


@pytest.fixture(scope="module")
def none_hub(
    bwrap: str, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    yield from _hub(tmp_path_factory, "none", moto_server)


@pytest.fixture(scope="module", params=["docker", "none"])
def hub(request: pytest.FixtureRequest) -> RunningHub:
    return request.getfixturevalue(f"{request.param}_hub")  # type: ignore[no-any-return]


def allowed(hub: RunningHub) -> Path:
    return hub.settings.file_allowed_dirs[0]


def last_log(task: dict[str, Any]) -> dict[str, Any]:
    return task["logs"][-1]  # type: ignore[no-any-return]


def system_logs(task: dict[str, Any]) -> str:
    return "\n".join(last_log(task).get("system_logs", []))


# -- success paths ---------------------------------------------------------------------------


def test_http_input_to_file_output_with_checksums(hub: RunningHub, web: FileServer) -> None:
    name = uniq("http")
    (web.root / f"{name}.txt").write_bytes(b"over http\n")
    out = allowed(hub) / name / "result.txt"
    task = hub.api.run(
        {
            "inputs": [{"path": "/in/data.txt", "url": f"{web.url}/{name}.txt"}],
            "outputs": [{"path": "/out/result.txt", "url": file_url(out)}],
            "executors": [sh("tr a-z A-Z < /in/data.txt > /out/result.txt")],
        }
    )
    assert task["state"] == "COMPLETE", task
    assert out.read_bytes() == b"OVER HTTP\n"
    metadata = last_log(task)["metadata"]
    assert metadata["sha256:/in/data.txt"] == sha(b"over http\n")
    assert metadata["sha256:/out/result.txt"] == sha(b"OVER HTTP\n")


def test_a_repeated_input_comes_from_the_cache(hub: RunningHub, web: FileServer) -> None:
    name = uniq("cached")
    (web.root / f"{name}.bin").write_bytes(b"reference data" * 1000)
    task = {
        "inputs": [{"path": "/ref/data.bin", "url": f"{web.url}/{name}.bin"}],
        "executors": [sh("wc -c < /ref/data.bin")],
    }
    first, second = hub.api.run(task), hub.api.run(task)
    assert first["state"] == second["state"] == "COMPLETE"
    assert second["logs"][0]["logs"][0]["stdout"].strip() == "14000"
    assert web.count("GET", f"/{name}.bin") == 1
    task_in_store = hub.hub.store.get(second["id"])
    assert [i.cached for i in task_in_store.logs[-1].inputs] == [True]


def test_a_changed_input_is_fetched_again(hub: RunningHub, web: FileServer) -> None:
    name = uniq("changed")
    path = web.root / f"{name}.txt"
    path.write_text("one\n")
    task = {
        "inputs": [{"path": "/in/x", "url": f"{web.url}/{name}.txt"}],
        "executors": [sh("cat /in/x")],
    }
    assert hub.api.run(task)["logs"][0]["logs"][0]["stdout"] == "one\n"
    path.unlink()
    path.write_text("two, longer\n")
    assert hub.api.run(task)["logs"][0]["logs"][0]["stdout"] == "two, longer\n"
    assert web.count("GET", f"/{name}.txt") == 2


def test_an_input_cannot_be_changed_by_an_executor(hub: RunningHub, web: FileServer) -> None:
    name = uniq("ro")
    (web.root / f"{name}.txt").write_text("pristine\n")
    url = f"{web.url}/{name}.txt"
    vandal = hub.api.run(
        {
            "inputs": [{"path": "/data/x.txt", "url": url}],
            "volumes": ["/data"],
            "executors": [sh("echo spoiled > /data/x.txt || echo refused")],
        }
    )
    assert "refused" in vandal["logs"][0]["logs"][0]["stdout"], vandal
    after = hub.api.run(
        {"inputs": [{"path": "/in/x.txt", "url": url}], "executors": [sh("cat /in/x.txt")]}
    )
    assert after["logs"][0]["logs"][0]["stdout"] == "pristine\n"


def test_a_checksum_in_the_url_is_verified(hub: RunningHub, web: FileServer) -> None:
    name = uniq("sum")
    (web.root / f"{name}.txt").write_bytes(b"pinned\n")
    digest = sha(b"pinned\n")
    good = hub.api.run(
        {
            "inputs": [{"path": "/in/x", "url": f"{web.url}/{name}.txt#sha256={digest}"}],
            "executors": [sh("cat /in/x")],
        }
    )
    assert good["state"] == "COMPLETE", good
    bad = hub.api.run(
        {
            "inputs": [{"path": "/in/x", "url": f"{web.url}/{name}.txt#sha256={'0' * 64}"}],
            "executors": [sh("cat /in/x")],
        }
    )
    assert bad["state"] == "SYSTEM_ERROR"
    assert "checksum mismatch" in system_logs(bad)
    assert f"{name}.txt" in system_logs(bad)


def test_directory_and_wildcard_outputs_over_http(hub: RunningHub, web: FileServer) -> None:
    name = uniq("up")
    task = hub.api.run(
        {
            "outputs": [
                {"path": "/out/tree", "url": f"{web.url}/{name}/tree", "type": "DIRECTORY"},
                {
                    "path": "/out/*.csv",
                    "url": f"{web.url}/{name}/csv",
                    "path_prefix": "/out",
                },
            ],
            "executors": [
                sh(
                    "mkdir -p /out/tree/sub && echo a > /out/tree/a && echo b > /out/tree/sub/b"
                    " && echo 1 > /out/one.csv && echo 2 > /out/two.csv"
                )
            ],
        }
    )
    assert task["state"] == "COMPLETE", task
    logged = {o["path"]: o["url"] for o in last_log(task)["outputs"]}
    assert logged == {
        "/out/tree/a": f"{web.url}/{name}/tree/a",
        "/out/tree/sub/b": f"{web.url}/{name}/tree/sub/b",
        "/out/one.csv": f"{web.url}/{name}/csv/one.csv",
        "/out/two.csv": f"{web.url}/{name}/csv/two.csv",
    }
    assert (web.root / name / "tree" / "sub" / "b").read_text() == "b\n"
    assert (web.root / name / "csv" / "two.csv").read_text() == "2\n"


def test_executor_stdout_and_stderr_files_are_uploadable(hub: RunningHub) -> None:
    out = allowed(hub) / uniq("logs")
    task = hub.api.run(
        {
            "outputs": [
                {"path": "/logs/out.txt", "url": file_url(out / "out.txt")},
                {"path": "/logs/err.txt", "url": file_url(out / "err.txt")},
            ],
            "executors": [
                sh("echo to-out; echo to-err >&2", stdout="/logs/out.txt", stderr="/logs/err.txt")
            ],
        }
    )
    assert task["state"] == "COMPLETE", task
    assert (out / "out.txt").read_text() == "to-out\n"
    assert (out / "err.txt").read_text() == "to-err\n"


def test_credentials_in_urls_are_never_shown(hub: RunningHub, web: FileServer) -> None:
    name = uniq("secret")
    (web.root / f"{name}.txt").write_text("x")
    host = web.url.removeprefix("http://")
    task = hub.api.run(
        {
            "inputs": [{"path": "/in/x", "url": f"http://alice:s3cr3t-pw@{host}/{name}.txt"}],
            "executors": [sh("cat /in/x")],
        }
    )
    assert task["state"] == "COMPLETE", task
    text = str(task)
    assert "s3cr3t-pw" not in text
    assert f"http://***@{host}/{name}.txt" in text


def test_s3_inputs_and_outputs(hub: RunningHub, moto_server: MotoServer, s3_bucket: str) -> None:
    s3 = moto_server.client()
    try:
        s3.put_object(Bucket=s3_bucket, Key="in/reads.txt", Body=b"ACGT\n")
        s3.put_object(Bucket=s3_bucket, Key="in/dir/a.txt", Body=b"a\n")
        s3.put_object(Bucket=s3_bucket, Key="in/dir/sub/b.txt", Body=b"b\n")
        task = hub.api.run(
            {
                "inputs": [
                    {"path": "/in/reads.txt", "url": f"s3://{s3_bucket}/in/reads.txt"},
                    {"path": "/in/dir", "url": f"s3://{s3_bucket}/in/dir", "type": "DIRECTORY"},
                ],
                "outputs": [
                    {"path": "/out/count.txt", "url": f"s3://{s3_bucket}/out/count.txt"},
                    {"path": "/out/*.log", "url": f"s3://{s3_bucket}/logs", "path_prefix": "/out"},
                ],
                "executors": [
                    sh(
                        "cat /in/reads.txt /in/dir/a.txt /in/dir/sub/b.txt | wc -l > /out/count.txt"
                        " && echo one > /out/1.log && echo two > /out/2.log"
                    )
                ],
            }
        )
        assert task["state"] == "COMPLETE", task
        body = s3.get_object(Bucket=s3_bucket, Key="out/count.txt")["Body"].read()
        assert body.strip() == b"3"
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
        assert {"logs/1.log", "logs/2.log"} <= set(keys)
        assert last_log(task)["metadata"]["sha256:/in/reads.txt"] == sha(b"ACGT\n")
        assert moto_server.secret not in str(task)
    finally:
        s3.close()


def test_webdav_with_the_users_own_credentials(
    hub: RunningHub, webdav_auth_area: WebdavArea
) -> None:
    (webdav_auth_area.root / "ref").mkdir()
    (webdav_auth_area.root / "ref" / "genome.fa").write_text(">chr1\nACGT\n")
    task = {
        "inputs": [
            {"path": "/data/ref", "url": f"{webdav_auth_area.url}/ref", "type": "DIRECTORY"}
        ],
        "outputs": [{"path": "/out/n.txt", "url": f"{webdav_auth_area.url}/results/n.txt"}],
        "executors": [sh("grep -c '>' /data/ref/genome.fa > /out/n.txt")],
    }
    denied = hub.api.run(task)
    assert denied["state"] == "SYSTEM_ERROR"
    assert "401" in system_logs(denied), denied
    ((user, password),) = webdav_auth_area.users.items()
    name = uniq("dav")
    stored = hub.api.http.put(
        f"/toolferry/v1/credentials/{name}",
        json={"prefix": webdav_auth_area.url, "username": user, "password": password},
    )
    assert stored.status_code == 201, stored.text
    try:
        done = hub.api.run(task)
        assert done["state"] == "COMPLETE", done
        assert (webdav_auth_area.root / "results" / "n.txt").read_text() == "1\n"
        assert password not in str(done) + str(denied)
    finally:
        hub.api.http.delete(f"/toolferry/v1/credentials/{name}")


def test_ftp_inputs_and_outputs(hub: RunningHub, ftp_area: FtpArea) -> None:
    (ftp_area.root / "in.txt").write_text("over ftp\n")
    host = ftp_area.url.removeprefix("ftp://")
    login = f"ftp://{ftp_area.user}:{ftp_area.password}@{host}"
    task = hub.api.run(
        {
            "inputs": [{"path": "/in/x.txt", "url": f"{ftp_area.url}/in.txt"}],
            "outputs": [
                {"path": "/out/d", "url": f"{login}/results", "type": "DIRECTORY"},
            ],
            "executors": [sh("mkdir -p /out/d/s && cp /in/x.txt /out/d/s/y.txt")],
        }
    )
    assert task["state"] == "COMPLETE", task
    assert (ftp_area.root / "results" / "s" / "y.txt").read_text() == "over ftp\n"
    assert ftp_area.password not in str(task)
    assert not [p for p in (ftp_area.root / "results" / "s").iterdir() if p.name != "y.txt"]


# -- failures ----------------------------------------------------------------------------------


def _fails_with(hub: RunningHub, url: str, *words: str) -> None:
    task = hub.api.run({"inputs": [{"path": "/in/x", "url": url}], "executors": [sh("true")]})
    assert task["state"] == "SYSTEM_ERROR", task
    logs = system_logs(task)
    assert "input 0 (/in/x)" in logs, logs
    for word in words:
        assert word in logs, logs


def test_unreachable_host(hub: RunningHub) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    _fails_with(hub, url, url, "could not connect")


def test_not_found(hub: RunningHub, web: FileServer) -> None:
    _fails_with(hub, f"{web.url}/{uniq('missing')}", "HTTP 404")


def test_forbidden(hub: RunningHub, web: FileServer) -> None:
    name = uniq("forbidden")
    web.fail(f"/{name}", 403)
    _fails_with(hub, f"{web.url}/{name}", "HTTP 403")


def test_output_matching_nothing(hub: RunningHub) -> None:
    task = hub.api.run(
        {
            "outputs": [{"path": "/out/nothing.txt", "url": file_url(allowed(hub) / "n.txt")}],
            "executors": [sh("true")],
        }
    )
    assert task["state"] == "SYSTEM_ERROR"
    assert "output 0: /out/nothing.txt matched no file in the task" in system_logs(task)


def test_unsupported_scheme_is_refused_at_submission(hub: RunningHub) -> None:
    response = hub.api.request(
        "POST",
        "/tasks",
        json={"inputs": [{"path": "/in/x", "url": "gs://bucket/x"}], "executors": [sh("true")]},
    )
    assert "scheme 'gs' is not supported here" in error_detail(response, 400)
    info = hub.api.service_info()
    assert {"http://", "https://", "s3://", "webdav://", "webdavs://", "ftp://", "hub://"} <= set(
        info["storage"]
    )


def test_directory_input_over_http_is_refused(hub: RunningHub, web: FileServer) -> None:
    response = hub.api.request(
        "POST",
        "/tasks",
        json={
            "inputs": [{"path": "/in/d", "url": f"{web.url}/d", "type": "DIRECTORY"}],
            "executors": [sh("true")],
        },
    )
    assert "cannot download directories" in error_detail(response, 400)


@pytest.fixture(scope="module")
def tiny_fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 64 KiB tmpfs: a disk that fills up (needs root, as the test script runs)."""
    mount_point = tmp_path_factory.mktemp("tiny")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"cannot mount a small tmpfs to fill up ({result.stderr.strip()}); run the tests "
            "as root, as `bash scripts/test.sh` does in CI"
        )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


@pytest.fixture(scope="module")
def full_disk_hub(
    bwrap: str, tiny_fs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    """A hub whose input cache and one allowed output folder live on the tiny tmpfs."""
    root = tmp_path_factory.mktemp("full-disk")
    (tiny_fs / "cache").mkdir()
    (tiny_fs / "out").mkdir()
    settings = Settings(
        data_dir=root / "data",
        runtime="none",
        cache_dir=tiny_fs / "cache",
        file_allowed_dirs=[tiny_fs / "out"],
    )
    with running_hub(settings) as running:
        yield running


def test_disk_full_while_staging_an_input(full_disk_hub: RunningHub, web: FileServer) -> None:
    name = uniq("big")
    (web.root / f"{name}.bin").write_bytes(b"x" * 200_000)
    _fails_with(full_disk_hub, f"{web.url}/{name}.bin", f"{name}.bin", "disk full")


def test_disk_full_while_uploading_an_output(full_disk_hub: RunningHub) -> None:
    target = full_disk_hub.settings.file_allowed_dirs[0] / uniq("big")
    task = full_disk_hub.api.run(
        {
            "outputs": [{"path": "/out/big", "url": file_url(target)}],
            "executors": [sh("head -c 200000 /dev/zero > /out/big")],
        }
    )
    assert task["state"] == "SYSTEM_ERROR", task
    logs = system_logs(task)
    assert "output 0 (/out/big) could not be uploaded" in logs
    assert "disk full (no space left on device)" in logs
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".part")]


def test_a_streamable_local_input_is_read_in_place(hub: RunningHub) -> None:
    name = uniq("stream")
    source = allowed(hub) / name
    (source / "tree").mkdir(parents=True)
    (source / "big.txt").write_bytes(b"line\n" * 1000)
    (source / "tree" / "leaf.txt").write_text("leaf\n")
    cache = hub.settings.effective_cache_dir
    before = sorted(p.name for p in (cache / "blobs").iterdir()) if cache.exists() else []
    task = hub.api.run(
        {
            "inputs": [
                {"path": "/in/big.txt", "url": file_url(source / "big.txt"), "streamable": True},
                {
                    "path": "/in/tree",
                    "url": file_url(source / "tree"),
                    "type": "DIRECTORY",
                    "streamable": True,
                },
            ],
            "executors": [
                sh(
                    "wc -l; cat /in/tree/leaf.txt; echo x > /in/big.txt || echo read-only",
                    stdin="/in/big.txt",
                )
            ],
        }
    )
    assert task["state"] == "COMPLETE", task
    stdout = task["logs"][0]["logs"][0]["stdout"]
    assert stdout.split() == ["1000", "leaf", "read-only"], stdout
    assert (source / "big.txt").read_bytes() == b"line\n" * 1000
    after = sorted(p.name for p in (cache / "blobs").iterdir()) if cache.exists() else []
    assert after == before  # read where it lies: nothing went into the cache
    assert last_log(task)["metadata"]["sha256:/in/big.txt"] == sha(b"line\n" * 1000)
