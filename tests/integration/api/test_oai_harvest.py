"""Sickle, an OAI-PMH harvester from PyPI, harvests a real hub unmodified: every record over
several pages in both formats, a set, single records, tombstones, by GET and by POST."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sickle import Sickle, oaiexceptions
from tests.unit.fakes import FakeRuntime

from toolferry.api.oai import OaiSettings
from toolferry.config import Settings
from toolferry.hub import serve_embedded

PAGE = 3
ID = "oai:toolferry.invalid:"
# name → (kind, content type, communities); every one readable by anyone.
ENTRIES = {
    "lab/align": ("oci-image", "oci", ["Genomics"]),
    "lab/qc": ("oci-image", "oci", ["Genomics", "Teaching"]),
    "lab/build": ("recipe", "dockerfile", ["Teaching"]),
    "hpc/mpi": ("vm-disk", "qcow2", ["Physics"]),
    "hpc/sif": ("apptainer-sif", "sif", ["Physics"]),
    "lab/recipe2": ("recipe", "containerfile", []),
    "old/tool": ("oci-image", "oci", ["Genomics"]),
}


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[str]:
    """A hub with the entries above (old/tool deleted, one private entry) and a page size
    of 3; its OAI-PMH base URL."""
    settings = Settings(data_dir=tmp_path, capacity_cpus=2)
    with serve_embedded(settings, runtimes={"fake": FakeRuntime()}) as (hub, url):
        hub.app.state.oai = OaiSettings(page_size=PAGE)
        with httpx.Client(base_url=url) as client:
            for i, (name, (kind, content, community)) in enumerate(ENTRIES.items()):
                body: dict[str, Any] = {
                    "name": name,
                    "kind": kind,
                    "digest": f"sha256:{i:064x}",
                    "permissions": "rw,r-,r-",
                    "classification": {
                        "title": f"Title of {name}",
                        "content_type": content,
                        "community": community,
                        "software_packages": ["samtools 1.17"],
                    },
                }
                assert client.post("/api/v1/environments", json=body).status_code == 201
            secret = body | {"name": "lab/secret", "permissions": "rw,r-,--"}
            assert client.post("/api/v1/environments", json=secret).status_code == 201
            assert client.delete("/api/v1/environments/old/tool/versions/1").status_code == 200
        yield f"{url}/oai"


def harvest(iterator: Any) -> tuple[list[Any], set[str]]:
    """Every item, and the cursors of the pages they came on (Sickle follows the tokens)."""
    items, cursors = [], set()
    for item in iterator:
        items.append(item)
        token = iterator.resumption_token
        cursors.add(token.cursor if token is not None else "single page")
    return items, cursors


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sickle_harvests_every_record_in_both_formats(endpoint: str, method: str) -> None:
    sickle = Sickle(endpoint, http_method=method)
    identify = sickle.Identify()
    assert (identify.baseURL, identify.deletedRecord, identify.granularity) == (
        endpoint,
        "persistent",
        "YYYY-MM-DDThh:mm:ssZ",
    )

    records, cursors = harvest(sickle.ListRecords(metadataPrefix="oai_dc"))
    assert cursors == {"0", "3", "6"}
    assert sorted(r.header.identifier for r in records) == sorted(ID + f"{n}:1" for n in ENTRIES)
    deleted = [r for r in records if r.deleted]
    assert [r.header.identifier for r in deleted] == [ID + "old/tool:1"]
    live = {r.header.identifier: r.metadata for r in records if not r.deleted}
    assert live[ID + "lab/qc:1"]["title"] == ["Title of lab/qc"]
    assert live[ID + "lab/qc:1"]["subject"] == ["Genomics", "Teaching", "samtools 1.17"]
    assert live[ID + "hpc/mpi:1"]["format"] == ["qcow2"]

    native, cursors = harvest(sickle.ListRecords(metadataPrefix="toolferry"))
    assert len(cursors) == 3
    full = {r.header.identifier: r.metadata for r in native if not r.deleted}
    assert len(full) == len(ENTRIES) - 1
    assert full[ID + "lab/build:1"]["kind"] == ["recipe"]
    assert full[ID + "lab/build:1"]["content_type"] == ["dockerfile"]
    assert full[ID + "lab/build:1"]["permissions"] == ["rw,r-,r-"]


def test_sickle_lists_identifiers_of_a_set_and_gets_single_records(endpoint: str) -> None:
    sickle = Sickle(endpoint)
    specs = {s.setSpec: s.setName for s in sickle.ListSets()}
    assert specs["community:genomics"] == "Genomics"
    assert {"community", "kind", "kind:recipe", "kind:apptainer-sif"} <= set(specs)

    headers, _ = harvest(sickle.ListIdentifiers(metadataPrefix="oai_dc", set="community:genomics"))
    assert sorted(h.identifier for h in headers) == [
        ID + "lab/align:1",
        ID + "lab/qc:1",
        ID + "old/tool:1",
    ]
    assert [h.deleted for h in headers if h.identifier.endswith("old/tool:1")] == [True]
    everything, cursors = harvest(sickle.ListIdentifiers(metadataPrefix="toolferry", set="kind"))
    assert len(everything) == len(ENTRIES) and len(cursors) == 3

    record = sickle.GetRecord(identifier=ID + "hpc/sif:1", metadataPrefix="oai_dc")
    assert record.metadata["type"] == ["Software", "apptainer-sif"]
    tombstone = sickle.GetRecord(identifier=ID + "old/tool:1", metadataPrefix="toolferry")
    assert tombstone.deleted and tombstone.header.deleted
    formats = [f.metadataPrefix for f in sickle.ListMetadataFormats()]
    assert formats == ["oai_dc", "toolferry"]

    with pytest.raises(oaiexceptions.IdDoesNotExist):
        sickle.GetRecord(identifier=ID + "lab/secret:1", metadataPrefix="oai_dc")
    with pytest.raises(oaiexceptions.NoRecordsMatch):
        sickle.ListRecords(metadataPrefix="oai_dc", set="community:chemistry")
    with pytest.raises(oaiexceptions.CannotDisseminateFormat):
        sickle.ListRecords(metadataPrefix="marc21")
    with pytest.raises(oaiexceptions.BadResumptionToken):
        sickle.ListRecords(resumptionToken="forged")
