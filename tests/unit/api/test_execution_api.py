"""Execution environments and matching: where a catalogue version can run, and what can run
on this hub's site (ViCE table IV and hardware), with reasons when not."""

from __future__ import annotations

import platform
from typing import Any

import httpx

ENVS = "/api/v1/environments"
PLACES = "/api/v1/execution-environments"


def entry(name: str, kind: str, content_type: str, **classification: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "digest": "sha256:" + "a" * 64,
        "classification": {"title": name, "content_type": content_type, **classification},
    }


def test_the_site_is_classified(client: httpx.Client) -> None:
    [site] = client.get(PLACES).json()
    assert site["name"] == "local"
    assert site["runtimes"] == ["fake"]
    assert site["management_layer"] == "basic"
    assert site["hardware"]["cpu_cores"] == 2
    machine = platform.machine()
    assert site["hardware"]["cpu_architecture"] == {"x86_64": "amd64", "aarch64": "arm64"}.get(
        machine, machine
    )
    assert site["operating_system"] and site["hardware"]["disk_gb"] > 0


def test_matches_say_where_and_why_not(client: httpx.Client) -> None:
    big = entry("lab/big", "oci-image", "oci", minimal_hardware={"cpu_cores": 64})
    assert client.post(ENVS, json=big).status_code == 201
    [found] = client.get(f"{ENVS}/lab/big/versions/1/matches").json()["matches"]
    assert found["environment"] == "lab/big:1" and found["ok"] is False
    # The fake runtime is no OCI platform, so the image has no runtime here either.
    assert any("needs 64 CPU cores, has 2" in r for r in found["reasons"])
    assert any("cannot run on fake" in r for r in found["reasons"])
    missing = client.get(f"{ENVS}/lab/none/versions/1/matches")
    assert missing.status_code == 404


def test_what_can_run_here(client: httpx.Client) -> None:
    assert client.post(ENVS, json=entry("lab/img", "oci-image", "oci")).status_code == 201
    answer = client.get(f"{PLACES}/local/environments")
    assert answer.status_code == 200 and answer.json()["matches"] == []
    every = client.get(f"{PLACES}/local/environments", params={"all": "true"}).json()["matches"]
    assert [m["environment"] for m in every] == ["lab/img:1"]
    assert client.get(f"{PLACES}/elsewhere/environments").status_code == 404
