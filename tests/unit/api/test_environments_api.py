"""The catalogue API (/api/v1/environments): publish, read by name with '/', search,
deprecate, delete, rate; 4xx answers that name the problem and store nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from toolferry.hub import Hub

ENVS = "/api/v1/environments"


def doc(name: str = "lab/align", digit: str = "a", **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "oci-image",
        "digest": "sha256:" + digit * 64,
        "classification": {
            "title": "Aligner",
            "content_type": "oci",
            "operating_system": ["ubuntu 22.04"],
            "software_packages": ["samtools 1.17"],
        },
        **changes,
    }


def refs(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [f"{e['name']}:{e['version']}" for e in answer.json()["environments"]]


def test_publish_and_read_back_by_a_name_with_slashes(client: httpx.Client) -> None:
    first = client.post(ENVS, json=doc())
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["name"], body["version"], body["status"], body["owner_id"]) == (
        "lab/align",
        1,
        "active",
        "local",
    )
    assert body["classification"]["software_packages"] == ["samtools 1.17"]
    second = client.post(ENVS, json=doc(digit="b"))
    assert (second.status_code, second.json()["version"], second.json()["base"]) == (
        201,
        2,
        "lab/align:1",
    )
    assert client.get(f"{ENVS}/lab/align").json()["version"] == 2
    assert client.get(f"{ENVS}/lab/align/versions/1").json() == body
    assert refs(client.get(f"{ENVS}/lab/align/versions")) == ["lab/align:1", "lab/align:2"]


def test_a_second_publish_of_a_version_is_a_409_saying_why(client: httpx.Client) -> None:
    assert client.post(ENVS, json=doc()).status_code == 201
    again = client.post(ENVS, json=doc(digit="b", version=1))
    assert again.status_code == 409
    assert "lab/align:1 is already published" in again.json()["detail"]
    assert client.get(f"{ENVS}/lab/align/versions/1").json()["digest"].endswith("a" * 64)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (doc(digest="md5:abc"), "digest"),
        ({k: v for k, v in doc().items() if k != "digest"}, "digest: field required"),
        (doc(name="Lab/Align"), "name"),
        (doc(name="lab/versions/x"), "name: the component 'versions' is reserved"),
        (doc(version=2), "version"),
        (doc(version=True), "version"),
        (doc(id="mine"), "id"),
        (doc(kind="floppy"), "kind"),
        (doc(classification={"title": "T"}), "classification.content_type"),
        (doc(permissions="rwx"), "permissions"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_documents_are_400s_naming_the_field_and_store_nothing(
    client: httpx.Client, body: Any, where: str
) -> None:
    answer = client.post(ENVS, json=body)
    assert answer.status_code == 400, answer.text
    assert where in answer.json()["detail"]
    assert refs(client.get(ENVS, params={"include_deleted": True})) == []


def test_missing_entries_and_bad_versions(client: httpx.Client) -> None:
    client.post(ENVS, json=doc())
    for path in ("/nope", "/nope/versions", "/lab/align/versions/2", "/lab"):
        answer = client.get(ENVS + path)
        assert answer.status_code == 404 and "no environment" in answer.json()["detail"]
    answer = client.get(f"{ENVS}/lab/align/versions/one")
    assert answer.status_code == 400 and answer.json()["detail"].startswith("version:")
    assert client.get(f"{ENVS}/lab/align/versions/0").status_code == 400


def test_deprecate_delete_and_search(client: httpx.Client) -> None:
    client.post(ENVS, json=doc())
    client.post(ENVS, json=doc("lab/qc", classification={"title": "QC", "content_type": "oci"}))
    assert refs(client.get(ENVS, params={"q": "ubuntu, has samtools"})) == ["lab/align:1"]
    assert refs(client.get(ENVS, params={"q": "qc"})) == ["lab/qc:1"]

    answer = client.post(f"{ENVS}/lab/align/versions/1:deprecate")
    assert (answer.status_code, answer.json()["status"]) == (200, "deprecated")
    answer = client.delete(f"{ENVS}/lab/align/versions/1")
    assert (answer.status_code, answer.json()["status"]) == (200, "deleted")
    assert client.get(f"{ENVS}/lab/align/versions/1").json()["status"] == "deleted"
    assert refs(client.get(ENVS)) == ["lab/qc:1"]
    assert refs(client.get(ENVS, params={"include_deleted": "true"})) == [
        "lab/align:1",
        "lab/qc:1",
    ]
    again = client.post(f"{ENVS}/lab/align/versions/1:deprecate")
    assert again.status_code == 409 and "deleted" in again.json()["detail"]


def test_ratings(client: httpx.Client) -> None:
    client.post(ENVS, json=doc())
    rate = f"{ENVS}/lab/align/versions/1/ratings"
    assert client.post(rate, json={"rating": 5}).json()["ratings"] == [5]
    assert client.post(rate, json={"rating": 3}).json()["ratings"] == [5, 3]
    for bad, where in (
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": "5"}, "rating"),
        ({}, "rating: field required"),
        ({"rating": 4, "x": 1}, "x"),
    ):
        answer = client.post(rate, json=bad)
        assert answer.status_code == 400 and answer.json()["detail"].startswith(where), bad
    assert client.get(f"{ENVS}/lab/align/versions/1").json()["ratings"] == [5, 3]
    assert client.post(f"{ENVS}/lab/nope/versions/1/ratings", json={"rating": 1}).status_code == (
        404
    )


def test_methods_per_path_are_exact(client: httpx.Client) -> None:
    for path, allowed in (
        ("/lab/align", "GET, HEAD"),
        ("/lab/align/versions", "GET, HEAD"),
        ("/lab/align/versions/1", "DELETE, GET, HEAD"),
        ("/lab/align/versions/1:deprecate", "POST"),
        ("/lab/align/versions/1/ratings", "POST"),
    ):
        answer = client.request("PATCH", ENVS + path)
        assert (answer.status_code, answer.headers["allow"]) == (405, allowed), path


def test_owners_readers_and_strangers(hub: Hub, client: httpx.Client) -> None:
    _, alice = hub.tokens.create("alice")
    _, bob = hub.tokens.create("bob")
    hub.authenticate.mode = "token"

    def as_(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    assert client.get(ENVS).status_code == 401
    assert client.post(ENVS, json=doc(), headers=as_(alice)).json()["owner_id"] == "alice"
    assert client.get(f"{ENVS}/lab/align", headers=as_(bob)).status_code == 404
    assert refs(client.get(ENVS, headers=as_(bob))) == []
    answer = client.post(ENVS, json=doc(digit="b"), headers=as_(bob))
    assert answer.status_code == 403 and "taken" in answer.json()["detail"]

    client.post(ENVS, json=doc("lab/open", permissions="rw,r-,r-"), headers=as_(alice))
    assert client.get(f"{ENVS}/lab/open", headers=as_(bob)).status_code == 200
    rated = client.post(f"{ENVS}/lab/open/versions/1/ratings", json={"rating": 4}, headers=as_(bob))
    assert rated.json()["ratings"] == [4]
    refused = client.delete(f"{ENVS}/lab/open/versions/1", headers=as_(bob))
    assert refused.status_code == 403 and "not change" in refused.json()["detail"]


def test_the_openapi_documents_the_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths[ENVS]) == {"get", "post"}
    assert set(paths[ENVS + "/{name}/versions/{version}"]) == {"get", "delete"}
    assert "409" in paths[ENVS]["post"]["responses"]


def test_facets_filter_and_count(client: httpx.Client) -> None:
    bio = doc("lab/align")
    bio["classification"] |= {"community": ["Biology"], "user_interface": "cli"}
    phys = doc("lab/sim", digit="b")
    phys["classification"] |= {
        "community": ["physics"],
        "software_packages": ["root 6.30", "samtools 1.9"],
    }
    for body in (bio, phys):
        assert client.post(ENVS, json=body).status_code == 201
    assert refs(client.get(ENVS, params={"community": "biology"})) == ["lab/align:1"]
    both = client.get(ENVS, params=[("community", "biology"), ("community", "Physics")])
    assert refs(both) == ["lab/align:1", "lab/sim:1"]
    assert refs(client.get(ENVS, params={"software": "root", "os": "ubuntu 22.04"})) == [
        "lab/sim:1"
    ]
    counted = client.get(ENVS, params={"facets": "true"}).json()["facets"]
    assert counted["software"] == {"samtools": 2, "root": 1}
    assert counted["community"] == {"Biology": 1, "physics": 1}
    assert counted["user_interface"] == {"cli": 1}
    assert counted["kind"] == {"oci-image": 2}
    assert "facets" not in client.get(ENVS).json() or client.get(ENVS).json()["facets"] is None
    bad = client.get(ENVS, params={"kind": "floppy"})
    assert bad.status_code == 400 and "kind" in bad.json()["detail"]
