"""SIF files are read without apptainer: header, descriptors, definition file and labels."""

from __future__ import annotations

import json
import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.unit.catalogue.disks.builders import (
    DATA_PART,
    DEFFILE,
    GENERIC_JSON,
    LABELS,
    LAUNCH,
    PARTITION,
    SIGNATURE,
    SifObject,
    sif_bytes,
    squashfs_partition,
    write,
)

from toolferry.catalogue.disks.sif import SifDataType, read_sif
from toolferry.domain.errors import InvalidTask

DEFINITION = "Bootstrap: docker\nFrom: debian:12\n\n%post\n    apt-get install -y samtools\n"


def test_header_and_descriptors_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tool.sif",
        sif_bytes(
            [
                SifObject(DEFFILE, DEFINITION.encode()),
                SifObject(
                    LABELS, json.dumps({"org.opencontainers.image.title": "aligner"}).encode()
                ),
                squashfs_partition(arch=b"04"),
                SifObject(SIGNATURE, b"-----BEGIN PGP SIGNATURE-----"),
            ],
            arch=b"04",
            created=1_700_000_000,
            spare_slots=2,
        ),
    )
    image = read_sif(path)
    assert image.version == "01"
    assert image.architecture == "arm64"
    assert image.created == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert image.modified == datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)
    assert image.id == uuid.UUID("b2659d4e-bd50-4ea5-bd17-eec5e54f918e")
    assert image.launch_script == LAUNCH.decode()
    assert image.definition == DEFINITION
    assert image.labels == {"org.opencontainers.image.title": "aligner"}
    assert [d.type_name for d in image.descriptors] == [
        "deffile",
        "labels",
        "partition",
        "signature",
    ]  # the two spare slots are unused and skipped
    assert [d.id for d in image.descriptors] == [1, 2, 3, 4]
    assert all(d.group_id == 1 for d in image.descriptors)
    (partition,) = image.partitions
    assert partition is image.primary_partition
    assert (partition.fs_type, partition.partition_type, partition.architecture) == (
        "squashfs",
        "primary-system",
        "arm64",
    )
    assert partition.name == "rootfs"
    assert partition.size == 4096
    with path.open("rb") as fh:  # the offsets point at the object's bytes
        fh.seek(partition.offset)
        assert fh.read(4) == b"hsqs"


def test_apptainer_inspect_metadata_supplies_labels_and_definition(tmp_path: Path) -> None:
    metadata = {
        "attributes": {
            "labels": {"org.label-schema.build-arch": "amd64", "version": 3},
            "deffile": DEFINITION,
        },
        "type": "container",
    }
    path = write(
        tmp_path / "a.sif",
        sif_bytes(
            [
                SifObject(
                    GENERIC_JSON, json.dumps(metadata).encode(), name="inspect-metadata.json"
                ),
                SifObject(
                    GENERIC_JSON, b'{"attributes": {"labels": {"x": "ignored"}}}', name="other.json"
                ),
                squashfs_partition(),
            ]
        ),
    )
    image = read_sif(path)
    assert image.architecture == "amd64"
    assert image.labels == {"org.label-schema.build-arch": "amd64", "version": "3"}
    assert image.definition == DEFINITION


def test_the_inspect_json_shape_with_a_data_wrapper_is_read_too(tmp_path: Path) -> None:
    metadata = {"data": {"attributes": {"labels": {"a": "b"}}}}
    path = write(
        tmp_path / "a.sif",
        sif_bytes(
            [SifObject(GENERIC_JSON, json.dumps(metadata).encode(), name="inspect-metadata.json")]
        ),
    )
    image = read_sif(path)
    assert image.labels == {"a": "b"}
    assert image.definition is None
    assert image.primary_partition is None


def test_an_unknown_header_arch_falls_back_to_the_primary_partition(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.sif",
        sif_bytes(
            [
                SifObject(PARTITION, b"data", fs_type=4, part_type=DATA_PART, arch=b"11"),
                squashfs_partition(arch=b"06"),
            ],
            arch=b"00",
        ),
    )
    image = read_sif(path)
    assert image.architecture == "ppc64le"
    assert [p.partition_type for p in image.partitions] == ["data", "primary-system"]
    assert image.partitions[0].fs_type == "raw"


def test_a_deterministic_image_has_no_times_and_unknown_types_are_named(tmp_path: Path) -> None:
    path = write(tmp_path / "a.sif", sif_bytes([SifObject(0x4099, b"?")], created=0))
    image = read_sif(path)
    assert image.created is None
    assert image.descriptors[0].type_name == "unknown-0x4099"
    assert SifDataType(0x400B) is SifDataType.OCI_IMAGE_INDEX


def test_non_sif_files_are_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path / "image.sif", b"QFI\xfb" + b"\x00" * 200)
    with pytest.raises(InvalidTask, match=r"image.sif is not a SIF file \(no SIF_MAGIC") as err:
        read_sif(path)
    assert err.value.field == "file"
    with pytest.raises(InvalidTask, match="not a SIF file"):
        read_sif(write(tmp_path / "short.sif", b"#!/usr/bin/env run-singularity"))


def test_tables_pointing_outside_the_file_are_refused(tmp_path: Path) -> None:
    good = sif_bytes([SifObject(DEFFILE, DEFINITION.encode())])
    with pytest.raises(InvalidTask, match="descriptor table lies outside the file"):
        read_sif(write(tmp_path / "cut.sif", good[:300]))
    huge_count = good[:88] + struct.pack("<q", 1 << 40) + good[96:]
    with pytest.raises(InvalidTask, match="claims 1099511627776 SIF descriptors"):
        read_sif(write(tmp_path / "many.sif", huge_count))
    # the first descriptor's data size (offset 128 + 25) made larger than the file
    far = good[:153] + struct.pack("<q", 1 << 20) + good[161:]
    with pytest.raises(InvalidTask, match=r"SIF object 1 \(deffile\) lies outside the file"):
        read_sif(write(tmp_path / "far.sif", far))
