"""Executor images that name catalogue entries: resolved and pinned at submission, permission
and review checked, recorded in the task, counted live while the task runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.fakes import FakeRuntime

from toolferry.config import Settings
from toolferry.hub import Hub, serve_embedded
from toolferry.runtimes.base import ExecSpec

TES = "/ga4gh/tes/v1"
ENVS = "/api/v1/environments"
DIGEST = "sha256:" + "a" * 64
LOCATION = f"127.0.0.1:5000/toolferry/lab/align@{DIGEST}"


def entry(**changes: Any) -> dict[str, Any]:
    return {
        "name": "lab/align",
        "kind": "oci-image",
        "digest": DIGEST,
        "classification": {"title": "Aligner", "content_type": "oci", "location": LOCATION},
        **changes,
    }


def task(image: str) -> dict[str, Any]:
    return {"executors": [{"image": image, "command": ["true"]}]}


def submit(client: httpx.Client, image: str) -> httpx.Response:
    return client.post(f"{TES}/tasks", json=task(image))


def full(client: httpx.Client, task_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(f"{TES}/tasks/{task_id}?view=FULL").json()
    return answer


def refused(answer: httpx.Response, *words: str) -> None:
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert "executors[0].image" in detail
    for word in words:
        assert word in detail, detail


@pytest.fixture
def blocking(tmp_path: Path) -> Iterator[tuple[Hub, httpx.Client, FakeRuntime]]:
    """A hub whose executors run until ``runtime.release`` is set."""

    def hold(spec: ExecSpec, rt: FakeRuntime) -> int:
        rt.release.wait(10)
        return 0

    runtime = FakeRuntime(hold)
    settings = Settings(data_dir=tmp_path, capacity_cpus=2)
    with (
        serve_embedded(settings, runtimes={"fake": runtime}) as (hub, url),
        httpx.Client(base_url=url) as client,
    ):
        yield hub, client, runtime
        runtime.release.set()


@pytest.mark.parametrize(
    "image",
    [
        "catalogue:lab/align:1",
        "catalogue:lab/align",
        f"catalogue:lab/align@{DIGEST}",
        f"catalogue:{DIGEST}",
        "lab/align:1",
        DIGEST,
    ],
)
def test_an_entry_is_pinned_and_recorded(
    blocking: tuple[Hub, httpx.Client, FakeRuntime], image: str
) -> None:
    hub, client, runtime = blocking
    assert client.post(ENVS, json=entry()).status_code == 201
    answer = submit(client, image)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["id"]
    shown = full(client, task_id)
    assert shown["executors"][0]["image"] == LOCATION
    assert shown["logs"][0]["metadata"]["environment:executors[0]"] == f"lab/align:1@{DIGEST}"
    assert hub.store.get(task_id).spec.environments[0].requested == image
    for _ in range(500):  # counted while the task lives ...
        if client.get(f"{ENVS}/lab/align").json()["active_deployments"] == 1:
            break
        time.sleep(0.01)
    assert client.get(f"{ENVS}/lab/align").json()["active_deployments"] == 1
    runtime.release.set()
    for _ in range(500):  # ... and no longer once it ended
        if full(client, task_id)["state"] == "COMPLETE":
            break
        time.sleep(0.01)
    assert full(client, task_id)["state"] == "COMPLETE"
    assert client.get(f"{ENVS}/lab/align").json()["active_deployments"] == 0


def test_other_images_are_left_alone(client: httpx.Client) -> None:
    assert client.post(ENVS, json=entry()).status_code == 201
    others = ("lab/other:1", "alpine:3", "lab/align:latest", "lab/align:7")
    for image in (*others, "busybox@sha256:" + "b" * 64, f"ghcr.io/x/y@{DIGEST}"):
        answer = submit(client, image)
        assert answer.status_code == 200, answer.text
        shown = full(client, answer.json()["id"])
        assert shown["executors"][0]["image"] == image
        assert all(
            "environment:executors[0]" not in log.get("metadata", {}) for log in shown["logs"]
        )


def test_unknown_and_malformed_entries_are_refused(client: httpx.Client) -> None:
    before = len(client.get(f"{TES}/tasks").json().get("tasks", []))
    assert client.post(ENVS, json=entry()).status_code == 201
    refused(submit(client, "catalogue:lab/nothing:1"), "no environment lab/nothing")
    refused(submit(client, "catalogue:lab/align:7"), "no environment lab/align:7")
    refused(submit(client, "catalogue:" + "sha256:" + "c" * 64), "no catalogue entry")
    refused(submit(client, "catalogue:Not A Name"), "is not 'catalogue:NAME'")
    assert len(client.get(f"{TES}/tasks").json().get("tasks", [])) == before


def test_deleted_recipes_and_vm_disks_do_not_run(client: httpx.Client) -> None:
    assert client.post(ENVS, json=entry()).status_code == 201
    assert client.delete(f"{ENVS}/lab/align/versions/1").status_code == 200
    refused(submit(client, "catalogue:lab/align:1"), "deleted")
    refused(submit(client, "catalogue:lab/align"), "every version of lab/align is deleted")
    recipe = entry(name="lab/recipe", kind="recipe")
    recipe["classification"] = {"title": "R", "content_type": "dockerfile"}
    assert client.post(ENVS, json=recipe).status_code == 201, client.post(ENVS, json=recipe).text
    refused(submit(client, "catalogue:lab/recipe:1"), "is a recipe", "toolferry env build")
    disk = entry(name="lab/disk", kind="vm-disk")
    disk["classification"] = {"title": "D", "content_type": "qcow2"}
    assert client.post(ENVS, json=disk).status_code == 201
    refused(submit(client, "catalogue:lab/disk:1"), "vm-disk", "OCI container images")


def test_an_entry_without_a_pinned_location_is_refused(client: httpx.Client) -> None:
    body = entry()
    body["classification"] = {"title": "Aligner", "content_type": "oci"}
    assert client.post(ENVS, json=body).status_code == 201
    refused(submit(client, "catalogue:lab/align:1"), "no registry location pinned")


def test_a_site_may_require_trusted_environments(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, capacity_cpus=2, catalogue_require_review="trusted")
    with (
        serve_embedded(settings, runtimes={"fake": FakeRuntime()}) as (_, url),
        httpx.Client(base_url=url) as client,
    ):
        assert client.post(ENVS, json=entry()).status_code == 201
        refused(submit(client, "catalogue:lab/align:1"), "reviewed as trusted", "is draft")
        review = f"{ENVS}/lab/align/versions/1:review"
        assert client.post(review, json={"review": "in-review"}).status_code == 200
        refused(submit(client, "catalogue:lab/align:1"), "is in-review")
        assert client.post(review, json={"review": "trusted"}).status_code == 200
        assert submit(client, "catalogue:lab/align:1").status_code == 200
        bad = client.post(review, json={"review": "approved"})
        assert bad.status_code == 400 and "review" in bad.json()["detail"]


def test_only_who_may_read_an_entry_may_run_it(tmp_path: Path) -> None:
    from toolferry.catalogue.images import ImageResolver, pinned_location
    from toolferry.catalogue.service import CatalogueService
    from toolferry.domain.errors import InvalidTask
    from toolferry.domain.task import Executor, TaskSpec
    from toolferry.security.identity import Identity
    from toolferry.store.db import Database
    from toolferry.store.environments import SqlEnvironmentStore

    db = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    catalogue = CatalogueService(SqlEnvironmentStore(db))
    catalogue.register(entry(group_id="lab", permissions="rw,r-,--"), Identity(user="alice"))
    resolver = ImageResolver(catalogue, pinned_location)
    spec = TaskSpec(executors=(Executor(image="catalogue:lab/align:1", command=("true",)),))
    member = Identity(user="bob", groups=frozenset({"lab"}))
    assert resolver.resolve(spec, member).executors[0].image == LOCATION
    with pytest.raises(InvalidTask, match="no environment lab/align:1"):
        resolver.resolve(spec, Identity(user="eve"))
    db.close()


def test_catalogue_content_is_not_reachable_as_an_ordinary_image(client: httpx.Client) -> None:
    assert client.post(ENVS, json=entry()).status_code == 201
    for image, says in (
        ("toolferry-catalogue/image:" + "a" * 64, "the catalogue's own"),
        ("sha256:" + "c" * 64, "not given by image id"),
        ("3f57d9401f8d", "not given by image id"),
    ):
        refused(submit(client, image), says)


def test_a_bare_name_version_is_an_entry_only_if_yours_or_trusted(tmp_path: Path) -> None:
    from toolferry.catalogue.images import ImageResolver, pinned_location
    from toolferry.catalogue.service import CatalogueService
    from toolferry.domain.environment import Review
    from toolferry.domain.task import Executor, TaskSpec
    from toolferry.security.identity import Identity
    from toolferry.store.db import Database
    from toolferry.store.environments import SqlEnvironmentStore

    db = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    catalogue = CatalogueService(SqlEnvironmentStore(db))
    mallory, alice = Identity(user="mallory"), Identity(user="alice")
    catalogue.register(entry(name="python", permissions="rw,r-,r-"), mallory)
    resolver = ImageResolver(catalogue, pinned_location)
    spec = TaskSpec(executors=(Executor(image="python:1", command=("true",)),))
    assert resolver.resolve(spec, alice).executors[0].image == "python:1"  # not taken over
    assert resolver.resolve(spec, mallory).executors[0].image == LOCATION  # the owner's own
    catalogue.review("python", 1, Review.IN_REVIEW, mallory)
    catalogue.review("python", 1, Review.TRUSTED, Identity(user="root", admin=True))
    assert resolver.resolve(spec, alice).executors[0].image == LOCATION  # trusted by reviewers
    db.close()


def test_a_starting_hub_removes_what_killed_imports_left(tmp_path: Path) -> None:
    leftover = tmp_path / "tmp" / "catalogue" / "import-x" / "upload"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half an image")
    settings = Settings(data_dir=tmp_path, capacity_cpus=2)
    with serve_embedded(settings, runtimes={"fake": FakeRuntime()}):
        assert not leftover.parent.exists()
