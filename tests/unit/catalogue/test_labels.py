"""Annotated images: OCI keys, Label Schema fallbacks, the toolferry namespace, image config."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from toolferry.catalogue.labels import ImageFacts, document_from_image, merge_documents
from toolferry.domain.errors import InvalidTask

CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def facts(**labels: str) -> ImageFacts:
    return ImageFacts(
        labels=labels,
        os="linux",
        architecture="arm64",
        variant="v8",
        created=CREATED,
        size=1234,
        media_type="application/vnd.oci.image.manifest.v1+json",
    )


def test_oci_keys_config_and_the_toolferry_namespace() -> None:
    interface = {"command": ["samtools", "{in}"], "inputs": [{"name": "in", "path": "/d/in"}]}
    doc = document_from_image(
        facts(
            **{
                "org.opencontainers.image.title": "Aligner",
                "org.opencontainers.image.description": "Aligns reads",
                "org.opencontainers.image.source": "https://git.example.org/align",
                "toolferry.community": "biology, genomics",
                "toolferry.software_packages": '["samtools 1.17", "bwa 0.7"]',
                "toolferry.minimal_hardware": '{"ram_gb": 8}',
                "toolferry.user_interface": "cli",
                "toolferry.interface": json.dumps(interface),
                "com.example.other": "ignored",
            }
        ),
        fallback_title="lab/align",
    )
    c = doc["classification"]
    assert (c["title"], c["description"]) == ("Aligner", "Aligns reads")
    assert c["content_refs"] == ["https://git.example.org/align"]
    assert c["community"] == ["biology", "genomics"]
    assert c["software_packages"] == ["samtools 1.17", "bwa 0.7"]
    assert c["minimal_hardware"] == {"ram_gb": 8}
    assert c["user_interface"] == "cli"
    assert c["operating_system"] == ["linux"]
    assert c["environment_hardware"] == {"cpu_architecture": "arm64"}
    assert doc["interface"] == interface
    assert doc["content"] == {
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "size_bytes": 1234,
        "created": CREATED.isoformat(),
        "platform": "linux/arm64/v8",
    }


def test_label_schema_fills_in_and_the_name_is_the_last_resort() -> None:
    doc = document_from_image(
        facts(**{"org.label-schema.name": "Old style", "org.label-schema.vcs-url": "https://x"}),
        fallback_title="lab/old",
    )
    assert doc["classification"]["title"] == "Old style"
    assert doc["classification"]["content_refs"] == ["https://x"]
    plain = document_from_image(facts(), fallback_title="lab/plain")
    assert plain["classification"]["title"] == "lab/plain"
    assert "interface" not in plain


@pytest.mark.parametrize(
    ("label", "value", "says"),
    [
        ("toolferry.colour", "red", "names no classification field"),
        ("toolferry.content_type", "qcow2", "names no classification field"),
        ("toolferry.minimal_hardware", "lots", "is not a JSON object"),
        ("toolferry.interface", "[1]", "must be a JSON object"),
        ("toolferry.community", "[1, 2]", "JSON list of strings"),
    ],
)
def test_a_bad_toolferry_label_is_named(label: str, value: str, says: str) -> None:
    with pytest.raises(InvalidTask, match=says) as info:
        document_from_image(facts(**{label: value}), fallback_title="x")
    assert info.value.field == f"labels.{label}"


def test_given_fields_win_field_by_field() -> None:
    base = {"classification": {"title": "A", "community": ["x"]}, "content": {"size_bytes": 1}}
    merged = merge_documents(base, {"classification": {"title": "B"}, "name": "lab/b"})
    assert merged == {
        "classification": {"title": "B", "community": ["x"]},
        "content": {"size_bytes": 1},
        "name": "lab/b",
    }
