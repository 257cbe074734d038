"""Slurm: each attempt's worker is an ``sbatch`` job, followed with ``squeue``, cancelled with
``scancel``. Everything else is the shared batch base.

TES resources map to ``--cpus-per-task`` (cores, rounded up), ``--mem`` (MB), ``--tmp`` (disk,
MB) and ``--time`` (the task's INITIALIZING and RUNNING limits, when both are set); the backend
parameters ``partition``, ``account`` and ``qos`` pass through.

State table — Slurm's job state codes (https://slurm.schedmd.com/squeue.html#SECTION_JOB-STATE-CODES)
as the site reads them. The task's own state comes from its worker; this table only says whether
the job may still report, and the word quoted when it ended without reporting:

=================================================================  ========  ==============
Slurm state                                                        phase     the task
=================================================================  ========  ==============
PENDING, CONFIGURING, REQUEUED, REQUEUE_FED, REQUEUE_HOLD,          pending   stays QUEUED
RESV_DEL_HOLD, SUSPENDED, STOPPED
RUNNING, COMPLETING, SIGNALING, STAGE_OUT, RESIZING                 running   as its worker
COMPLETED, CANCELLED, FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL,    ended     as its worker
PREEMPTED, BOOT_FAIL, DEADLINE, SPECIAL_EXIT, REVOKED                         reported; else
                                                                              SYSTEM_ERROR (or
                                                                              a retry) naming
                                                                              the state
(no longer listed)                                                  ended     same
=================================================================  ========  ==============
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from toolferry.backends.base import Size
from toolferry.backends.batch import BatchJob, JobStatus, Phase

_PENDING = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESV_DEL_HOLD",
        "SUSPENDED",
        "STOPPED",
    }
)
_RUNNING = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"})
# Node states whose cores can take jobs (sinfo's %T, without flags such as '*' or '~').
_USABLE = ("idle", "mixed", "allocated", "completing", "planned")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


def phase_of(state: str) -> Phase:
    """A Slurm job state code as a phase; anything else (and any state Slurm adds) ended."""
    base = state.split()[0].rstrip("+") if state else ""
    if base in _PENDING:
        return Phase.PENDING
    if base in _RUNNING:
        return Phase.RUNNING
    return Phase.ENDED


class SlurmDialect:
    name = "slurm"
    description = "each attempt's worker is a Slurm batch job on a compute node (sbatch)"
    parameters: Mapping[str, str] = {
        "partition": "the Slurm partition (default: the cluster's, or the site's setting)",
        "account": "the Slurm account to charge",
        "qos": "the Slurm quality of service",
    }

    def __init__(
        self,
        *,
        partition: str | None = None,
        extra_args: tuple[str, ...] = (),
        bin_dir: str = "",
    ) -> None:
        """``partition``: the site's default; ``extra_args``: more sbatch options for every
        job; ``bin_dir``: where the Slurm commands are (empty: on PATH)."""
        self.partition = partition
        self.extra_args = extra_args
        self._bin = bin_dir.rstrip("/") + "/" if bin_dir else ""
        self.partitions: tuple[str, ...] = ()  # known once the size command ran

    def submit_command(self, job: BatchJob) -> list[str]:
        argv = [
            f"{self._bin}sbatch",
            "--parsable",
            f"--job-name={job.name}",
            f"--output={job.output}",
            f"--chdir={job.work_dir}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={job.cpus}",
        ]
        if job.ram_mb:
            argv.append(f"--mem={job.ram_mb}M")
        if job.tmp_mb:
            argv.append(f"--tmp={job.tmp_mb}M")
        if job.time_minutes:
            argv.append(f"--time={job.time_minutes}")
        partition = job.parameters.get("partition") or self.partition
        if partition:
            argv.append(f"--partition={partition}")
        for key in ("account", "qos"):
            if job.parameters.get(key):
                argv.append(f"--{key}={job.parameters[key]}")
        return [*argv, *self.extra_args, str(job.script)]

    def job_id(self, stdout: str) -> str:
        # --parsable prints "ID" or "ID;CLUSTER".
        first = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        job_id = first.split(";")[0].strip()
        if not job_id.isdigit():
            raise ValueError(f"sbatch printed no job id: {stdout.strip()!r}")
        return job_id

    def status_command(self) -> list[str]:
        return [f"{self._bin}squeue", "--me", "--noheader", "--states=all", "--format=%i|%j|%T|%r"]

    def parse_status(self, stdout: str) -> dict[str, JobStatus]:
        jobs: dict[str, JobStatus] = {}
        for line in stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) < 3 or not parts[0]:
                continue
            job_id, name, state = parts[0], parts[1], parts[2]
            reason = parts[3] if len(parts) > 3 else ""
            jobs[job_id] = JobStatus(
                job_id=job_id, name=name, phase=phase_of(state), state=state, reason=reason
            )
        return jobs

    def cancel_command(self, job_id: str) -> list[str]:
        return [f"{self._bin}scancel", job_id]

    def size_command(self) -> list[str]:
        argv = [f"{self._bin}sinfo", "--noheader", "--Node", "--format=%N|%c|%m|%d|%T|%P"]
        if self.partition:
            argv.append(f"--partition={self.partition}")
        return argv

    def parse_size(self, stdout: str) -> tuple[Size, Size]:
        """Usable nodes' cores, memory (MB) and tmp disk (MB); a node in several partitions
        is listed once per partition and counted once."""
        nodes: dict[str, tuple[float, float, float]] = {}
        partitions: list[str] = []
        for line in stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) < 5:
                continue
            name, cpus, mem, disk, state = parts[:5]
            if len(parts) > 5:
                partition = parts[5].rstrip("*")
                if partition and partition not in partitions:
                    partitions.append(partition)
            if not state.rstrip("*~#!%$@^-").startswith(_USABLE):
                continue
            try:
                nodes[name] = (float(cpus), float(mem) / 1024, float(disk) / 1024)
            except ValueError:
                continue
        self.partitions = tuple(partitions)
        if not nodes:
            return Size(cpus=0, ram_gb=0), Size(cpus=0, ram_gb=0)
        total = Size(
            cpus=sum(n[0] for n in nodes.values()),
            ram_gb=round(sum(n[1] for n in nodes.values()), 3),
            disk_gb=round(sum(n[2] for n in nodes.values()), 3),
        )
        largest = Size(
            cpus=max(n[0] for n in nodes.values()),
            ram_gb=round(max(n[1] for n in nodes.values()), 3),
            disk_gb=round(max(n[2] for n in nodes.values()), 3),
        )
        return total, largest

    def check(self, parameters: Mapping[str, str]) -> str | None:
        for key in ("partition", "account", "qos"):
            value = parameters.get(key)
            if value is not None and not _NAME.match(value):
                return f"{key} {value!r} is not a valid Slurm name"
        partition = parameters.get("partition")
        if partition and self.partitions and partition not in self.partitions:
            return (
                f"partition {partition!r} does not exist; partitions: {', '.join(self.partitions)}"
            )
        return None
