"""`toolferry env import|push|build|run|export` against a served hub on Docker, a real
registry and qemu-img: the CLI end of the catalogue."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers import services
from tests.integration.catalogue.registry_server import RegistryServer
from typer.testing import CliRunner, Result

from toolferry.cli.main import app
from toolferry.config import Settings
from toolferry.hub import serve_embedded

WIDE = {"COLUMNS": "200"}
INTERFACE = {
    "command": ["sh", "-c", "wc -l < {text} > {out}"],
    "inputs": [{"name": "text", "path": "/data/text.txt"}],
    "outputs": [{"name": "out", "path": "/out/lines.txt"}],
}
RECIPE = f"""FROM {services.TEST_IMAGE}
LABEL org.opencontainers.image.title="Line counter" toolferry.interface='{json.dumps(INTERFACE)}'
"""


def cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args), env=WIDE)
    assert "Traceback" not in result.output, result.output
    return result


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def served(
    docker_engine: str, busybox_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path / "data", runtime="docker", capacity_cpus=2)
    with serve_embedded(settings) as (_hub, url):
        monkeypatch.setenv("TOOLFERRY_URL", url)
        monkeypatch.setenv("TOOLFERRY_DATA_DIR", str(tmp_path / "cli-data"))
        yield url


def test_build_run_and_export(served: str, tmp_path: Path) -> None:
    context = tmp_path / "counter"
    context.mkdir()
    (context / "Dockerfile").write_text(RECIPE)
    built = ok("env", "build", str(context), "--name", "lab/counter")
    assert "published recipe lab/counter:1" in built and "built lab/counter:2" in built
    shown = json.loads(ok("env", "show", "lab/counter:2", "--json"))
    assert shown["base"] == "lab/counter:1" and shown["interface"]["command"][0] == "sh"
    dry = json.loads(
        ok("env", "run", "lab/counter:2", "text=https://x/t", "out=https://x/o", "--dry-run")
    )
    assert dry["executors"][0]["image"] == "catalogue:lab/counter:2"
    space = httpx.post(f"{served}/toolferry/v1/files").json()["id"]
    httpx.put(f"{served}/toolferry/v1/files/{space}/t.txt", content=b"a\nb\n")
    ran = ok(
        "env", "run", "lab/counter:2", f"text=hub://{space}/t.txt", f"out=hub://{space}/n.txt", "-w"
    )
    assert "COMPLETE" in ran
    assert httpx.get(f"{served}/toolferry/v1/files/{space}/n.txt").text.strip() == "2"
    out = tmp_path / "counter.docker.tar"
    assert "wrote" in ok(
        "env", "export", "lab/counter:2", "--format", "docker-archive", "-o", str(out)
    )
    loaded = services.docker("load", "-i", str(out))
    assert loaded.returncode == 0 and b"lab/counter:2" in loaded.stdout
    recipe_out = tmp_path / "Dockerfile.out"
    ok("env", "export", "lab/counter:1", "--format", "recipe", "-o", str(recipe_out))
    assert recipe_out.read_text() == RECIPE
    bad = cli("env", "export", "lab/counter:2", "--format", "qcow2")
    assert bad.exit_code != 0 and "exports as oci-archive, docker-archive, json" in bad.stderr


def test_push_import_and_disks(
    served: str, registry: RegistryServer, qemu_img: str, tmp_path: Path
) -> None:
    pushed = ok("env", "push", services.TEST_IMAGE, "--name", "lab/busybox")
    assert "pushed lab/busybox:1 (oci-image, sha256:" in pushed
    target = f"{registry.host}/cli/busybox:1"
    for args in (("tag", services.TEST_IMAGE, target), ("push", target)):
        assert services.docker(*args).returncode == 0
    imported = ok("env", "import", target, "--name", "lab/busybox")
    assert "imported lab/busybox:2" in imported
    disk = tmp_path / "d.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(disk), "8M"], check=True)
    assert "imported lab/disk:1 (vm-disk" in ok(
        "env", "import", "--file", str(disk), "--name", "lab/disk"
    )
    raw = tmp_path / "d.raw"
    ok("env", "export", "lab/disk:1", "--format", "raw", "-o", str(raw))
    assert raw.stat().st_size == 8 << 20
    missing = cli("env", "import", "--file", str(tmp_path / "nope"), "--name", "x/y")
    assert missing.exit_code == 2 and "is not a file" in missing.stderr
    nameless = cli("env", "import", target)
    assert nameless.exit_code == 2 and "--name" in nameless.stderr
