"""Criteria queries: "at least 8 GB RAM, Ubuntu, has samtools"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from toolferry.domain.criteria import parse_criteria
from toolferry.domain.environment import Classification, ContentType, Environment, Hardware, Kind
from toolferry.domain.errors import InvalidTask

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def env(**classification: Any) -> Environment:
    fields: dict[str, Any] = {"title": "Aligner", "content_type": ContentType.OCI}
    return Environment(
        id="e1",
        name="lab/align",
        version=1,
        kind=Kind.OCI_IMAGE,
        digest="sha256:" + "a" * 64,
        classification=Classification(**{**fields, **classification}),
        created=T0,
        updated=T0,
        owner_id="alice",
    )


ALIGNER = env(
    description="Short-read alignment for genomics",
    community=("bioinformatics",),
    purpose=("research",),
    operating_system=("Ubuntu 22.04 LTS",),
    software_packages=("samtools 1.17", "bwa 0.7.17"),
    virtual_hardware=Hardware(cpu_cores=4, ram_gb=16),
    minimal_hardware=Hardware(cpu_cores=1, ram_gb=4, cpu_architecture="amd64"),
)


@pytest.mark.parametrize(
    "query",
    [
        "at least 8 GB RAM, Ubuntu, has samtools",
        "ram>=8 os=ubuntu has=samtools",
        "at least 4 cores with bwa",
        "has=samtools>=1.17 has=bwa=0.7",
        "community=bioinformatics purpose=research kind=oci-image arch=amd64",
        "alignment genomics",
        "",
    ],
)
def test_matching_queries(query: str) -> None:
    criteria = parse_criteria(query)
    assert criteria.misses(ALIGNER) == [], query


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("at least 32 GB RAM", "ram 16 < 32"),
        ("debian", "operating system is not debian"),
        ("has samtools>=1.18", "has no samtools>=1.18"),
        ("has=star", "has no star"),
        ("kind=vm-disk", "kind is oci-image"),
        ("proteomics", "does not mention 'proteomics'"),
        ("gpus>=1", "gpus unknown < 1"),
    ],
)
def test_what_does_not_match_says_why(query: str, reason: str) -> None:
    assert parse_criteria(query).misses(ALIGNER) == [reason]


def test_minimal_hardware_answers_when_no_virtual_hardware_is_given() -> None:
    lean = env(minimal_hardware=Hardware(ram_gb=8))
    assert parse_criteria("ram>=8").matches(lean)
    assert not parse_criteria("ram>=9").matches(lean)


@pytest.mark.parametrize("query", ["colour=blue", "ram=8", "ram>=lots"])
def test_unknown_criteria_are_refused(query: str) -> None:
    with pytest.raises(InvalidTask) as caught:
        parse_criteria(query)
    assert caught.value.field == "q"
