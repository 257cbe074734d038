import copy
import json
from dataclasses import FrozenInstanceError, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from toolferry.domain.environment import (
    KIND_CONTENT_TYPES,
    Access,
    Action,
    Classification,
    ContentType,
    Environment,
    ExecutionType,
    Hardware,
    ImageType,
    Kind,
    ManagementLayer,
    Parameter,
    Permissions,
    ResourceProfile,
    Review,
    RuntimeTechnology,
    Status,
    ToolFile,
    ToolInterface,
    UserInteraction,
    UserInterface,
    environment_from_dict,
    environment_to_dict,
    normalise_architecture,
    validate_review_transition,
)
from toolferry.domain.errors import InvalidTask, InvalidTransition
from toolferry.domain.task import FileType, Resources

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
DIGEST = "sha256:" + "a" * 64
DIGEST2 = "sha256:" + "b" * 64


def env(**changes: Any) -> Environment:
    base: dict[str, Any] = {
        "id": "env1",
        "name": "lab/align",
        "version": 1,
        "kind": Kind.OCI_IMAGE,
        "digest": DIGEST,
        "classification": Classification(title="Aligner", content_type=ContentType.OCI),
        "created": T0,
        "updated": T0,
        "owner_id": "alice",
        "group_id": "lab",
    }
    return Environment(**{**base, **changes})


def full_dict() -> dict[str, Any]:
    """Every field of the JSON form set to a non-default value."""
    hw = {
        "cpu_cores": 2.5,
        "ram_gb": 8.0,
        "disk_gb": 20.0,
        "gpus": 1,
        "cpu_architecture": "amd64",
        "storage_type": "ssd",
        "interconnect": "infiniband",
    }
    return {
        "id": "01hx",
        "name": "lab/align",
        "version": 3,
        "kind": "vm-disk",
        "digest": DIGEST,
        "base": "lab/align:2",
        "status": "deprecated",
        "review": "trusted",
        "created": T0.isoformat(),
        "updated": T1.isoformat(),
        "owner_id": "alice",
        "group_id": "lab",
        "permissions": "rw,r-,--",
        "ratings": [5, 3, 4],
        "total_exports": 7,
        "active_deployments": 2,
        "classification": {
            "title": "Aligner",
            "description": "Aligns reads",
            "community": ["genomics", "biochemistry"],
            "purpose": ["research", "teaching"],
            "runtime_technology": "vm",
            "runtime_implementation": "kvm 4.10.11",
            "management_layer": "cloud",
            "management_implementation": "openstack",
            "location": "https://cloud.example.org",
            "image_type": "implicit",
            "content_type": "qcow2",
            "content_refs": ["https://example.org/extra.iso"],
            "checksum": "md5:" + "c" * 32,
            "virtual_hardware": hw,
            "environment_hardware": {**hw, "cpu_architecture": "arm64"},
            "resource_profile": "io-bound",
            "minimal_hardware": {**hw, "gpus": 0},
            "execution_type": "job",
            "user_interaction": "indirect",
            "user_interface": "cli",
            "operating_system": ["Ubuntu 22.04 LTS Server"],
            "software_packages": ["bwa 0.7.17", "samtools 1.19"],
            "service_dependencies": ["license server"],
        },
        "interface": {
            "command": ["bwa", "mem", "-t", "{threads}", "{ref}/genome.fa", "{reads}"],
            "inputs": [
                {
                    "name": "ref",
                    "path": "/data/ref",
                    "type": "DIRECTORY",
                    "description": "reference",
                    "default_url": "s3://refs/hg38",
                },
                {
                    "name": "reads",
                    "path": "/data/reads.fq",
                    "type": "FILE",
                    "description": None,
                    "default_url": None,
                },
            ],
            "outputs": [
                {
                    "name": "out",
                    "path": "/out/aln.sam",
                    "type": "FILE",
                    "description": "alignments",
                    "default_url": None,
                }
            ],
            "parameters": [{"name": "threads", "default": "4", "description": "threads"}],
            "workdir": "/out",
        },
        "content": {
            "media_type": "application/vnd.toolferry.disk.qcow2",
            "size_bytes": 1048576,
            "created": "2026-01-01T10:00:00+00:00",
            "platform": "linux/amd64",
            "virtual_size_bytes": 10737418240,
        },
    }


def field_error(data: dict[str, Any]) -> str:
    with pytest.raises(InvalidTask) as info:
        environment_from_dict(data)
    return info.value.field


# --------------------------------------------------------------------------- round trip


def test_a_fully_populated_entry_round_trips_through_json() -> None:
    data = full_dict()
    entry = environment_from_dict(json.loads(json.dumps(data)))
    assert environment_to_dict(entry) == data
    assert environment_from_dict(environment_to_dict(entry)) == entry


def test_the_round_trip_sets_every_field() -> None:
    entry = environment_from_dict(full_dict())
    for model in (entry, entry.classification, entry.interface):
        for f in fields(model):  # type: ignore[arg-type]
            assert getattr(model, f.name) not in (None, (), ""), f.name
    hw = entry.classification.virtual_hardware
    assert hw is not None
    assert all(getattr(hw, f.name) is not None for f in fields(hw))


def test_classification_holds_every_vice_field_of_tables_one_to_three() -> None:
    vice = {
        # table I, minus version bookkeeping (on Environment)
        "title", "description", "community", "purpose",
        # table II
        "runtime_technology", "runtime_implementation", "management_layer",
        "management_implementation", "location", "image_type", "content_type", "content_refs",
        "checksum", "virtual_hardware", "environment_hardware", "resource_profile",
        "minimal_hardware",
        # table III
        "execution_type", "user_interaction", "user_interface", "operating_system",
        "software_packages", "service_dependencies",
    }  # fmt: skip
    bookkeeping = {
        "id", "version", "base", "status", "created", "updated", "owner_id", "group_id",
        "permissions", "total_exports", "active_deployments", "ratings",
    }  # fmt: skip
    assert {f.name for f in fields(Classification)} == vice
    assert bookkeeping <= {f.name for f in fields(Environment)}


def test_defaults_fill_optional_fields() -> None:
    entry = environment_from_dict(
        {
            "id": "e",
            "name": "x",
            "version": 1,
            "kind": "apptainer-sif",
            "digest": DIGEST,
            "created": T0.isoformat(),
            "updated": T0.isoformat(),
            "owner_id": "bob",
            "classification": {"title": "X", "content_type": "sif"},
        }
    )
    assert entry.status is Status.ACTIVE
    assert entry.review is Review.DRAFT
    assert str(entry.permissions) == "rw,r-,--"
    assert entry.ratings == ()
    assert entry.interface is None
    assert entry.group_id is None


def test_lists_and_texts_are_trimmed() -> None:
    data = full_dict()
    data["classification"]["community"] = ["  genomics "]
    data["classification"]["title"] = " Aligner\n"
    entry = environment_from_dict(data)
    assert entry.classification.community == ("genomics",)
    assert entry.classification.title == "Aligner"


# --------------------------------------------------------------------------- enums


ENUM_FIELDS: list[tuple[str, type[Any]]] = [
    ("classification.runtime_technology", RuntimeTechnology),
    ("classification.management_layer", ManagementLayer),
    ("classification.resource_profile", ResourceProfile),
    ("classification.execution_type", ExecutionType),
    ("classification.user_interaction", UserInteraction),
    ("classification.user_interface", UserInterface),
    ("status", Status),
    ("review", Review),
]


def _set_path(data: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    data[last] = value


@pytest.mark.parametrize(
    ("path", "value"),
    [(path, member.value) for path, cls in ENUM_FIELDS for member in cls],
)
def test_every_enum_value_is_accepted(path: str, value: str) -> None:
    data = full_dict()
    _set_path(data, path, value)
    entry = environment_from_dict(data)
    assert environment_to_dict(entry) == data


@pytest.mark.parametrize("path", [path for path, _ in ENUM_FIELDS])
@pytest.mark.parametrize("value", ["tui", "", 3, ["cli"]])
def test_every_bad_enum_value_is_refused_naming_the_field(path: str, value: object) -> None:
    data = full_dict()
    _set_path(data, path, value)
    assert field_error(data) == path


def test_the_message_lists_the_choices() -> None:
    data = full_dict()
    data["classification"]["user_interface"] = "tui"
    with pytest.raises(InvalidTask) as info:
        environment_from_dict(data)
    assert str(info.value) == (
        "classification.user_interface: 'tui' is not one of cli, gui, web, none"
    )


@pytest.mark.parametrize(("kind", "content_type"), [(k, c) for k in Kind for c in ContentType])
def test_kind_and_content_type_must_fit(kind: Kind, content_type: ContentType) -> None:
    data = full_dict()
    data["kind"] = kind.value
    data["classification"]["content_type"] = content_type.value
    data["classification"]["image_type"] = None
    if content_type in KIND_CONTENT_TYPES[kind]:
        assert environment_from_dict(data).kind is kind
    else:
        assert field_error(data) == "classification.content_type"


def test_each_kind_allows_the_documented_content_types() -> None:
    assert {k: sorted(v) for k, v in KIND_CONTENT_TYPES.items()} == {
        Kind.OCI_IMAGE: ["docker-archive", "oci"],
        Kind.RECIPE: ["containerfile", "dockerfile", "packerfile"],
        Kind.VM_DISK: ["ova", "qcow2", "raw", "vmdk"],
        Kind.APPTAINER_SIF: ["sif"],
    }
    assert set().union(*KIND_CONTENT_TYPES.values()) == set(ContentType)


@pytest.mark.parametrize(("kind", "image_type"), [(k, i) for k in Kind for i in ImageType])
def test_image_type_must_fit_the_kind(kind: Kind, image_type: ImageType) -> None:
    content_type = min(KIND_CONTENT_TYPES[kind])
    classification = Classification(title="t", content_type=content_type, image_type=image_type)
    fits = (image_type is ImageType.DECLARATIVE) == (kind is Kind.RECIPE)
    if fits:
        env(kind=kind, classification=classification)
    else:
        with pytest.raises(InvalidTask) as info:
            env(kind=kind, classification=classification)
        assert info.value.field == "classification.image_type"


# --------------------------------------------------------------------------- other bad input


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("kind", "docker"),
        ("kind", None),
        ("id", None),
        ("id", "a b"),
        ("name", "Lab/Align"),
        ("name", "a:b"),
        ("version", 0),
        ("version", True),
        ("version", "1"),
        ("digest", "sha256:abc"),
        ("digest", "md5:" + "a" * 32),
        ("digest", "SHA256:" + "a" * 64),
        ("base", "lab/align"),
        ("base", "lab/align:3"),
        ("base", "lab/align:0"),
        ("created", "yesterday"),
        ("created", "2024-05-01T12:00:00"),
        ("updated", "2024-04-01T00:00:00+00:00"),
        ("owner_id", " "),
        ("permissions", "rwx,r-,--"),
        ("permissions", "rw,r-"),
        ("ratings", [5, 6]),
        ("ratings", [0]),
        ("ratings", [True]),
        ("ratings", 5),
        ("total_exports", -1),
        ("active_deployments", 1.5),
        ("surprise", 1),
        ("classification", None),
        ("classification.title", "  "),
        ("classification.content_type", None),
        ("classification.image_type", "declarative"),
        ("classification.image_type", "explicit"),
        ("classification.community", "genomics"),
        ("classification.community", ["ok", " "]),
        ("classification.software_packages", [1]),
        ("classification.checksum", "crc32:1234"),
        ("classification.colour", "red"),
        ("classification.virtual_hardware.cpu_cores", 0),
        ("classification.virtual_hardware.ram_gb", "8"),
        ("classification.virtual_hardware.disk_gb", float("nan")),
        ("classification.virtual_hardware.gpus", -1),
        ("classification.virtual_hardware.gpus", 1.5),
        ("classification.environment_hardware.cpu_architecture", "z80"),
        ("classification.minimal_hardware.storage_type", " "),
        ("classification.minimal_hardware.sockets", 2),
        ("interface.command", []),
        ("interface.workdir", "out"),
        ("interface.inputs", {}),
        ("interface.inputs[0].path", "data/ref"),
        ("interface.inputs[0].path", "/data/../etc"),
        ("interface.inputs[0].type", "LINK"),
        ("interface.inputs[0].name", "has-dash"),
        ("interface.inputs[0].name", None),
        ("interface.inputs[1].name", "ref"),
        ("interface.outputs[0].mode", "0644"),
        ("interface.parameters[0].default", 4),
    ],
)
def test_bad_input_names_the_field(path: str, value: object) -> None:
    data = full_dict()
    if path.startswith("interface.inputs["):
        index = int(path[len("interface.inputs[")])
        data["interface"]["inputs"][index][path.rsplit(".", 1)[1]] = value
    elif path.startswith("interface.outputs[0]."):
        data["interface"]["outputs"][0][path.rsplit(".", 1)[1]] = value
    elif path.startswith("interface.parameters[0]."):
        data["interface"]["parameters"][0][path.rsplit(".", 1)[1]] = value
    else:
        _set_path(data, path, value)
    expected = path
    if path.startswith("permissions"):
        expected = {"rwx,r-,--": "permissions.owner", "rw,r-": "permissions"}[str(value)]
    if path == "ratings" and isinstance(value, list):
        expected = f"ratings[{len(value) - 1}]"
    if path == "classification.community" and isinstance(value, list):
        expected = "classification.community[1]"
    if path == "classification.software_packages":
        expected = "classification.software_packages[0]"
    assert field_error(data) == expected


def test_a_non_object_is_refused() -> None:
    data = full_dict()
    data["classification"]["virtual_hardware"] = [1]
    assert field_error(data) == "classification.virtual_hardware"


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidTask, match="must be an object"):
        environment_from_dict([1, 2])  # type: ignore[arg-type]


def test_an_unknown_placeholder_names_the_command_token() -> None:
    data = full_dict()
    data["interface"]["command"] = ["bwa", "{nope}"]
    with pytest.raises(InvalidTask) as info:
        environment_from_dict(data)
    assert info.value.field == "interface.command[1]"
    assert "{nope}" in info.value.message


def test_input_data_is_not_modified() -> None:
    data = full_dict()
    before = copy.deepcopy(data)
    environment_from_dict(data)
    assert data == before


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("text", ["rw,rw,rw", "r-,-w,--", "--,--,--", "rw,r-,r-"])
def test_permissions_print_as_they_parse(text: str) -> None:
    assert str(Permissions.parse(text)) == text


def test_permissions_accept_spaces_as_vice_writes_them() -> None:
    assert str(Permissions.parse("rw, rw, r-")) == "rw,rw,r-"


@pytest.mark.parametrize("text", ["", "rw", "rw,rw,rw,rw", "rw,xx,--", "RW,rw,rw", "r,r,r"])
def test_bad_permissions_are_refused(text: str) -> None:
    with pytest.raises(InvalidTask):
        Permissions.parse(text)


def test_access_pairs() -> None:
    assert [(a.read, a.write) for a in Access] == [
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    ]


# who: owner / group member / both / stranger; perms "owner,group,others"
@pytest.mark.parametrize(
    ("perms", "user", "groups", "read", "write"),
    [
        ("rw,r-,--", "alice", (), True, True),
        ("rw,r-,--", "bob", ("lab",), True, False),
        ("rw,r-,--", "eve", ("other",), False, False),
        ("r-,rw,--", "alice", (), True, False),
        ("r-,rw,--", "alice", ("lab",), True, True),  # rights of every class add up
        ("--,--,r-", "alice", (), True, False),  # others is a floor, unlike POSIX
        ("--,-w,--", "bob", ("lab",), False, True),
        ("--,--,rw", "eve", (), True, True),
        ("--,--,--", "alice", ("lab",), False, False),
    ],
)
def test_permissions_allow(
    perms: str, user: str, groups: tuple[str, ...], read: bool, write: bool
) -> None:
    p = Permissions.parse(perms)

    def allows(action: Action) -> bool:
        return p.allows(user=user, groups=groups, owner="alice", group="lab", action=action)

    assert allows(Action.READ) is read
    assert allows(Action.WRITE) is write
    assert allows(Action.RUN) is read  # run needs read


def test_no_group_means_group_rights_never_apply() -> None:
    p = Permissions.parse("--,rw,--")
    assert not p.allows(user="bob", groups=("lab",), owner="alice", group=None, action=Action.READ)


def test_a_tombstone_can_be_read_but_not_run_or_written() -> None:
    gone = env(permissions=Permissions.parse("rw,rw,rw")).delete(now=T1)
    assert gone.allows(user="alice", groups=(), action=Action.READ)
    assert not gone.allows(user="alice", groups=(), action=Action.RUN)
    assert not gone.allows(user="alice", groups=(), action=Action.WRITE)


# --------------------------------------------------------------------------- hardware


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("i686", "386"),
        ("armv7l", "arm"),
        ("ppc64el", "ppc64le"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
    ],
)
def test_cpu_architectures_are_normalised(given: str, canonical: str) -> None:
    assert normalise_architecture(given) == canonical
    assert Hardware(cpu_architecture=given).cpu_architecture == canonical


def test_hardware_becomes_tes_resources_with_cores_rounded_up() -> None:
    assert Hardware(cpu_cores=1.5, ram_gb=2.0, disk_gb=10.0).to_resources() == Resources(
        cpu_cores=2, ram_gb=2.0, disk_gb=10.0
    )
    assert Hardware().to_resources() == Resources()


# --------------------------------------------------------------------------- versions


def test_digest_accepts_sha256_and_sha512() -> None:
    env(digest="sha512:" + "0" * 128)
    with pytest.raises(InvalidTask) as info:
        env(digest="sha256:" + "A" * 64)
    assert info.value.field == "digest"


def test_published_versions_are_immutable() -> None:
    entry = env()
    with pytest.raises(FrozenInstanceError):
        entry.digest = DIGEST2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        entry.classification.title = "other"  # type: ignore[misc]


def test_next_version_links_to_its_base_and_starts_afresh() -> None:
    v1 = (
        env(review=Review.TRUSTED, ratings=(5,), total_exports=3, active_deployments=1)
        .deprecate(now=T1)
        .with_export()
    )
    later = T1 + timedelta(hours=1)
    new_classification = replace(v1.classification, description="faster")
    v2 = v1.next_version(id="env2", now=later, digest=DIGEST2, classification=new_classification)
    assert (v2.id, v2.name, v2.version, v2.base) == ("env2", "lab/align", 2, "lab/align:1")
    assert (v2.created, v2.updated) == (later, later)
    assert (v2.status, v2.review) == (Status.ACTIVE, Review.DRAFT)
    assert (v2.ratings, v2.total_exports, v2.active_deployments) == ((), 0, 0)
    assert (v2.owner_id, v2.group_id, v2.permissions) == (v1.owner_id, v1.group_id, v1.permissions)
    assert v2.digest == DIGEST2
    assert v2.classification.description == "faster"
    assert v1.version == 1 and v1.digest == DIGEST  # the old version is untouched
    v3 = v2.next_version(id="env3", now=later)
    assert (v3.version, v3.base, v3.digest) == (3, "lab/align:2", DIGEST2)


def test_next_version_checks_the_new_content() -> None:
    with pytest.raises(InvalidTask) as info:
        env().next_version(id="e2", now=T1, kind=Kind.VM_DISK)
    assert info.value.field == "classification.content_type"


def test_next_version_keeps_or_drops_the_interface() -> None:
    interface = ToolInterface(command=("true",))
    v1 = env(interface=interface)
    assert v1.next_version(id="e2", now=T1).interface == interface
    assert v1.next_version(id="e2", now=T1, drop_interface=True).interface is None


def test_no_version_follows_a_tombstone() -> None:
    with pytest.raises(InvalidTransition):
        env().delete(now=T1).next_version(id="e2", now=T1)


def test_a_base_of_another_environment_may_have_any_version() -> None:
    assert env(base="lab/other:9").base == "lab/other:9"


def test_status_changes() -> None:
    deprecated = env().deprecate(now=T1)
    assert (deprecated.status, deprecated.updated) == (Status.DEPRECATED, T1)
    assert deprecated.runnable
    assert deprecated.with_status(Status.ACTIVE, now=T1).status is Status.ACTIVE
    gone = deprecated.delete(now=T1)
    assert gone.status is Status.DELETED and not gone.runnable
    for target in Status:
        with pytest.raises(InvalidTransition):
            gone.with_status(target, now=T1)
    with pytest.raises(InvalidTransition):
        deprecated.deprecate(now=T1)


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [(c, t, (c, t) in {
        (Review.DRAFT, Review.IN_REVIEW),
        (Review.IN_REVIEW, Review.DRAFT),
        (Review.IN_REVIEW, Review.TRUSTED),
        (Review.TRUSTED, Review.IN_REVIEW),
    }) for c in Review for t in Review],
)  # fmt: skip
def test_review_transitions(current: Review, target: Review, ok: bool) -> None:
    if ok:
        validate_review_transition(current, target)
        assert env(review=current).with_review(target, now=T1).review is target
    else:
        with pytest.raises(InvalidTransition):
            validate_review_transition(current, target)


def test_ratings_and_counters() -> None:
    entry = env()
    assert entry.average_rating is None
    rated = entry.with_rating(5).with_rating(2)
    assert rated.ratings == (5, 2) and rated.average_rating == 3.5
    assert entry.ratings == ()
    for bad in (0, 6):
        with pytest.raises(InvalidTask) as info:
            entry.with_rating(bad)
        assert info.value.field == "rating"
    assert entry.with_export().with_export().total_exports == 2
    assert entry.with_active_deployments(3).active_deployments == 3
    with pytest.raises(InvalidTask):
        entry.with_active_deployments(-1)


def test_access_changes_keep_the_content() -> None:
    entry = env().with_access(now=T1, group_id="other", permissions=Permissions.parse("rw,rw,r-"))
    assert (entry.owner_id, entry.group_id, str(entry.permissions)) == (
        "alice",
        "other",
        "rw,rw,r-",
    )
    assert entry.updated == T1 and entry.digest == DIGEST


# --------------------------------------------------------------------------- tool interface

ALIGN = ToolInterface(
    command=("bwa", "mem", "-t", "{threads}", "{ref}/genome.fa", "{reads}", "-o", "{out}"),
    inputs=(
        ToolFile(name="ref", path="/data/ref", type=FileType.DIRECTORY, default_url="s3://r/hg38"),
        ToolFile(name="reads", path="/data/reads.fq"),
    ),
    outputs=(ToolFile(name="out", path="/out/aln.sam"),),
    parameters=(Parameter(name="threads", default="4"), Parameter(name="sample")),
    workdir="/out",
)


def test_a_task_is_made_from_the_interface() -> None:
    spec = ALIGN.to_task_spec(
        "registry.local/lab/align@" + DIGEST,
        {"reads": "s3://b/r.fq", "out": "file:///res/aln.sam", "sample": "S1"},
        name="align S1",
        resources=Hardware(cpu_cores=2).to_resources(),
    )
    assert spec.name == "align S1"
    (executor,) = spec.executors
    assert executor.image == "registry.local/lab/align@" + DIGEST
    assert executor.command == (
        "bwa", "mem", "-t", "4", "/data/ref/genome.fa", "/data/reads.fq", "-o", "/out/aln.sam",
    )  # fmt: skip
    assert executor.workdir == "/out"
    assert [(i.name, i.path, i.url, i.type) for i in spec.inputs] == [
        ("ref", "/data/ref", "s3://r/hg38", FileType.DIRECTORY),
        ("reads", "/data/reads.fq", "s3://b/r.fq", FileType.FILE),
    ]
    assert [(o.name, o.path, o.url) for o in spec.outputs] == [
        ("out", "/out/aln.sam", "file:///res/aln.sam")
    ]
    assert spec.resources == Resources(cpu_cores=2)


def test_bindings_override_defaults() -> None:
    spec = ALIGN.to_task_spec(
        "img",
        {"reads": "r", "out": "o", "sample": "S", "threads": "16", "ref": "s3://r/mm39"},
    )
    assert spec.executors[0].command[3] == "16"
    assert spec.inputs[0].url == "s3://r/mm39"


def test_missing_bindings_are_all_named() -> None:
    with pytest.raises(InvalidTask) as info:
        ALIGN.to_task_spec("img", {"reads": "r"})
    assert info.value.field == "bindings"
    assert info.value.message == "missing: out, sample"


def test_unknown_bindings_are_named() -> None:
    with pytest.raises(InvalidTask) as info:
        ALIGN.to_task_spec("img", {"reads": "r", "out": "o", "sample": "S", "thread": "2"})
    assert info.value.field == "bindings"
    assert "unknown names: thread" in info.value.message


def test_values_never_split_tokens_nor_expand_again() -> None:
    tool = ToolInterface(
        command=("sh-free", "--label={label}", "{label}", "x{{label}}y", "{{{label}}}"),
        parameters=(Parameter(name="label"),),
    )
    spec = tool.to_task_spec("img", {"label": "a b; rm -rf / {label}"})
    assert spec.executors[0].command == (
        "sh-free",
        "--label=a b; rm -rf / {label}",
        "a b; rm -rf / {label}",
        "x{label}y",
        "{a b; rm -rf / {label}}",
    )


def test_braces_that_are_not_placeholders_are_kept() -> None:
    tool = ToolInterface(command=("awk", "{print $1}", "{ x }"))
    assert tool.to_task_spec("img", {}).executors[0].command == ("awk", "{print $1}", "{ x }")


def test_an_empty_parameter_value_is_allowed() -> None:
    tool = ToolInterface(command=("echo", "{p}"), parameters=(Parameter(name="p"),))
    assert tool.to_task_spec("img", {"p": ""}).executors[0].command == ("echo", "")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"command": ()}, "command"),
        ({"command": (" ",)}, "command"),
        ({"command": ("x", "{missing}")}, "command[1]"),
        ({"command": ("x",), "workdir": "rel"}, "workdir"),
        (
            {
                "command": ("x",),
                "inputs": (ToolFile(name="a", path="/a"),),
                "parameters": (Parameter(name="a"),),
            },
            "parameters[0].name",
        ),
    ],
)
def test_bad_interfaces_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidTask) as info:
        ToolInterface(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"size_bytes": -1}, "content.size_bytes"),
        ({"platform": "Linux AMD64"}, "content.platform"),
        ({"created": "yesterday"}, "content.created"),
        ({"colour": "red"}, "content.colour"),
    ],
)
def test_bad_content_facts_name_the_field(content: dict[str, Any], field: str) -> None:
    data = full_dict()
    data["content"] = content
    assert field_error(data) == field
