"""The Slurm dialect against output recorded from a real Slurm 22.05 (tests/unit/backends/data,
see its README for the commands)."""

from __future__ import annotations

from pathlib import Path

from toolferry.backends.batch import Phase
from toolferry.backends.slurm import SlurmDialect, phase_of

DATA = Path(__file__).with_name("data")


def recorded_states(*names: str) -> dict[str, str]:
    """job id → state, from squeue files recorded with ``-o '%i|%T|%r'``."""
    states = {}
    for name in names:
        for line in (DATA / name).read_text().splitlines():
            job_id, state, *_ = line.split("|")
            states[job_id] = state
    return states


def test_every_state_slurm_printed_has_its_phase() -> None:
    states = recorded_states(
        "squeue_all_ended.txt", "squeue_all_pending_running.txt", "squeue_jobs_ended.txt"
    )
    phases = {state: phase_of(state) for state in states.values()}
    assert phases.get("PENDING") is Phase.PENDING
    assert phases.get("RUNNING") is Phase.RUNNING
    for ended in ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT"):
        assert phases.get(ended) is Phase.ENDED, (ended, sorted(phases))


def test_the_recorded_sinfo_gives_the_backends_size() -> None:
    total, largest = SlurmDialect().parse_size((DATA / "sinfo_nodes.txt").read_text())
    assert (total.cpus, largest.cpus) == (2, 2)
    assert round(total.ram_gb * 1024) == 23081  # RealMemory, MB
    assert total.disk_gb is not None and round(total.disk_gb * 1024) == 258019  # TmpDisk, MB


def test_the_recorded_sbatch_output_gives_the_job_id() -> None:
    assert SlurmDialect().job_id((DATA / "sbatch_parsable.txt").read_text()) == "226"
