"""An Apptainer SIF uploaded to the hub is imported as an OCI artifact and exported back
byte for byte (no apptainer needed: the SIF is written by hand)."""

from __future__ import annotations

import json

import httpx
from tests.unit.catalogue.disks.builders import (
    GENERIC_JSON,
    SifObject,
    sif_bytes,
    squashfs_partition,
)

from toolferry.hub import Hub

ENVS = "/api/v1/environments"


def test_a_sif_round_trips_through_the_catalogue(hub: Hub, client: httpx.Client) -> None:
    labels = {"org.opencontainers.image.title": "Aligner SIF", "toolferry.community": "biology"}
    metadata = {"attributes": {"labels": labels, "deffile": "Bootstrap: docker\n"}}
    image = sif_bytes(
        [
            SifObject(GENERIC_JSON, json.dumps(metadata).encode(), name="inspect-metadata.json"),
            squashfs_partition(),
        ]
    )
    space = client.post("/toolferry/v1/files").json()["id"]
    assert client.put(f"/toolferry/v1/files/{space}/a.sif", content=image).status_code == 201
    answer = client.post(
        f"{ENVS}:import",
        json={"url": f"hub://{space}/a.sif", "document": {"name": "lab/sif"}},
    )
    assert answer.status_code == 201, answer.text
    env = answer.json()
    c = env["classification"]
    assert (env["kind"], c["content_type"], c["title"]) == ("apptainer-sif", "sif", "Aligner SIF")
    assert c["community"] == ["biology"] and c["runtime_implementation"] == "apptainer"
    assert env["content"]["platform"] == "linux/amd64"
    assert env["content"]["size_bytes"] == len(image)
    manifest = json.loads(hub.artifacts.store.manifest("toolferry/lab/sif", env["digest"]))
    assert manifest["config"]["mediaType"] == "application/vnd.sylabs.sif.config.v1+json"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.sylabs.sif.layer.v1.sif"
    exported = client.get(f"{ENVS}/lab/sif/versions/1/export", params={"format": "sif"})
    assert exported.status_code == 200 and exported.content == image
    assert "lab_sif-1.sif" in exported.headers["content-disposition"]
    wrong = client.get(f"{ENVS}/lab/sif/versions/1/export", params={"format": "qcow2"})
    assert wrong.status_code == 400 and "exports as sif, json" in wrong.json()["detail"]
