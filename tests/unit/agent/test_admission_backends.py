"""Admission on a site with several backends: which backend a task goes to, and the 400s
naming the field when none can run it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.backends.fakes import spec
from tests.unit.fakes import FakeRuntime

from toolferry.agent.admission import Admission
from toolferry.agent.capacity import Capacity
from toolferry.backends.base import BackendCapabilities, Size
from toolferry.domain.errors import InvalidTask
from toolferry.domain.task import TaskSpec
from toolferry.runtimes.base import RuntimeCapabilities
from toolferry.storage.router import default_router

PARAMS = "resources.backend_parameters"


class ServiceRuntime(FakeRuntime):
    """A runtime whose executors cannot be fed stdin (like Swarm services)."""

    name = "services"
    capabilities = RuntimeCapabilities(
        name="services",
        uses_images=True,
        enforces_cpu=True,
        enforces_ram=True,
        isolates_network=True,
        stdin=False,
    )


LOCAL = BackendCapabilities(
    name="local",
    description="this machine",
    total=Size(cpus=4, ram_gb=8),
    largest=Size(cpus=4, ram_gb=8),
    runtimes=("fake",),
)
SWARM = BackendCapabilities(
    name="swarm",
    description="services",
    total=Size(cpus=16, ram_gb=32),
    largest=Size(cpus=8, ram_gb=16),
    parameters={"constraints": "Swarm placement constraints"},
    runtimes=("services",),
    default_runtime="services",
)
SLURM = BackendCapabilities(
    name="slurm",
    description="batch jobs",
    total=Size(cpus=128, ram_gb=512),
    largest=Size(cpus=32, ram_gb=128, disk_gb=100),
    parameters={"partition": "the Slurm partition", "account": "the account", "qos": "the QOS"},
    runtimes=("fake",),
    workers_in_hub=False,
)


def admission(
    tmp_path: Path,
    *backends: BackendCapabilities,
    problems: dict[str, str] | None = None,
    unavailable_backends: dict[str, str] | None = None,
    asked: list[str] | None = None,
) -> Admission:
    """An admission of ``backends`` (the first the default); each backend's own check
    answers with ``problems[name]`` and records its name in ``asked``."""
    chosen = backends or (LOCAL, SWARM, SLURM)

    def check(name: str, task: TaskSpec) -> str | None:
        if asked is not None:
            asked.append(name)
        return (problems or {}).get(name)

    return Admission(
        backends=chosen,
        check=check,
        runtimes={"fake": FakeRuntime(), "services": ServiceRuntime()},
        default_runtime="fake",
        unavailable={"docker": "no Docker Engine answers"},
        storage=default_router([tmp_path]),
        capacities={
            b.name: Capacity(
                cpus=b.total.cpus, ram_gb=b.total.ram_gb, default_cpus=1, default_ram_gb=0
            )
            for b in chosen
        },
        allow_task_network=False,
        unavailable_backends=unavailable_backends,
    )


def refused(adm: Admission, task: TaskSpec) -> InvalidTask:
    with pytest.raises(InvalidTask) as raised:
        adm.admit(task)
    return raised.value


def backend_of(task: TaskSpec) -> str | None:
    return task.backend_parameter("backend")


# -- the default and the first that can hold it ----------------------------------------------
def test_a_task_the_default_backend_holds_stays_there_untouched(tmp_path: Path) -> None:
    task = spec(cpus=4, ram_gb=8)
    kept, warnings = admission(tmp_path).admit(task)
    assert backend_of(kept) is None and kept.resources == task.resources
    assert not any("backend" in w for w in warnings)
    plain = spec()
    assert admission(tmp_path).admit(plain)[0] is plain


@pytest.mark.parametrize(
    ("task", "chosen"),
    [
        (spec(cpus=6), "swarm"),  # too many cores for local
        (spec(ram_gb=12), "swarm"),  # too much memory for local
        (spec(cpus=6, ram_gb=64), "slurm"),  # too much memory for swarm too
        (spec(cpus=20), "slurm"),
    ],
)
def test_a_task_too_big_for_the_default_goes_to_the_first_that_holds_it(
    tmp_path: Path, task: TaskSpec, chosen: str
) -> None:
    kept, warnings = admission(tmp_path).admit(task)
    assert backend_of(kept) == chosen
    assert f"runs on backend {chosen}: the default backend local cannot hold it" in warnings
    assert kept.resources is not None and task.resources is not None
    assert (kept.resources.cpu_cores, kept.resources.ram_gb) == (
        task.resources.cpu_cores,
        task.resources.ram_gb,
    )


def test_disk_counts_only_where_a_backend_knows_its_disks(tmp_path: Path) -> None:
    adm = admission(tmp_path, SLURM, LOCAL)  # slurm is the default here
    kept, warnings = adm.admit(spec(disk_gb=500))  # slurm's nodes have 100 GB of tmp disk
    assert backend_of(kept) == "local"
    assert "disk_gb is not reserved or limited by backend local" in warnings
    assert backend_of(adm.admit(spec(disk_gb=100))[0]) is None


def test_a_task_too_big_for_every_backend_names_the_field_and_each_reason(
    tmp_path: Path,
) -> None:
    error = refused(admission(tmp_path), spec(cpus=64))
    assert error.field == "resources.cpu_cores"
    assert error.message == (
        "asks for 64 cores; backend local has at most 4 for one task (and no other backend "
        "can hold it: backend swarm: asks for 64 cores; backend swarm has at most 8 for one "
        "task; backend slurm: asks for 64 cores; backend slurm has at most 32 for one task)"
    )
    memory = refused(admission(tmp_path), spec(ram_gb=256))
    assert (
        memory.field == "resources.ram_gb" and "backend slurm has at most 128 GB" in memory.message
    )


def test_with_a_single_backend_the_reason_names_no_other(tmp_path: Path) -> None:
    error = refused(admission(tmp_path, LOCAL), spec(cpus=5))
    assert error.message == "asks for 5 cores; backend local has at most 4 for one task"


# -- backend parameters ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "chosen"),
    [
        ({"partition": "debug"}, "slurm"),
        ({"Account": "lab", "QOS": "low"}, "slurm"),  # keys are case-insensitive
        ({"constraints": "node.role==manager"}, "swarm"),
    ],
)
def test_a_backend_parameter_sends_the_task_to_a_backend_that_reads_it(
    tmp_path: Path, params: dict[str, str], chosen: str
) -> None:
    kept, warnings = admission(tmp_path).admit(spec(parameters=params))
    assert backend_of(kept) == chosen
    assert kept.resources is not None and kept.resources.backend_parameters == {
        **{k.lower(): v for k, v in params.items()},
        "backend": chosen,
    }
    assert any(w.startswith(f"runs on backend {chosen}") for w in warnings)


def test_parameters_no_single_backend_reads_are_refused(tmp_path: Path) -> None:
    error = refused(admission(tmp_path), spec(partition="debug", constraints="node.role==worker"))
    assert error.field == f"{PARAMS}.partition"
    assert error.message.startswith("is read by backend slurm only, not local")
    assert "backend swarm: is read by backend slurm only, not swarm" in error.message
    assert "backend slurm: is read by backend swarm only, not slurm" in error.message


def test_a_named_backend_refuses_parameters_it_does_not_read_naming_the_reader(
    tmp_path: Path,
) -> None:
    error = refused(admission(tmp_path), spec(backend="swarm", partition="debug"))
    assert error.field == f"{PARAMS}.partition"
    assert error.message == "is read by backend slurm only, not swarm"
    local = refused(admission(tmp_path), spec(backend="local", constraints="node.role==worker"))
    assert local.message == "is read by backend swarm only, not local"


def test_a_named_backend_is_used_when_it_can_hold_the_task(tmp_path: Path) -> None:
    kept, warnings = admission(tmp_path).admit(spec(backend="slurm", partition="debug"))
    assert backend_of(kept) == "slurm"
    assert not any(w.startswith("runs on backend") for w in warnings)  # the task asked for it
    error = refused(admission(tmp_path), spec(backend="swarm", cpus=12))
    assert error.field == "resources.cpu_cores" and "backend swarm has at most 8" in error.message


def test_an_unknown_or_unavailable_backend_is_refused_saying_why(tmp_path: Path) -> None:
    adm = admission(tmp_path, unavailable_backends={"kubernetes": "no cluster answers"})
    error = refused(adm, spec(backend="kubernetes"))
    assert error.field == f"{PARAMS}.backend"
    assert error.message == (
        "backend 'kubernetes' cannot be used here: no cluster answers; available: local, swarm, "
        "slurm"
    )
    assert "'pbs' cannot be used here: unknown backend" in refused(adm, spec(backend="pbs")).message


def test_the_backends_own_check_is_asked_and_its_reason_refuses(tmp_path: Path) -> None:
    asked: list[str] = []
    problem = "partition 'gpu' does not exist; partitions: debug"
    adm = admission(tmp_path, problems={"slurm": problem}, asked=asked)
    error = refused(adm, spec(backend="slurm", partition="gpu"))
    assert error.field == PARAMS
    assert error.message == "partition 'gpu' does not exist; partitions: debug"
    assert asked == ["slurm"]
    chosen = refused(adm, spec(partition="gpu"))  # not named: every backend's reason
    assert "backend slurm: partition 'gpu' does not exist" in chosen.message


def test_supported_parameters_list_each_backends_own(tmp_path: Path) -> None:
    params = admission(tmp_path).backend_parameters()
    assert params["partition"] == "backend slurm: the Slurm partition"
    assert params["constraints"] == "backend swarm: Swarm placement constraints"
    assert params["backend"].startswith("where the worker runs; one of: local, swarm, slurm")
    assert {"runtime", "network", "max_attempts", "time_limit_running_s"} <= set(params)


def test_strict_refuses_an_unknown_key_and_lenient_drops_it(tmp_path: Path) -> None:
    error = refused(admission(tmp_path), spec(strict=True, gpu_type="a100", partition="debug"))
    assert error.field == f"{PARAMS}.gpu_type"
    assert "is not supported by this service (backend_parameters_strict is set)" in error.message
    assert "constraints" in error.message and "partition" in error.message
    kept, warnings = admission(tmp_path).admit(spec(gpu_type="a100"))
    assert kept.resources is not None and kept.resources.backend_parameters is None
    assert "backend parameter 'gpu_type' is not supported here and was ignored" in warnings


# -- runtimes ----------------------------------------------------------------------------------
def test_a_runtime_the_named_backend_does_not_offer_is_refused(tmp_path: Path) -> None:
    error = refused(admission(tmp_path), spec(backend="slurm", runtime="services"))
    assert error.field == f"{PARAMS}.runtime"
    assert error.message == "backend slurm runs executors with fake, not services"


def test_a_runtime_only_one_backend_offers_sends_the_task_there(tmp_path: Path) -> None:
    kept, _ = admission(tmp_path).admit(spec(runtime="services"))
    assert backend_of(kept) == "swarm"


def test_a_runtime_that_does_not_answer_is_refused_saying_why(tmp_path: Path) -> None:
    error = refused(admission(tmp_path), spec(runtime="docker"))
    assert error.field == f"{PARAMS}.runtime"
    assert error.message == (
        "runtime 'docker' cannot be used here: no Docker Engine answers; available: fake, services"
    )


def test_stdin_is_refused_where_the_runtime_cannot_feed_it(tmp_path: Path) -> None:
    error = refused(admission(tmp_path), spec(stdin="/data/in.txt", backend="swarm"))
    assert error.field == "executors[0].stdin"
    assert error.message == "runtime services cannot feed an executor's stdin"
    kept, _ = admission(tmp_path).admit(spec(stdin="/data/in.txt"))
    assert backend_of(kept) is None  # the default runtime feeds it


@pytest.mark.parametrize(
    ("backends", "task", "chosen"),
    [
        # swarm is the first backend large enough, but cannot feed stdin; slurm can.
        ((LOCAL, SWARM, SLURM), spec(cpus=6, stdin="/data/in.txt"), "slurm"),
        # a hub whose default backend is swarm (TOOLFERRY_BACKEND=swarm): local can feed it.
        ((SWARM, LOCAL, SLURM), spec(stdin="/data/in.txt"), "local"),
    ],
)
def test_a_task_with_stdin_goes_to_a_backend_whose_runtime_can_feed_it(
    tmp_path: Path, backends: tuple[BackendCapabilities, ...], task: TaskSpec, chosen: str
) -> None:
    """Choosing a backend skips those that cannot run the task; a runtime that cannot feed
    stdin cannot, so the task should go to the next backend, not be refused."""
    kept, _ = admission(tmp_path, *backends).admit(task)
    assert backend_of(kept) == chosen
