"""Hardware profiles and the canonical CPU architecture names."""

from __future__ import annotations

import math
from dataclasses import dataclass

from toolferry.domain.environment.checks import clean_opt_text, errors_under, set_field
from toolferry.domain.errors import InvalidTask
from toolferry.domain.task import Resources

# Canonical names are the OCI/Go GOARCH values used in image indexes.
_ARCH_ALIASES: dict[str, str] = {
    "amd64": "amd64",
    "x86_64": "amd64",
    "x86-64": "amd64",
    "x64": "amd64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "armv8": "arm64",
    "386": "386",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "arm": "arm",
    "armhf": "arm",
    "armv7": "arm",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "ppc64el": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64le",
    "loong64": "loong64",
    "loongarch64": "loong64",
}
CPU_ARCHITECTURES = frozenset(_ARCH_ALIASES.values())


def normalise_architecture(name: str) -> str:
    """``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``, ...; unknown names raise."""
    canonical = _ARCH_ALIASES.get(name.strip().lower())
    if canonical is None:
        known = ", ".join(sorted(CPU_ARCHITECTURES))
        raise InvalidTask("", f"{name!r} is not a known CPU architecture ({known})")
    return canonical


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """A hardware profile: ViCE's virtual, environment (physical) and minimal hardware."""

    cpu_cores: float | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    gpus: int | None = None
    cpu_architecture: str | None = None
    storage_type: str | None = None  # e.g. ssd, nvme, lustre
    interconnect: str | None = None  # e.g. infiniband

    def __post_init__(self) -> None:
        for name in ("cpu_cores", "ram_gb", "disk_gb"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidTask(name, "must be a number greater than 0")
        if self.gpus is not None and self.gpus < 0:
            raise InvalidTask("gpus", "must not be negative")
        if self.cpu_architecture is not None:
            with errors_under("cpu_architecture"):
                set_field(self, "cpu_architecture", normalise_architecture(self.cpu_architecture))
        set_field(self, "storage_type", clean_opt_text(self.storage_type, "storage_type"))
        set_field(self, "interconnect", clean_opt_text(self.interconnect, "interconnect"))

    def to_resources(self) -> Resources:
        """TES resources asking for at least this hardware (cores rounded up)."""
        return Resources(
            cpu_cores=math.ceil(self.cpu_cores) if self.cpu_cores is not None else None,
            ram_gb=self.ram_gb,
            disk_gb=self.disk_gb,
        )
