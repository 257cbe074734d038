"""The catalogue's rules: publishing versions in order, who may read and change what, search."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from toolferry.catalogue.service import CatalogueService
from toolferry.domain.environment import Review, Status
from toolferry.domain.errors import Conflict, Forbidden, InvalidTask, InvalidTransition, NotFound
from toolferry.security.identity import Identity
from toolferry.store.db import Database
from toolferry.store.environments import SqlEnvironmentStore

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ALICE = Identity(user="alice")
BOB = Identity(user="bob")
ADMIN = Identity(user="root", admin=True)


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
            "minimal_hardware": {"ram_gb": 8},
        },
        **changes,
    }


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CatalogueService]:
    db = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ids = count(1)
    yield CatalogueService(
        SqlEnvironmentStore(db), clock=lambda: T0, new_id=lambda: f"env{next(ids)}"
    )
    db.close()


def test_a_new_name_starts_at_1_owned_by_the_caller(service: CatalogueService) -> None:
    env = service.register(doc(), ALICE)
    assert (env.ref, env.id, env.owner_id, env.base) == ("lab/align:1", "env1", "alice", None)
    assert (env.status, env.review, env.ratings, env.created) == (
        Status.ACTIVE,
        Review.DRAFT,
        (),
        T0,
    )
    assert service.get("lab/align", 1, ALICE) == env


def test_later_versions_follow_the_latest(service: CatalogueService) -> None:
    service.register(doc(group_id="lab", permissions="rw,rw,r-"), ALICE)
    second = service.register(doc(digit="b"), ALICE)
    assert (second.version, second.base, second.group_id) == (2, "lab/align:1", "lab")
    assert str(second.permissions) == "rw,rw,r-"
    third = service.register(doc(digit="c", version=3, base="lab/align:2"), ALICE)
    assert third.ref == "lab/align:3"
    assert [e.version for e in service.versions("lab/align", ALICE)] == [1, 2, 3]
    assert service.get("lab/align", None, ALICE) == third


def test_a_published_version_is_final(service: CatalogueService) -> None:
    first = service.register(doc(), ALICE)
    with pytest.raises(Conflict, match="lab/align:1 is already published"):
        service.register(doc(digit="b", version=1), ALICE)
    assert service.versions("lab/align", ALICE) == [first]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"version": 3}, "version", "must be 2, the next after lab/align:1"),
        ({"base": "other:1"}, "base", "must be an existing version of lab/align"),
        ({"base": "lab/align:7"}, "base", "must be an existing version of lab/align"),
    ],
)
def test_a_next_version_out_of_line_is_refused(
    service: CatalogueService, changes: dict[str, Any], field: str, message: str
) -> None:
    service.register(doc(), ALICE)
    with pytest.raises(InvalidTask, match=message) as caught:
        service.register(doc(digit="b", **changes), ALICE)
    assert caught.value.field == field
    assert len(service.versions("lab/align", ALICE)) == 1


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (doc(version=2), "version"),
        (doc(digest="sha256:abc"), "digest"),
        ({k: v for k, v in doc().items() if k != "digest"}, "digest"),
        (doc(name="Lab/Align"), "name"),
        (doc(name="x" * 256), "name"),
        (doc(owner_id="mallory"), "owner_id"),
        (doc(status="deleted"), "status"),
        (doc(base="nope:1"), "base"),
        (doc(classification={"title": "T", "content_type": "qcow2"}), "classification"),
        (doc(colour="blue"), "colour"),
    ],
)
def test_bad_documents_are_refused_naming_the_field_and_store_nothing(
    service: CatalogueService, document: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidTask) as caught:
        service.register(document, ALICE)
    assert caught.value.field.startswith(field)
    assert service.search(None, ADMIN, include_deleted=True) == []


def test_only_a_writer_of_the_latest_publishes_the_next(service: CatalogueService) -> None:
    service.register(doc(permissions="rw,r-,r-"), ALICE)
    with pytest.raises(Forbidden, match="publish the next version"):
        service.register(doc(digit="b"), BOB)
    service.register(doc("lab/secret"), ALICE)  # others: no access
    with pytest.raises(Forbidden, match="taken"):
        service.register(doc("lab/secret", digit="b"), BOB)
    assert service.register(doc(digit="b"), ADMIN).owner_id == "root"


def test_unreadable_entries_look_missing(service: CatalogueService) -> None:
    service.register(doc(), ALICE)  # default permissions: others none
    with pytest.raises(NotFound, match="no environment lab/align:1"):
        service.get("lab/align", 1, BOB)
    with pytest.raises(NotFound, match="no environment lab/align"):
        service.get("lab/align", None, BOB)
    with pytest.raises(NotFound):
        service.versions("lab/align", BOB)
    with pytest.raises(NotFound):
        service.delete("lab/align", 1, BOB)
    with pytest.raises(NotFound):
        service.rate("lab/align", 1, 5, BOB)
    assert service.search(None, BOB) == []
    assert [e.ref for e in service.search(None, ADMIN)] == ["lab/align:1"]


def test_a_reader_may_rate_but_not_change(service: CatalogueService) -> None:
    service.register(doc(permissions="rw,r-,r-"), ALICE)
    assert service.rate("lab/align", 1, 4, BOB).ratings == (4,)
    with pytest.raises(InvalidTask, match="rating"):
        service.rate("lab/align", 1, 6, BOB)
    with pytest.raises(Forbidden, match="may read lab/align:1 but not change it"):
        service.deprecate("lab/align", 1, BOB)
    with pytest.raises(Forbidden):
        service.delete("lab/align", 1, BOB)
    assert service.get("lab/align", 1, BOB).ratings == (4,)


def test_deprecate_then_delete_leaves_a_readable_tombstone(service: CatalogueService) -> None:
    service.register(doc(), ALICE)
    assert service.deprecate("lab/align", 1, ALICE).status is Status.DEPRECATED
    assert service.delete("lab/align", 1, ALICE).status is Status.DELETED
    assert service.get("lab/align", 1, ALICE).status is Status.DELETED
    assert service.search(None, ALICE) == []
    assert [e.status for e in service.search(None, ALICE, include_deleted=True)] == [Status.DELETED]
    for change in (service.deprecate, service.delete):
        with pytest.raises(InvalidTransition):
            change("lab/align", 1, ADMIN)
    with pytest.raises(InvalidTransition, match="cannot be rated"):
        service.rate("lab/align", 1, 5, ALICE)
    with pytest.raises(InvalidTransition, match="no new version can follow"):
        service.register(doc(digit="b"), ALICE)
    with pytest.raises(NotFound, match="no environment lab/align:9"):
        service.delete("lab/align", 9, ALICE)


def test_search_matches_criteria(service: CatalogueService) -> None:
    service.register(doc(), ALICE)
    small = doc("lab/qc", classification={"title": "QC", "content_type": "oci"})
    service.register(small, ALICE)

    def refs(query: str | None) -> list[str]:
        return [e.ref for e in service.search(query, ALICE)]

    assert refs(None) == refs("") == ["lab/align:1", "lab/qc:1"]
    assert refs("at least 8 GB RAM, ubuntu, has samtools") == ["lab/align:1"]
    assert refs("has=samtools>=1.18") == []
    assert refs("qc") == ["lab/qc:1"]


def test_the_owner_asks_for_review_and_only_a_reviewer_trusts(service: CatalogueService) -> None:
    service.register(doc(), ALICE)
    with pytest.raises(Forbidden, match="only a reviewer"):
        service.review("lab/align", 1, Review.TRUSTED, ALICE)
    asked = service.review("lab/align", 1, Review.IN_REVIEW, ALICE)
    assert asked.review is Review.IN_REVIEW
    with pytest.raises(NotFound):  # bob cannot read alice's private entry
        service.review("lab/align", 1, Review.DRAFT, BOB)
    assert service.review("lab/align", 1, Review.TRUSTED, ADMIN).review is Review.TRUSTED
    with pytest.raises(InvalidTransition, match="from trusted to draft"):
        service.review("lab/align", 1, Review.DRAFT, ADMIN)
    assert service.get("lab/align", 1, ALICE).review is Review.TRUSTED


def test_group_members_get_the_group_permissions(service: CatalogueService) -> None:
    service.register(doc(group_id="lab", permissions="rw,r-,--"), ALICE)
    member = Identity(user="bob", groups=frozenset({"lab"}))
    assert service.get("lab/align", 1, member).ref == "lab/align:1"
    with pytest.raises(NotFound):
        service.get("lab/align", 1, BOB)
    with pytest.raises(Forbidden, match="may read"):
        service.deprecate("lab/align", 1, member)


def test_lookups_by_digest_and_latest_runnable(service: CatalogueService) -> None:
    service.register(doc(permissions="rw,--,r-"), ALICE)
    service.register(doc(digit="b"), ALICE)
    service.delete("lab/align", 2, ALICE)
    assert service.latest_runnable("lab/align", BOB).ref == "lab/align:1"
    found = service.by_digest("sha256:" + "a" * 64, BOB)
    assert found is not None and found.ref == "lab/align:1"
    assert service.by_digest("sha256:" + "a" * 64, BOB, name="other/name") is None
    assert service.knows("lab/align", BOB) and not service.knows("nothing/here", BOB)
    service.delete("lab/align", 1, ALICE)
    with pytest.raises(NotFound, match="every version of lab/align is deleted"):
        service.latest_runnable("lab/align", BOB)


def test_active_deployments_are_read_live(tmp_path: Path) -> None:
    db = Database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    live = {"lab/align:1": 3}
    service = CatalogueService(SqlEnvironmentStore(db), deployments=lambda: live)
    service.register(doc(), ALICE)
    assert service.get("lab/align", 1, ALICE).active_deployments == 3
    live["lab/align:1"] = 0
    assert [e.active_deployments for e in service.search(None, ALICE)] == [0]
    db.close()


def test_a_version_may_branch_from_an_older_one(service: CatalogueService) -> None:
    service.register(doc(), ALICE)
    service.register(doc(digit="b"), ALICE)
    third = service.register(doc(digit="c", base="lab/align:1"), ALICE)
    assert (third.version, third.base) == (3, "lab/align:1")
