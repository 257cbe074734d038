"""A backend's cores, memory and scratch disk: what each task books, and what is left."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from toolferry.domain.task import Resources, TaskSpec

_EPS = 1e-9  # float sums of bookings must not refuse an exact fit


@dataclass(frozen=True)
class Reservation:
    cpus: float
    ram_gb: float
    disk_gb: float = 0


class Capacity:
    """Bookings by task id against a fixed total; thread-safe."""

    def __init__(
        self,
        *,
        cpus: float,
        ram_gb: float,
        default_cpus: float,
        default_ram_gb: float,
        disk_gb: float | None = None,
    ) -> None:
        """``disk_gb``: scratch disk tasks share (None: disk is not booked)."""
        self.cpus = cpus
        self.ram_gb = ram_gb
        self.disk_gb = disk_gb
        self.default_cpus = min(default_cpus, cpus)
        self.default_ram_gb = min(default_ram_gb, ram_gb)
        self._lock = threading.Lock()
        self._booked: dict[str, Reservation] = {}

    def booking(self, spec: TaskSpec) -> Reservation:
        """What ``spec`` books: what it asks for, else the site's defaults."""
        res = spec.resources or Resources()
        return Reservation(
            cpus=float(res.cpu_cores) if res.cpu_cores else self.default_cpus,
            ram_gb=res.ram_gb if res.ram_gb else self.default_ram_gb,
            disk_gb=(res.disk_gb or 0) if self.disk_gb is not None else 0,
        )

    def reserve(self, task_id: str, need: Reservation, *, force: bool = False) -> bool:
        """Book ``need`` for the task; False if it holds a booking or does not fit (unless
        ``force``: a task re-attached after a restart already runs)."""
        with self._lock:
            if task_id in self._booked:
                return False
            cpus = sum(r.cpus for r in self._booked.values()) + need.cpus
            ram = sum(r.ram_gb for r in self._booked.values()) + need.ram_gb
            disk = sum(r.disk_gb for r in self._booked.values()) + need.disk_gb
            too_much = cpus > self.cpus + _EPS or ram > self.ram_gb + _EPS
            if self.disk_gb is not None:
                too_much = too_much or disk > self.disk_gb + _EPS
            if not force and too_much:
                return False
            self._booked[task_id] = need
            return True

    def release(self, task_id: str) -> bool:
        """Drop the task's booking; False if it held none."""
        with self._lock:
            return self._booked.pop(task_id, None) is not None

    def free(self) -> tuple[float, float]:
        with self._lock:
            cpus = self.cpus - sum(r.cpus for r in self._booked.values())
            ram = self.ram_gb - sum(r.ram_gb for r in self._booked.values())
        return cpus, ram

    def default_slots(self) -> int:
        """How many tasks with the default booking could start now."""
        cpus, ram = self.free()
        unbounded = 1 << 30
        by_cpu = int((cpus + _EPS) // self.default_cpus) if self.default_cpus else unbounded
        by_ram = int((ram + _EPS) // self.default_ram_gb) if self.default_ram_gb else unbounded
        return max(0, min(by_cpu, by_ram))

    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._booked)
