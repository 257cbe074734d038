"""site.toml: the documented example loads; every mistake is reported with the file and key."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from toolferry.agent.site_config import (
    SiteConfigError,
    load_site_config,
    site_config_from_dict,
)
from toolferry.domain.environment import Review
from toolferry.domain.site_policy import Dataset, SitePolicy

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "site.example.toml"
MINIMAL = """\
name = "partner-a"
data_dir = "/var/lib/toolferry-agent"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = write(tmp_path, text)
    with pytest.raises(SiteConfigError) as caught:
        load_site_config(path)
    for line in str(caught.value).splitlines():
        assert line.startswith(f"{path}: ")
    return caught.value.problems


def test_the_documented_example_loads() -> None:
    site = load_site_config(EXAMPLE)
    assert site.name == "partner-a"
    assert site.data_dir == Path("/var/lib/toolferry-agent")
    assert site.datasets["adni"] == Dataset(
        name="adni",
        description="ADNI MRI visits 2004-2015, de-identified",
        path=PurePosixPath("/srv/data/adni"),
        users=frozenset({"alice"}),
        groups=frozenset({"neuro"}),
    )
    assert site.datasets["ppmi"].users == frozenset({"*"})
    assert site.policy == SitePolicy(
        allowed_images=frozenset({"sha256:" + "0123456789abcdef" * 4}),
        allowed_publishers=frozenset({"lab-x"}),
        minimum_review=Review.TRUSTED,
        allowed_users=frozenset({"alice", "bob"}),
        allowed_groups=frozenset({"neuro"}),
        max_cpu_cores=4,
        max_ram_gb=8,
        max_disk_gb=10,
        max_output_bytes=10_000_000,
        require_approval=True,
        output_review=True,
        stewards=frozenset({"carol"}),
    )
    settings = site.settings
    assert (settings.runtime, settings.capacity_cpus, settings.capacity_ram_gb) == (
        "docker",
        16,
        64,
    )
    assert settings.data_dir == Path("/var/lib/toolferry-agent")


def test_a_minimal_site_has_no_datasets_and_restricts_nothing(tmp_path: Path) -> None:
    site = load_site_config(write(tmp_path, MINIMAL))
    assert site.datasets == {}
    assert site.policy == SitePolicy()
    assert not site.policy.restricts_images
    assert site.warnings() == []


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('nmae = "x"\n', "nmae", "unknown key; did you mean 'name'?"),
        (
            '[[datasets]]\nname = "a"\npath = "/a"\nuser = ["x"]\n',
            "datasets[0].user",
            "unknown key; did you mean 'users'?",
        ),
        (
            "[policy]\nmax_cpus = 2\n",
            "policy.max_cpus",
            "unknown key; did you mean 'max_cpu_cores'?",
        ),
        (
            "[extra]\nx = 1\n",
            "extra",
            "unknown key; known keys here: data_dir, datasets, name, policy, settings",
        ),
        (
            "[settings]\nruntme = 'docker'\n",
            "settings.runtme",
            "unknown key; did you mean 'runtime'?",
        ),
    ],
)
def test_an_unknown_key_is_an_error_naming_it(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    assert problems(tmp_path, MINIMAL + text) == [(key, message)]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            '[policy]\nmax_cpu_cores = "4"\n',
            "policy.max_cpu_cores",
            "Input should be a valid integer, got '4'",
        ),
        (
            "[policy]\nmax_cpu_cores = 4.5\n",
            "policy.max_cpu_cores",
            "Input should be a valid integer, got 4.5",
        ),
        (
            '[policy]\nrequire_approval = "yes"\n',
            "policy.require_approval",
            "Input should be a valid boolean, got 'yes'",
        ),
        (
            '[policy]\nallowed_users = "alice"\n',
            "policy.allowed_users",
            "Input should be a valid list, got 'alice'",
        ),
        (
            '[policy]\nminimum_review = "reviewed"\n',
            "policy.minimum_review",
            "Input should be 'draft', 'in-review' or 'trusted', got 'reviewed'",
        ),
        (
            "[[datasets]]\nname = 1\npath = 2\n",
            "datasets[0].name",
            "Input should be a valid string, got 1",
        ),
        (
            '[settings]\ncapacity_cpus = "many"\n',
            "settings.capacity_cpus",
            "Input should be a valid number, unable to parse string as a number, got 'many'",
        ),
    ],
)
def test_a_wrong_type_is_an_error_naming_the_key(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    assert (key, message) in problems(tmp_path, MINIMAL + text)


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    assert problems(tmp_path, 'name = "p"\n[[datasets]]\nname = "a"\n') == [
        ("data_dir", "is required"),
        ("datasets[0].path", "is required"),
    ]


def test_every_problem_of_meaning_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
name = "Partner-A"
data_dir = "state"
[[datasets]]
name = "adni"
path = "data/adni"
[[datasets]]
name = "ppmi"
path = "/srv/ppmi"
[[datasets]]
name = "adni"
path = "/srv/adni2"
[policy]
require_approval = true
[settings]
data_dir = "/elsewhere"
"""
    found = problems(tmp_path, text)
    assert [key for key, _ in found] == [
        "name",
        "data_dir",
        "datasets[0].path",
        "datasets[2].name",
        "policy.stewards",
        "settings.data_dir",
    ]
    assert dict(found)["datasets[0].path"] == "must be an absolute path, got 'data/adni'"
    assert dict(found)["datasets[2].name"] == "dataset 'adni' is declared twice (also datasets[0])"
    assert dict(found)["policy.stewards"] == (
        "require_approval is on, so someone must approve: name at least one steward"
    )


@pytest.mark.parametrize(
    ("policy", "key"),
    [
        ('allowed_images = ["sha256:abc"]', "policy.allowed_images"),
        ("max_ram_gb = 0", "policy.max_ram_gb"),
        ("output_review = true", "policy.stewards"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(tmp_path: Path, policy: str, key: str) -> None:
    assert [k for k, _ in problems(tmp_path, f"{MINIMAL}[policy]\n{policy}\n")] == [key]


def test_settings_are_checked_by_settings(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL + '[settings]\nruntime = "dockr"\n')
    assert found == [
        ("settings.runtime", "Input should be 'auto', 'docker', 'podman' or 'none', got 'dockr'")
    ]


def test_the_file_wins_and_the_environment_only_fills_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLFERRY_RUNTIME", "podman")
    monkeypatch.setenv("TOOLFERRY_PORT", "9001")
    # set by the test harness for every test: must not move the agent's state
    monkeypatch.setenv("TOOLFERRY_DATA_DIR", str(tmp_path / "hub"))
    hub_config = tmp_path / "hub.toml"
    hub_config.write_text("capacity_cpus = 99\n")
    monkeypatch.setenv("TOOLFERRY_CONFIG", str(hub_config))
    site = load_site_config(write(tmp_path, MINIMAL + '[settings]\nruntime = "none"\n'))
    assert site.settings.runtime == "none"
    assert site.settings.port == 9001
    assert site.settings.data_dir == Path("/var/lib/toolferry-agent")
    assert site.settings.capacity_cpus != 99


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "p\n')
    with pytest.raises(SiteConfigError, match=r"site\.toml: not valid TOML: .*line 1"):
        load_site_config(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SiteConfigError) as caught:
        load_site_config(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: No such file or directory"


def test_from_a_dict_the_source_names_it_in_errors() -> None:
    with pytest.raises(SiteConfigError) as caught:
        site_config_from_dict({"name": "p"}, source="hub:site partner-a")
    assert str(caught.value) == "hub:site partner-a: data_dir: is required"


def test_warnings_name_datasets_nobody_may_use_or_that_are_missing(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    data: dict[str, Any] = {
        "name": "p",
        "data_dir": str(tmp_path / "agent"),
        "datasets": [
            {"name": "fine", "path": str(tmp_path / "here"), "groups": ["neuro"]},
            {"name": "closed", "path": str(tmp_path / "here")},
            {"name": "gone", "path": str(tmp_path / "gone"), "users": ["*"]},
        ],
    }
    assert site_config_from_dict(data).warnings() == [
        'dataset closed: no users or groups, so nobody may use it (users = ["*"] opens it to '
        "every user)",
        f"dataset gone: {tmp_path / 'gone'} is not a directory (yet); tasks that read it will fail",
    ]
