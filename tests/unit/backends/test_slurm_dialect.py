"""The Slurm dialect: the sbatch command it builds, and how it reads what sbatch, squeue and
sinfo print (samples in the format of Slurm 22.05, as the backend asks for it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolferry.backends.base import Size
from toolferry.backends.batch import BatchJob, JobStatus, Phase
from toolferry.backends.slurm import SlurmDialect, phase_of

ATTEMPT = Path("/shared/work/t1/1")


def job(
    *,
    cpus: int = 1,
    ram_mb: int | None = 512,
    tmp_mb: int | None = None,
    time_minutes: int | None = None,
    **parameters: str,
) -> BatchJob:
    return BatchJob(
        name="toolferry-t1-1",
        script=ATTEMPT / "job.sh",
        output=ATTEMPT / "job.out",
        work_dir=ATTEMPT,
        cpus=cpus,
        ram_mb=ram_mb,
        tmp_mb=tmp_mb,
        time_minutes=time_minutes,
        parameters=parameters,
    )


BASE = [
    "sbatch",
    "--parsable",
    "--job-name=toolferry-t1-1",
    f"--output={ATTEMPT}/job.out",
    f"--chdir={ATTEMPT}",
    "--nodes=1",
    "--ntasks=1",
]


# -- submit_command ----------------------------------------------------------------------------
def test_the_least_job_asks_for_its_cores_and_memory_and_nothing_else() -> None:
    argv = SlurmDialect().submit_command(job(cpus=1, ram_mb=512))
    assert argv == [*BASE, "--cpus-per-task=1", "--mem=512M", f"{ATTEMPT}/job.sh"]


def test_no_memory_asked_leaves_the_clusters_default() -> None:
    argv = SlurmDialect().submit_command(job(cpus=2, ram_mb=None))
    assert argv == [*BASE, "--cpus-per-task=2", f"{ATTEMPT}/job.sh"]


def test_cores_memory_tmp_disk_and_time_become_sbatch_options() -> None:
    argv = SlurmDialect().submit_command(job(cpus=4, ram_mb=3072, tmp_mb=10240, time_minutes=61))
    assert argv == [
        *BASE,
        "--cpus-per-task=4",
        "--mem=3072M",
        "--tmp=10240M",
        "--time=61",
        f"{ATTEMPT}/job.sh",
    ]


def test_the_site_partition_is_the_default_and_the_task_may_name_another() -> None:
    dialect = SlurmDialect(partition="debug")
    assert "--partition=debug" in dialect.submit_command(job())
    asked = dialect.submit_command(job(partition="long"))
    assert "--partition=long" in asked and "--partition=debug" not in asked
    assert not any(a.startswith("--partition") for a in SlurmDialect().submit_command(job()))
    assert "--partition=gpu" in SlurmDialect().submit_command(job(partition="gpu"))


def test_account_and_qos_pass_through_only_when_set() -> None:
    argv = SlurmDialect().submit_command(job(account="lab42", qos="normal"))
    assert "--account=lab42" in argv and "--qos=normal" in argv
    plain = SlurmDialect().submit_command(job(account="", qos=""))
    assert not any(a.startswith(("--account", "--qos")) for a in plain)


def test_extra_args_come_after_the_options_and_the_script_last() -> None:
    dialect = SlurmDialect(partition="debug", extra_args=("--exclusive", "--constraint=ssd"))
    argv = dialect.submit_command(job(account="lab42"))
    assert argv[-3:] == ["--exclusive", "--constraint=ssd", f"{ATTEMPT}/job.sh"]
    assert argv.index("--account=lab42") < argv.index("--exclusive")


@pytest.mark.parametrize("bin_dir", ["/opt/slurm/bin", "/opt/slurm/bin/"])
def test_bin_dir_prefixes_every_command(bin_dir: str) -> None:
    dialect = SlurmDialect(bin_dir=bin_dir)
    assert dialect.submit_command(job())[0] == "/opt/slurm/bin/sbatch"
    assert dialect.status_command()[0] == "/opt/slurm/bin/squeue"
    assert dialect.cancel_command("12") == ["/opt/slurm/bin/scancel", "12"]
    assert dialect.size_command()[0] == "/opt/slurm/bin/sinfo"


def test_commands_on_path_and_the_size_of_the_site_partition() -> None:
    assert SlurmDialect().cancel_command("12") == ["scancel", "12"]
    status = SlurmDialect().status_command()
    assert status[0] == "squeue" and "--me" in status and "--states=all" in status
    assert "--partition=debug" in SlurmDialect(partition="debug").size_command()
    assert not any(a.startswith("--partition") for a in SlurmDialect().size_command())


# -- job_id ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("123\n", "123"),
        ("123", "123"),
        ("123;cluster\n", "123"),
        ("4711;site-a\n", "4711"),
        ("sbatch: warning: memory is overcommitted\n124\n", "124"),
    ],
)
def test_the_job_id_is_read_from_parsable_output(stdout: str, expected: str) -> None:
    assert SlurmDialect().job_id(stdout) == expected


@pytest.mark.parametrize(
    "stdout", ["", "\n", "Submitted batch job\n", "abc;cluster", "12a", ";cluster"]
)
def test_no_job_id_is_a_value_error_quoting_the_output(stdout: str) -> None:
    with pytest.raises(ValueError, match="sbatch printed no job id"):
        SlurmDialect().job_id(stdout)


# -- parse_status and the state table ---------------------------------------------------------
PENDING = [
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESV_DEL_HOLD",
    "SUSPENDED",
    "STOPPED",
]
RUNNING = ["RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"]
ENDED = [
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "SPECIAL_EXIT",
    "REVOKED",
]


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        *((s, Phase.PENDING) for s in PENDING),
        *((s, Phase.RUNNING) for s in RUNNING),
        *((s, Phase.ENDED) for s in ENDED),
        ("CANCELLED+", Phase.ENDED),
        ("CANCELLED by 0", Phase.ENDED),
        ("RUNNING+", Phase.RUNNING),
        ("SOMETHING_NEW", Phase.ENDED),
        ("", Phase.ENDED),
    ],
)
def test_the_state_table(state: str, phase: Phase) -> None:
    assert phase_of(state) is phase


def test_parse_status_reads_every_state_of_the_table() -> None:
    states = PENDING + RUNNING + ENDED
    stdout = "".join(f"{i}|toolferry-t{i}-1|{s}|None\n" for i, s in enumerate(states, 100))
    jobs = SlurmDialect().parse_status(stdout)
    assert len(jobs) == len(states)
    for i, state in enumerate(states, 100):
        status = jobs[str(i)]
        assert status.state == state and status.phase is phase_of(state)
        assert status.name == f"toolferry-t{i}-1" and status.job_id == str(i)


# What ``squeue --me --noheader --states=all --format=%i|%j|%T|%r`` prints, with a blank line,
# a line too short, a line with no id and squeue's error line mixed in.
SQUEUE = """\
10|toolferry-01m810wme06c3mbpfdyg-1|CANCELLED|None
17|toolferry-01m810x1zq4c8d0fa3kt-1|PENDING|Resources
18|toolferry-01m810x2vn3dxb1s3p5w-2|PENDING|Priority
19|toolferry-01m810x3b8r4s6xk2y7z-1|RUNNING|None
20|toolferry-01m810xkt89p9c76e8je-1|OUT_OF_MEMORY|OutOfMemory

garbage
|no-id|RUNNING|None
squeue: error: Invalid user
21|wrap|TIMEOUT|TimeLimit
   22|toolferry-01m810xqv2bjpwjtrmht-1|COMPLETED|None{spaces}
23|short|FAILED
""".format(spaces="   ")


def test_parse_status_over_squeue_lines_skips_blank_and_malformed_ones() -> None:
    jobs = SlurmDialect().parse_status(SQUEUE)
    assert sorted(jobs, key=int) == ["10", "17", "18", "19", "20", "21", "22", "23"]
    assert jobs["17"] == JobStatus(
        job_id="17",
        name="toolferry-01m810x1zq4c8d0fa3kt-1",
        phase=Phase.PENDING,
        state="PENDING",
        reason="Resources",
    )
    assert jobs["19"].phase is Phase.RUNNING
    assert jobs["20"].phase is Phase.ENDED and jobs["20"].reason == "OutOfMemory"
    assert jobs["21"].name == "wrap" and jobs["21"].state == "TIMEOUT"
    assert jobs["22"].phase is Phase.ENDED and jobs["22"].reason == "None"
    assert jobs["23"].state == "FAILED" and jobs["23"].reason == ""


def test_parse_status_of_nothing_is_empty() -> None:
    assert SlurmDialect().parse_status("") == {}
    assert SlurmDialect().parse_status("\n\n") == {}


# -- parse_size --------------------------------------------------------------------------------
# ``sinfo --noheader --Node --format=%N|%c|%m|%d|%T|%P``: a node is listed once per partition.
SINFO = """\
node1|8|32000|100000|idle|debug*
node1|8|32000|100000|idle|long
node2|16|64000|200000|mixed|long
node3|4|16000|50000|allocated|debug*
node4|64|512000|900000|down*|debug*
node5|64|512000|900000|drained|long
node6|64|512000|900000|draining|gpu
node7|2|4096|0|completing|debug*
broken|x|1|1|idle|debug*
"""


def test_parse_size_counts_usable_nodes_once_and_remembers_partitions() -> None:
    dialect = SlurmDialect()
    total, largest = dialect.parse_size(SINFO)
    # node1 (in two partitions, once), node2, node3, node7; down and drain(ing) nodes are out.
    assert total == Size(
        cpus=8 + 16 + 4 + 2,
        ram_gb=round((32000 + 64000 + 16000 + 4096) / 1024, 3),
        disk_gb=round((100000 + 200000 + 50000 + 0) / 1024, 3),
    )
    assert largest == Size(cpus=16, ram_gb=round(64000 / 1024, 3), disk_gb=round(200000 / 1024, 3))
    assert dialect.partitions == ("debug", "long", "gpu")


def test_parse_size_of_this_machines_single_node() -> None:
    dialect = SlurmDialect()
    total, largest = dialect.parse_size("vm|2|23081|258019|idle|debug*\n")
    assert total == largest == Size(cpus=2, ram_gb=22.54, disk_gb=251.972)
    assert dialect.partitions == ("debug",)


@pytest.mark.parametrize(
    "stdout",
    ["", "node4|64|512000|900000|down*|debug*\n", "node5|64|512000|900000|drained|debug\n"],
)
def test_no_usable_node_is_a_size_of_nothing(stdout: str) -> None:
    assert SlurmDialect().parse_size(stdout) == (Size(cpus=0, ram_gb=0), Size(cpus=0, ram_gb=0))


def test_parse_size_without_the_partition_column() -> None:
    dialect = SlurmDialect()
    total, _ = dialect.parse_size("n1|4|8192|0|idle\nn2|4|8192|0|idle~\n")
    assert total.cpus == 8 and total.ram_gb == 16
    assert dialect.partitions == ()


# -- check -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("partition", "de bug"),
        ("account", "lab;rm -rf /"),
        ("qos", "a" * 65),
        ("partition", "a,b"),
        ("account", ""),
    ],
)
def test_check_refuses_bad_names_naming_the_key(key: str, value: str) -> None:
    reason = SlurmDialect().check({key: value})
    assert reason is not None and reason.startswith(f"{key} ") and repr(value) in reason


def test_check_accepts_slurm_names() -> None:
    dialect = SlurmDialect()
    assert dialect.check({}) is None
    assert dialect.check({"partition": "debug", "account": "lab_42.x", "qos": "high-prio"}) is None


def test_check_refuses_an_unknown_partition_once_the_partitions_are_known() -> None:
    dialect = SlurmDialect()
    assert dialect.check({"partition": "gpu"}) is None  # nothing known yet: sbatch will say
    dialect.parse_size(SINFO)
    assert dialect.check({"partition": "long"}) is None
    reason = dialect.check({"partition": "bigmem"})
    assert reason is not None
    assert "'bigmem' does not exist" in reason and "debug, long, gpu" in reason
