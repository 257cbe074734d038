"""The catalogue end to end with real components: images built by the Docker Engine, pushed
with `docker push` and `skopeo copy` to Debian's docker-registry, imported over the
distribution API into the catalogue's store (an OCI layout, or the registry), run as TES tasks
by catalogue name, built from recipes, VM disks from qemu-img imported and converted, and
every kind exported into files the standard tools read back."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import services
from tests.integration.catalogue.registry_server import RegistryServer

from toolferry.config import Settings
from toolferry.hub import Hub, serve_embedded

ENVS = "/api/v1/environments"
TES = "/ga4gh/tes/v1"
INTERFACE = {
    "command": ["sh", "-c", "echo {greeting} > {out}"],
    "outputs": [{"name": "out", "path": "/out/greeting.txt"}],
    "parameters": [{"name": "greeting", "default": "hello"}],
}
DOCKERFILE = f"""FROM {services.TEST_IMAGE}
LABEL org.opencontainers.image.title="Greeter" \\
      org.opencontainers.image.description="Says hello" \\
      org.opencontainers.image.source="https://git.example.org/greeter" \\
      toolferry.community="teaching" \\
      toolferry.software_packages='["busybox 1.35"]' \\
      toolferry.minimal_hardware='{{"ram_gb": 0.1}}' \\
      toolferry.interface='{json.dumps(INTERFACE)}'
RUN echo built > /built.txt
"""


def docker(*args: str, stdin: bytes | None = None) -> str:
    done = services.docker(*args, stdin=stdin, timeout=300)
    assert done.returncode == 0, (args, done.stderr.decode())
    return done.stdout.decode()


@pytest.fixture(scope="module")
def greeter(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A labelled image in the local engine."""
    context = tmp_path_factory.mktemp("greeter")
    (context / "Dockerfile").write_text(DOCKERFILE)
    docker("build", "--network", "none", "-t", "toolferry-test/greeter:1", str(context))
    return "toolferry-test/greeter:1"


@pytest.fixture(scope="module")
def pushed(greeter: str, registry: RegistryServer) -> str:
    """The greeter pushed with `docker push` to the test registry; its reference."""
    target = f"{registry.host}/lab/greeter:1"
    docker("tag", greeter, target)
    docker("push", target)
    return target


def _serve(settings: Settings) -> Iterator[tuple[Hub, httpx.Client]]:
    with (
        serve_embedded(settings) as (hub, url),
        httpx.Client(base_url=url, timeout=300) as client,
    ):
        yield hub, client


@pytest.fixture
def layout_hub(docker_engine: str, tmp_path: Path) -> Iterator[tuple[Hub, httpx.Client]]:
    """The embedded default: artifacts in an OCI layout, tasks on Docker."""
    yield from _serve(Settings(data_dir=tmp_path / "data", runtime="docker", capacity_cpus=2))


@pytest.fixture
def registry_hub(
    docker_engine: str, registry: RegistryServer, tmp_path: Path
) -> Iterator[tuple[Hub, httpx.Client]]:
    """Artifacts in the test registry."""
    settings = Settings(
        data_dir=tmp_path / "data",
        runtime="docker",
        capacity_cpus=2,
        catalogue_registry=registry.url,
        catalogue_namespace=f"t{time.monotonic_ns()}",
    )
    yield from _serve(settings)


def created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def run_task(client: httpx.Client, image: str) -> dict[str, Any]:
    task = {
        "executors": [{"image": image, "command": ["cat", "/built.txt"]}],
    }
    answer = client.post(f"{TES}/tasks", json=task)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["id"]
    for _ in range(600):
        shown: dict[str, Any] = client.get(f"{TES}/tasks/{task_id}?view=FULL").json()
        if shown["state"] not in ("QUEUED", "INITIALIZING", "RUNNING"):
            return shown
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not end")


def upload(client: httpx.Client, path: Path) -> str:
    space = client.post("/toolferry/v1/files").json()["id"]
    with path.open("rb") as body:
        answer = client.put(f"/toolferry/v1/files/{space}/{path.name}", content=body)
    assert answer.status_code in (200, 201), answer.text
    return f"hub://{space}/{path.name}"


def test_docker_push_then_import_gives_a_complete_entry_that_runs(
    pushed: str, layout_hub: tuple[Hub, httpx.Client]
) -> None:
    _, client = layout_hub
    env = created(
        client.post(
            f"{ENVS}:import", json={"reference": pushed, "document": {"name": "lab/greeter"}}
        )
    )
    c = env["classification"]
    assert (env["kind"], c["title"], c["description"]) == ("oci-image", "Greeter", "Says hello")
    assert c["community"] == ["teaching"] and c["software_packages"] == ["busybox 1.35"]
    assert c["content_refs"] == ["https://git.example.org/greeter"]
    assert c["operating_system"] == ["linux"] and c["minimal_hardware"]["ram_gb"] == 0.1
    assert env["interface"]["parameters"][0]["default"] == "hello"
    assert env["content"]["platform"].startswith("linux/") and env["content"]["size_bytes"] > 0
    registry_digest = docker("inspect", "--format", "{{index .RepoDigests 0}}", pushed)
    assert env["digest"] == registry_digest.strip().split("@")[1]
    assert c["location"].endswith(f"/toolferry/lab/greeter@{env['digest']}")
    # Runs by name: the layout's image is loaded into the engine, pinned by its id.
    done = run_task(client, "catalogue:lab/greeter:1")
    assert done["state"] == "COMPLETE", done
    assert done["logs"][-1]["logs"][0]["stdout"] == "built\n"
    assert done["executors"][0]["image"].startswith("sha256:")
    assert (
        done["logs"][-1]["metadata"]["environment:executors[0]"] == f"lab/greeter:1@{env['digest']}"
    )


def test_import_into_the_registry_runs_by_pull(
    pushed: str, registry_hub: tuple[Hub, httpx.Client], registry: RegistryServer
) -> None:
    hub, client = registry_hub
    env = created(
        client.post(
            f"{ENVS}:import", json={"reference": pushed, "document": {"name": "lab/greeter"}}
        )
    )
    location = env["classification"]["location"]
    assert location.startswith(f"{registry.host}/{hub.settings.catalogue_namespace}/lab/greeter@")
    tags = httpx.get(f"{registry.url}/v2/{hub.settings.catalogue_namespace}/lab/greeter/tags/list")
    assert tags.json()["tags"] == ["1"]
    done = run_task(client, "catalogue:lab/greeter")
    assert done["state"] == "COMPLETE", done
    assert done["executors"][0]["image"] == location


def test_skopeo_copy_then_import(
    greeter: str,
    skopeo: str,
    registry: RegistryServer,
    layout_hub: tuple[Hub, httpx.Client],
    tmp_path: Path,
) -> None:
    _, client = layout_hub
    archive = tmp_path / "greeter.tar"
    docker("save", "-o", str(archive), greeter)
    target = f"{registry.host}/lab/skopeo-greeter:2"
    subprocess.run(
        [
            skopeo,
            "copy",
            "--dest-tls-verify=false",
            f"docker-archive:{archive}",
            f"docker://{target}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = created(
        client.post(f"{ENVS}:import", json={"reference": target, "document": {"name": "lab/sk"}})
    )
    assert env["classification"]["title"] == "Greeter" and env["interface"] is not None


def test_push_from_a_local_engine_as_an_archive(
    greeter: str, layout_hub: tuple[Hub, httpx.Client], tmp_path: Path
) -> None:
    _, client = layout_hub
    archive = tmp_path / "greeter.tar"
    docker("save", "-o", str(archive), greeter)
    env = created(
        client.post(
            f"{ENVS}:import",
            json={"url": upload(client, archive), "document": {"name": "lab/local"}},
        )
    )
    assert env["kind"] == "oci-image" and env["classification"]["title"] == "Greeter"
    assert run_task(client, "catalogue:lab/local:1")["state"] == "COMPLETE"


def test_exports_load_back(
    pushed: str, layout_hub: tuple[Hub, httpx.Client], skopeo: str, tmp_path: Path
) -> None:
    _, client = layout_hub
    created(
        client.post(f"{ENVS}:import", json={"reference": pushed, "document": {"name": "lab/x"}})
    )
    docker_tar = tmp_path / "x.docker.tar"
    answer = client.get(f"{ENVS}/lab/x/versions/1/export", params={"format": "docker-archive"})
    assert answer.status_code == 200, answer.text
    docker_tar.write_bytes(answer.content)
    docker("rmi", "-f", "lab/x:1")
    assert "lab/x:1" in docker("load", "-i", str(docker_tar))
    assert docker("run", "--rm", "--network", "none", "lab/x:1", "cat", "/built.txt") == "built\n"
    oci_tar = tmp_path / "x.oci.tar"
    oci_tar.write_bytes(
        client.get(f"{ENVS}/lab/x/versions/1/export", params={"format": "oci-archive"}).content
    )
    inspected = subprocess.run(
        [skopeo, "inspect", f"oci-archive:{oci_tar}"], capture_output=True, text=True, check=True
    )
    assert json.loads(inspected.stdout)["Labels"]["org.opencontainers.image.title"] == "Greeter"
    meta = client.get(f"{ENVS}/lab/x/versions/1/export", params={"format": "json"}).json()
    assert meta["name"] == "lab/x"
    assert client.get(f"{ENVS}/lab/x").json()["total_exports"] == 2


def test_a_recipe_is_stored_built_and_served_as_containerfile(
    busybox_image: str, layout_hub: tuple[Hub, httpx.Client], tmp_path: Path
) -> None:
    _, client = layout_hub
    recipe = tmp_path / "Dockerfile"
    recipe.write_text(DOCKERFILE)
    env = created(
        client.post(
            f"{ENVS}:import",
            json={"url": upload(client, recipe), "document": {"name": "lab/recipe"}},
        )
    )
    assert (env["kind"], env["classification"]["content_type"]) == ("recipe", "dockerfile")
    trs = client.get("/ga4gh/trs/v2/tools/lab%2Frecipe/versions/1/containerfile")
    assert trs.status_code == 200, trs.text
    assert "LABEL org.opencontainers.image.title" in trs.json()[0]["content"]
    built = created(client.post(f"{ENVS}/lab/recipe/versions/1:build", json={}))
    assert (built["version"], built["kind"], built["base"]) == (2, "oci-image", "lab/recipe:1")
    assert built["classification"]["title"] == "Greeter"
    done = run_task(client, "catalogue:lab/recipe:2")
    assert done["state"] == "COMPLETE" and done["logs"][-1]["logs"][0]["stdout"] == "built\n"
    refused = client.post(f"{ENVS}/lab/recipe/versions/2:build", json={})
    assert refused.status_code == 400 and "not a recipe" in refused.json()["detail"]
    broken = tmp_path / "broken" / "Dockerfile"
    broken.parent.mkdir()
    broken.write_text(f"FROM {services.TEST_IMAGE}\nRUN exit 3\n")
    created(
        client.post(
            f"{ENVS}:import", json={"url": upload(client, broken), "document": {"name": "lab/b"}}
        )
    )
    failed = client.post(f"{ENVS}/lab/b/versions/1:build", json={})
    assert failed.status_code == 400 and "the build failed" in failed.json()["detail"]
    assert [e["version"] for e in client.get(f"{ENVS}/lab/b/versions").json()["environments"]] == [
        1
    ]


def test_vm_disks_import_and_convert(
    qemu_img: str, layout_hub: tuple[Hub, httpx.Client], tmp_path: Path
) -> None:
    _, client = layout_hub
    disk = tmp_path / "vm.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    env = created(
        client.post(
            f"{ENVS}:import",
            json={
                "url": upload(client, disk),
                "document": {
                    "name": "lab/vm",
                    "classification": {"operating_system": ["debian 12"]},
                },
            },
        )
    )
    assert (env["kind"], env["classification"]["content_type"]) == ("vm-disk", "qcow2")
    assert env["content"]["virtual_size_bytes"] == 64 << 20
    assert env["classification"]["operating_system"] == ["debian 12"]
    for fmt in ("raw", "vmdk", "original"):
        answer = client.get(f"{ENVS}/lab/vm/versions/1/export", params={"format": fmt})
        assert answer.status_code == 200, answer.text
        out = tmp_path / f"out.{fmt}"
        out.write_bytes(answer.content)
        info = json.loads(
            subprocess.run(
                [qemu_img, "info", "--output=json", str(out)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert info["format"] == ("qcow2" if fmt == "original" else fmt)
        assert info["virtual-size"] == 64 << 20
    task = {"executors": [{"image": "catalogue:lab/vm:1", "command": ["true"]}]}
    answer = client.post(f"{TES}/tasks", json=task)
    assert answer.status_code == 400 and "vm-disk" in answer.json()["detail"]


def test_bad_imports_are_4xx_and_store_nothing(
    pushed: str,
    registry: RegistryServer,
    layout_hub: tuple[Hub, httpx.Client],
    qemu_img: str,
    tmp_path: Path,
) -> None:
    hub, client = layout_hub

    def refused(body: dict[str, Any], status: int, *words: str) -> None:
        answer = client.post(f"{ENVS}:import", json=body)
        assert answer.status_code == status, answer.text
        for word in words:
            assert word in answer.json()["detail"], answer.json()["detail"]

    doc = {"name": "lab/bad"}
    refused({"reference": "UPPER/Case::x", "document": doc}, 400, "reference")
    refused({"reference": "127.0.0.1:9/lab/x:1", "document": doc}, 400, "does not answer")
    wrong = "sha256:" + "1" * 64
    refused({"reference": f"{pushed.split(':1')[0]}@{wrong}", "document": doc}, 404)
    refused({"reference": pushed, "document": {**doc, "digest": wrong}}, 400, "does not match")
    refused({"reference": pushed, "document": {**doc, "kind": "vm-disk"}}, 400, "kind")
    refused({"reference": pushed, "document": {}}, 400, "name")
    refused(
        {"reference": pushed, "document": {**doc, "classification": {"user_interface": "tui"}}},
        400,
        "classification.user_interface",
    )
    refused({"reference": pushed, "url": "hub://x/y", "document": doc}, 400, "one of them")
    backed = tmp_path / "backed.qcow2"
    base = tmp_path / "base.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    subprocess.run(
        [qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(backed)],
        check=True,
    )
    refused({"url": upload(client, backed), "document": doc}, 400, "backing")
    assert client.get(f"{ENVS}/lab/bad").status_code == 404
    assert not (hub.settings.data_dir / "oci" / "toolferry" / "lab" / "bad").exists()
    created(
        client.post(f"{ENVS}:import", json={"reference": pushed, "document": {**doc, "version": 1}})
    )
    refused({"reference": pushed, "document": {**doc, "version": 1}}, 409, "lab/bad:1")


def test_loaded_images_are_tagged_only_in_the_catalogue_namespace(
    pushed: str, layout_hub: tuple[Hub, httpx.Client]
) -> None:
    _, client = layout_hub
    env = created(
        client.post(f"{ENVS}:import", json={"reference": pushed, "document": {"name": "lab/ns"}})
    )
    assert run_task(client, "catalogue:lab/ns:1")["state"] == "COMPLETE"
    tags = json.loads(
        docker("image", "inspect", "--format", "{{json .RepoTags}}", done_image(client))
    )
    assert "lab/ns:1" not in tags  # the engine never holds a name others could run
    # Neither the catalogue's tag nor the image id runs as an ordinary image.
    catalogue_tag = f"toolferry-catalogue/image:{env['digest'].split(':')[1]}"
    for image in (catalogue_tag, done_image(client)):
        answer = client.post(
            f"{TES}/tasks", json={"executors": [{"image": image, "command": ["true"]}]}
        )
        assert answer.status_code == 400, answer.text


def done_image(client: httpx.Client) -> str:
    tasks = client.get(f"{TES}/tasks", params={"view": "BASIC"}).json()["tasks"]
    image: str = tasks[0]["executors"][0]["image"]
    return image


def test_the_catalogue_registry_is_reached_only_through_entries(
    pushed: str, registry_hub: tuple[Hub, httpx.Client], registry: RegistryServer
) -> None:
    _, client = registry_hub
    env = created(
        client.post(f"{ENVS}:import", json={"reference": pushed, "document": {"name": "lab/p"}})
    )
    location = env["classification"]["location"]
    own = location.split("@")[0] + ":1"
    again = client.post(f"{ENVS}:import", json={"reference": own, "document": {"name": "x/y"}})
    assert again.status_code == 400 and "catalogue's own content" in again.json()["detail"]
    for image in (own, location):
        answer = client.post(
            f"{TES}/tasks", json={"executors": [{"image": image, "command": ["true"]}]}
        )
        assert answer.status_code == 400 and "holds the catalogue's content" in answer.text
    squat = {
        "name": "lab/squat",
        "kind": "oci-image",
        "digest": env["digest"],
        "classification": {"title": "S", "content_type": "oci", "location": location},
    }
    created(client.post(ENVS, json=squat))
    answer = client.post(
        f"{TES}/tasks",
        json={"executors": [{"image": "catalogue:lab/squat:1", "command": ["true"]}]},
    )
    assert answer.status_code == 400 and "content of another entry" in answer.json()["detail"]


def test_imports_of_one_name_at_once_get_consecutive_versions(
    qemu_img: str, layout_hub: tuple[Hub, httpx.Client], tmp_path: Path
) -> None:
    hub, client = layout_hub
    urls = []
    for i in range(3):
        disk = tmp_path / f"d{i}.qcow2"
        subprocess.run(
            [qemu_img, "create", "-q", "-f", "qcow2", str(disk), f"{i + 1}M"], check=True
        )
        urls.append(upload(client, disk))
    from concurrent.futures import ThreadPoolExecutor

    def one(url: str) -> dict[str, Any]:
        return created(
            client.post(f"{ENVS}:import", json={"url": url, "document": {"name": "lab/race"}})
        )

    with ThreadPoolExecutor(3) as pool:
        envs = list(pool.map(one, urls))
    assert sorted(e["version"] for e in envs) == [1, 2, 3]
    store = hub.artifacts.store
    for e in envs:
        assert store.resolve("toolferry/lab/race", str(e["version"])).digest == e["digest"]


def test_measured_facts_win_and_bad_file_imports_store_nothing(
    qemu_img: str, layout_hub: tuple[Hub, httpx.Client], tmp_path: Path
) -> None:
    hub, client = layout_hub
    disk = tmp_path / "m.qcow2"
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(disk), "4M"], check=True)
    url = upload(client, disk)
    given = {"name": "lab/m", "content": {"size_bytes": 1, "virtual_size_bytes": 1}}
    env = created(client.post(f"{ENVS}:import", json={"url": url, "document": given}))
    assert env["content"]["virtual_size_bytes"] == 4 << 20
    assert env["content"]["size_bytes"] == disk.stat().st_size
    layout = hub.settings.data_dir / "oci" / "toolferry" / "lab"
    for document, says in (
        ({"name": "lab/n", "digest": "sha256:" + "1" * 64}, "leave it out"),
        (
            {"name": "lab/n", "classification": {"checksum": "sha256:" + "2" * 64}},
            "does not match the file",
        ),
        ({"name": "lab/index.json"}, "is reserved"),
        ({"name": "lab/n", "classification": "text"}, "must be a JSON object"),
    ):
        answer = client.post(f"{ENVS}:import", json={"url": url, "document": document})
        assert answer.status_code == 400 and says in answer.json()["detail"], answer.text
    assert sorted(p.name for p in layout.iterdir()) == ["m"]


def test_an_ova_is_imported_with_its_hardware_and_exported_as_qcow2(
    qemu_img: str, layout_hub: tuple[Hub, httpx.Client], tmp_path: Path
) -> None:
    from tests.unit.catalogue.disks.builders import ova_bytes, ovf_xml

    _, client = layout_hub
    vmdk = tmp_path / "disk1.vmdk"
    subprocess.run(
        [
            qemu_img,
            "create",
            "-q",
            "-f",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            str(vmdk),
            "16M",
        ],
        check=True,
    )
    disk = vmdk.read_bytes()
    ovf = ovf_xml(disk_size=len(disk), capacity=str(16 << 20), capacity_units="byte")
    ova = tmp_path / "appliance.ova"
    ova.write_bytes(ova_bytes([("vm.ovf", ovf), ("disk1.vmdk", disk)]))
    env = created(
        client.post(
            f"{ENVS}:import", json={"url": upload(client, ova), "document": {"name": "lab/ova"}}
        )
    )
    c = env["classification"]
    assert (env["kind"], c["content_type"]) == ("vm-disk", "ova")
    assert c["virtual_hardware"]["cpu_cores"] == 2 and c["virtual_hardware"]["ram_gb"] == 4
    assert c["operating_system"] == ["Ubuntu Linux (64-bit)"]
    assert env["content"]["virtual_size_bytes"] == 16 << 20
    answer = client.get(f"{ENVS}/lab/ova/versions/1/export", params={"format": "qcow2"})
    assert answer.status_code == 200, answer.text
    out = tmp_path / "out.qcow2"
    out.write_bytes(answer.content)
    info = json.loads(
        subprocess.run(
            [qemu_img, "info", "--output=json", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert (info["format"], info["virtual-size"]) == ("qcow2", 16 << 20)
