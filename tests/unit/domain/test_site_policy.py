"""Site policy: every rule of check_task both ways, with the field each refusal names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath

import pytest

from toolferry.domain.environment import Review
from toolferry.domain.errors import InvalidTask
from toolferry.domain.site_policy import (
    Dataset,
    ImageFacts,
    Refusal,
    SitePolicy,
    check_task,
    outputs_within,
    pinned_digest,
)
from toolferry.domain.task import Executor, Input, Output, Resources, TaskSpec
from toolferry.security.identity import Identity

SITE = "partner-a"
D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64
D3 = "sha256:" + "c" * 64
ALICE = Identity(user="alice")
BOB = Identity(user="bob", groups=frozenset({"neuro"}))
EVE = Identity(user="eve")
ROOT = Identity(user="root", admin=True)
ADNI = Dataset(
    name="adni",
    description="MRI visits",
    path=PurePosixPath("/srv/data/adni"),
    users=frozenset({"alice"}),
    groups=frozenset({"neuro"}),
)
OPEN = Dataset(name="open", path=PurePosixPath("/srv/data/open"), users=frozenset({"*"}))
CLOSED = Dataset(name="closed", path=PurePosixPath("/srv/data/closed"))
DATASETS = {d.name: d for d in (ADNI, OPEN, CLOSED)}
NONE = SitePolicy()


def task(
    *images: str,
    inputs: tuple[Input, ...] = (),
    outputs: tuple[Output, ...] = (),
    resources: Resources | None = None,
) -> TaskSpec:
    return TaskSpec(
        executors=tuple(Executor(image=i, command=("run",)) for i in images or ("busybox",)),
        inputs=inputs,
        outputs=outputs,
        resources=resources,
    )


def reads(*urls: str) -> tuple[Input, ...]:
    return tuple(Input(path=f"/in/{i}", url=u) for i, u in enumerate(urls))


def check(
    spec: TaskSpec,
    who: Identity = ALICE,
    policy: SitePolicy = NONE,
    images: dict[int, ImageFacts] | None = None,
) -> list[Refusal]:
    return check_task(spec, who, policy, DATASETS, SITE, images or {})


def fields(refusals: list[Refusal]) -> list[str]:
    return [r.field for r in refusals]


def entry(digest: str, publisher: str = "lab-x", review: Review = Review.TRUSTED) -> ImageFacts:
    return ImageFacts(digest=digest, entry="lab/align:2", publisher=publisher, review=review)


# --- nothing configured ---------------------------------------------------------------------


def test_with_no_rules_any_image_and_user_may_run() -> None:
    assert check(task("busybox:latest", f"reg/x@{D1}"), who=EVE) == []


# --- images -------------------------------------------------------------------------------------


def test_a_listed_digest_runs() -> None:
    policy = SitePolicy(allowed_images=frozenset({D1}))
    assert check(task(f"registry.local/tool@{D1}"), policy=policy) == []


def test_an_unlisted_digest_is_refused_naming_the_executor_and_what_would_pass() -> None:
    policy = SitePolicy(allowed_images=frozenset({D1}), allowed_publishers=frozenset({"lab-x"}))
    [refusal] = check(task(f"tool@{D1}", f"tool@{D2}"), policy=policy)
    assert refusal.field == "executors[1].image"
    assert refusal.message == (
        "image tool@sha256:bbbbbbbbbbbb… is not allowed at site partner-a: its digest "
        "sha256:bbbbbbbbbbbb… is not listed and it is no catalogue entry; allowed are digests "
        "sha256:aaaaaaaaaaaa…, or images of publishers lab-x"
    )


def test_an_unpinned_image_is_refused_when_images_are_restricted() -> None:
    policy = SitePolicy(allowed_images=frozenset({D1}))
    [refusal] = check(task("tool:latest"), policy=policy)
    assert refusal.field == "executors[0].image"
    assert "not pinned by digest" in refusal.message


def test_a_short_digest_is_not_a_pin() -> None:
    assert pinned_digest("tool@sha256:abc") is None
    assert pinned_digest(f"host:5000/tool:1@{D1}") == D1


def test_an_allowed_publishers_catalogue_entry_runs() -> None:
    policy = SitePolicy(allowed_publishers=frozenset({"lab-x"}))
    spec = task(f"tool@{D1}")
    assert check(spec, policy=policy, images={0: entry(D1, review=Review.DRAFT)}) == []


def test_another_publishers_entry_is_refused_saying_who_published_it() -> None:
    policy = SitePolicy(allowed_publishers=frozenset({"lab-x"}))
    facts = entry(D1, publisher="lab-y", review=Review.DRAFT)
    [refusal] = check(task(f"tool@{D1}"), policy=policy, images={0: facts})
    assert refusal.field == "executors[0].image"
    assert "catalogue entry lab/align:2 is published by lab-y and reviewed 'draft'" in (
        refusal.message
    )
    assert refusal.message.endswith("allowed are images of publishers lab-x")


@pytest.mark.parametrize(
    ("minimum", "review", "allowed"),
    [
        (Review.TRUSTED, Review.TRUSTED, True),
        (Review.TRUSTED, Review.IN_REVIEW, False),
        (Review.IN_REVIEW, Review.TRUSTED, True),
        (Review.IN_REVIEW, Review.IN_REVIEW, True),
        (Review.IN_REVIEW, Review.DRAFT, False),
        (Review.DRAFT, Review.DRAFT, True),
    ],
)
def test_a_catalogue_entry_runs_when_reviewed_at_least_the_minimum(
    minimum: Review, review: Review, allowed: bool
) -> None:
    policy = SitePolicy(minimum_review=minimum)
    refusals = check(task(f"tool@{D1}"), policy=policy, images={0: entry(D1, review=review)})
    assert fields(refusals) == ([] if allowed else ["executors[0].image"])
    if not allowed:
        assert f"catalogue entries reviewed '{minimum}' or better" in refusals[0].message


def test_a_minimum_review_refuses_images_that_are_not_catalogue_entries() -> None:
    policy = SitePolicy(minimum_review=Review.DRAFT)
    assert fields(check(task(f"tool@{D1}"), policy=policy)) == ["executors[0].image"]


def test_any_one_configured_rule_is_enough() -> None:
    policy = SitePolicy(
        allowed_images=frozenset({D3}),
        allowed_publishers=frozenset({"lab-z"}),
        minimum_review=Review.TRUSTED,
    )
    images = {0: entry(D1, publisher="lab-y", review=Review.TRUSTED)}
    assert check(task(f"tool@{D1}", f"other@{D3}"), policy=policy, images=images) == []


def test_an_image_pinned_elsewhere_than_its_catalogue_entry_is_refused_even_without_rules() -> None:
    [refusal] = check(task(f"tool@{D2}"), images={0: entry(D1)})
    assert refusal.field == "executors[0].image"
    assert "pinned to sha256:bbbbbbbbbbbb… but catalogue entry lab/align:2" in refusal.message


def test_long_lists_of_allowed_digests_are_cut_short() -> None:
    many = frozenset("sha256:" + c * 64 for c in "0123456789")
    [refusal] = check(task(f"tool@{D1}"), policy=SitePolicy(allowed_images=many))
    assert refusal.message.endswith("sha256:444444444444… and 5 more")


# --- users --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "allowed"),
    [(ALICE, True), (BOB, True), (EVE, False), (ROOT, False)],
    ids=["listed-user", "group-member", "stranger", "hub-admin"],
)
def test_only_allowed_users_and_groups_may_run_tasks(who: Identity, allowed: bool) -> None:
    policy = SitePolicy(
        allowed_users=frozenset({"alice"}),
        allowed_groups=frozenset({"neuro"}),
        stewards=frozenset({"carol"}),
    )
    refusals = check(task(), who=who, policy=policy)
    assert fields(refusals) == ([] if allowed else ["owner"])
    if not allowed:
        assert refusals[0].message == (
            f"user {who.user} may not run tasks at site partner-a: only users alice, or "
            "members of groups neuro may; ask the site's data stewards (carol)"
        )


# --- datasets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "url"),
    [
        (ALICE, "dataset://partner-a/adni/visits/2015.csv"),
        (BOB, "dataset://partner-a/adni"),
        (EVE, "dataset://partner-a/open/x"),
    ],
    ids=["listed-user", "group-member", "open-to-everyone"],
)
def test_a_user_may_read_a_dataset_they_are_granted(who: Identity, url: str) -> None:
    assert check(task(inputs=reads(url)), who=who) == []


@pytest.mark.parametrize(
    ("who", "url"),
    [
        (EVE, "dataset://partner-a/adni/x"),
        (ALICE, "dataset://partner-a/closed/x"),
        (ROOT, "dataset://partner-a/closed/x"),
    ],
    ids=["not-granted", "closed-dataset", "hub-admin"],
)
def test_a_user_may_not_read_a_dataset_they_are_not_granted(who: Identity, url: str) -> None:
    spec = task(inputs=(Input(path="/in/a", content="x"), *reads("https://e.org/a", url)))
    [refusal] = check(spec, who=who, policy=SitePolicy(stewards=frozenset({"carol"})))
    assert refusal.field == "inputs[2].url"
    assert refusal.message.startswith(f"user {who.user} may not use dataset ")
    assert refusal.message.endswith("at site partner-a; ask the site's data stewards (carol)")


def test_a_dataset_of_another_site_is_refused() -> None:
    [refusal] = check(task(inputs=reads("dataset://partner-b/adni/x")))
    assert refusal.field == "inputs[0].url"
    assert refusal.message.startswith("names site partner-b, but this is site partner-a")


def test_a_task_bound_to_another_site_is_refused() -> None:
    elsewhere = Resources(backend_parameters={"site": "partner-b"})
    here = Resources(backend_parameters={"site": SITE})
    [refusal] = check(task(resources=elsewhere))
    assert refusal == Refusal(
        field="resources.backend_parameters.site",
        message="names site partner-b, but this is site partner-a",
    )
    assert check(task(resources=here)) == []


def test_an_unknown_dataset_is_refused_listing_the_sites_datasets() -> None:
    [refusal] = check(task(inputs=reads("dataset://partner-a/adnii/x")))
    assert refusal.field == "inputs[0].url"
    assert refusal.message == (
        "site partner-a has no dataset 'adnii'; its datasets: adni, closed, open"
    )


def test_a_malformed_dataset_url_is_refused_saying_why() -> None:
    [refusal] = check(task(inputs=reads("dataset://partner-a/adni/../etc")))
    assert refusal.field == "inputs[0].url"
    assert "'..' path segment" in refusal.message


def test_a_task_that_reads_a_dataset_may_not_ask_for_network() -> None:
    resources = Resources(backend_parameters={"network": "host"})
    spec = task(inputs=reads("dataset://partner-a/adni/x"), resources=resources)
    [refusal] = check(spec)
    assert refusal.field == "resources.backend_parameters.network"
    assert refusal.message == (
        "a task that reads a dataset (inputs[0]) runs without network at site partner-a; "
        "remove network=host"
    )


def test_the_network_key_is_named_as_the_task_spelled_it() -> None:
    resources = Resources(backend_parameters={"NETWORK": "host"})
    spec = task(inputs=reads("dataset://partner-a/adni/x"), resources=resources)
    assert fields(check(spec)) == ["resources.backend_parameters.NETWORK"]


def test_no_network_is_fine_with_a_dataset_and_network_is_fine_without_one() -> None:
    off = Resources(backend_parameters={"network": "none"})
    on = Resources(backend_parameters={"network": "host"})
    assert check(task(inputs=reads("dataset://partner-a/adni/x"), resources=off)) == []
    assert check(task(inputs=reads("https://example.org/a"), resources=on)) == []


def test_outputs_may_not_be_written_to_a_dataset() -> None:
    outputs = (
        Output(path="/out/a", url="file:///srv/out/a"),
        Output(path="/out/b", url="dataset://partner-a/adni/b"),
    )
    [refusal] = check(task(outputs=outputs))
    assert refusal.field == "outputs[1].url"
    assert "datasets are read-only" in refusal.message


# --- resources ----------------------------------------------------------------------------------

CAPS = SitePolicy(max_cpu_cores=4, max_ram_gb=8, max_disk_gb=10)


def test_resources_at_the_caps_pass() -> None:
    assert check(task(resources=Resources(cpu_cores=4, ram_gb=8, disk_gb=10)), policy=CAPS) == []
    assert check(task(resources=Resources(cpu_cores=64, ram_gb=512)), policy=NONE) == []


@pytest.mark.parametrize(
    ("resources", "field", "message"),
    [
        (
            Resources(cpu_cores=5),
            "resources.cpu_cores",
            "asks for 5 cores; site partner-a allows at most 4 per task",
        ),
        (
            Resources(ram_gb=8.5),
            "resources.ram_gb",
            "asks for 8.5 GB of memory; site partner-a allows at most 8 per task",
        ),
        (
            Resources(disk_gb=11),
            "resources.disk_gb",
            "asks for 11 GB of disk; site partner-a allows at most 10 per task",
        ),
    ],
)
def test_resources_above_a_cap_are_refused(resources: Resources, field: str, message: str) -> None:
    assert check(task(resources=resources), policy=CAPS) == [Refusal(field=field, message=message)]


# --- all together -------------------------------------------------------------------------------


def test_every_reason_is_listed_in_task_order() -> None:
    policy = replace(CAPS, allowed_users=frozenset({"alice"}), allowed_images=frozenset({D1}))
    spec = task(
        "tool:latest",
        inputs=reads("dataset://partner-a/adni/x"),
        outputs=(Output(path="/o", url="dataset://partner-a/adni/o"),),
        resources=Resources(cpu_cores=8, backend_parameters={"network": "host"}),
    )
    assert fields(check(spec, who=EVE, policy=policy)) == [
        "owner",
        "executors[0].image",
        "inputs[0].url",
        "outputs[0].url",
        "resources.cpu_cores",
        "resources.backend_parameters.network",
    ]


def test_a_refusal_becomes_the_invalid_task_error_the_api_reports() -> None:
    error = Refusal(field="inputs[0].url", message="no").error()
    assert isinstance(error, InvalidTask)
    assert (error.field, str(error)) == ("inputs[0].url", "inputs[0].url: no")


# --- outputs at output time ---------------------------------------------------------------------


def test_outputs_within_the_limit_may_leave() -> None:
    policy = SitePolicy(max_output_bytes=100)
    assert outputs_within([60, 40], policy) is None
    assert outputs_within([10**12], NONE) is None
    assert outputs_within([], SitePolicy(max_output_bytes=0)) is None


def test_outputs_over_the_limit_are_held() -> None:
    refusal = outputs_within([6_000_000, 5_000_000], SitePolicy(max_output_bytes=10_000_000))
    assert refusal is not None
    assert refusal.field == "outputs"
    assert refusal.message.startswith(
        "the outputs total 11,000,000 bytes; this site lets at most 10,000,000 bytes leave"
    )


# --- the models' own rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"require_approval": True}, "stewards"),
        ({"output_review": True}, "stewards"),
        ({"allowed_images": frozenset({"sha256:abc"})}, "allowed_images"),
        ({"max_cpu_cores": 0}, "max_cpu_cores"),
        ({"max_ram_gb": -1.0}, "max_ram_gb"),
        ({"max_output_bytes": -1}, "max_output_bytes"),
        ({"allowed_users": frozenset({" "})}, "allowed_users"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidTask) as caught:
        SitePolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_approval_with_a_steward_is_a_policy() -> None:
    policy = SitePolicy(require_approval=True, output_review=True, stewards=frozenset({"carol"}))
    assert policy.is_steward("carol")
    assert not policy.is_steward("alice")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "ADNI", "path": PurePosixPath("/srv/a")}, "name"),
        ({"name": "-adni", "path": PurePosixPath("/srv/a")}, "name"),
        ({"name": "adni", "path": PurePosixPath("srv/a")}, "path"),
        ({"name": "adni", "path": PurePosixPath("/a"), "users": frozenset({""})}, "users"),
    ],
)
def test_a_dataset_needs_a_name_and_an_absolute_path(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidTask) as caught:
        Dataset(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_the_hub_sees_a_datasets_name_and_description_only() -> None:
    assert ADNI.metadata() == {"name": "adni", "description": "MRI visits"}
