"""Configuration: defaults, then a TOML file, then ``TOOLFERRY_*`` environment variables.

The TOML file is ``$TOOLFERRY_CONFIG`` when set, else ``config.toml`` in the data directory.
Keys are the field names below, at the top level of the file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "toolferry"


def _memory_gb() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 2)
    except OSError:
        pass
    return 1.0


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by TOOLFERRY_CONFIG, else DATA_DIR/config.toml if present."""

    def __call__(self) -> dict[str, Any]:
        explicit = os.environ.get("TOOLFERRY_CONFIG")
        if explicit:
            path = Path(explicit)
            if not path.is_file():
                raise ValueError(f"TOOLFERRY_CONFIG names {path}, which is not a file")
        else:
            data_dir = Path(os.environ.get("TOOLFERRY_DATA_DIR") or default_data_dir())
            path = data_dir / "config.toml"
            if not path.is_file():
                return {}
        with path.open("rb") as fh:
            try:
                return tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: {exc}") from exc

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False


class StorageCredential(BaseModel):
    """Site-wide secrets for storage URLs starting with ``prefix`` (a TOML table in the
    ``storage_credentials`` array). Only the transfer of a matching URL gets them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(description="URLs this applies to, e.g. s3://bucket/ or https://host/dav/.")
    username: str | None = Field(default=None, description="HTTP basic, WebDAV or FTP user.")
    password: SecretStr | None = None
    token: SecretStr | None = Field(default=None, description="Bearer token (HTTP, WebDAV).")
    access_key: str | None = Field(default=None, description="S3 access key id.")
    secret_key: SecretStr | None = Field(default=None, description="S3 secret access key.")
    session_token: SecretStr | None = Field(default=None, description="S3 session token.")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="Extra HTTP headers.")


class Settings(BaseSettings):
    """Every setting of the hub, its site and the CLI."""

    model_config = SettingsConfigDict(env_prefix="TOOLFERRY_", extra="forbid")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded default keeps its database, task work dirs and files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default: SQLite in DATA_DIR/toolferry.db.",
    )
    url: str | None = Field(
        default=None, description="Hub the CLI talks to; unset: run an embedded hub in-process."
    )
    token: SecretStr | None = Field(default=None, description="Bearer token the CLI sends.")
    host: str = Field(default="127.0.0.1", description="Address `toolferry server` binds.")
    port: int = Field(default=8740, description="Port `toolferry server` binds.")
    auth: Literal["auto", "token", "none"] = Field(
        default="auto",
        description=(
            "token: every request needs a bearer token; none: no auth (loopback only); "
            "auto: token once any token exists, else none."
        ),
    )
    runtime: Literal["auto", "docker", "podman", "none"] = Field(
        default="auto",
        description="Default runtime of the hub's site; auto: docker when an engine answers, "
        "else podman, else none.",
    )
    docker_host: str | None = Field(
        default=None, description="Docker Engine address; default: DOCKER_HOST or the socket."
    )
    capacity_cpus: float = Field(
        default_factory=lambda: float(os.cpu_count() or 1),
        description="Cores the hub's site may hand to tasks.",
    )
    capacity_ram_gb: float = Field(
        default_factory=_memory_gb, description="Memory (GB) the hub's site may hand to tasks."
    )
    capacity_disk_gb: float = Field(
        default=0,
        ge=0,
        description="Scratch disk (GB) tasks of the local backend share, booked by their "
        "disk_gb (0: disk is not booked). Slurm's comes from its nodes' TmpDisk.",
    )
    default_cpu_cores: float = Field(
        default=1.0, description="Cores reserved for a task that does not ask for any."
    )
    default_ram_gb: float = Field(
        default=0.0, description="Memory (GB) reserved for a task that does not ask for any."
    )
    max_content_bytes: int = Field(
        default=1024 * 1024, description="Largest inline input `content` accepted (bytes)."
    )
    file_allowed_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Host directories file:// inputs and outputs may use (DATA_DIR/storage always).",
    )
    allow_task_network: bool = Field(
        default=True,
        description="Whether a task may ask for the network (backend parameter network=host).",
    )
    log_tail_bytes: int = Field(
        default=10 * 1024, description="How much of each executor's stdout/stderr task logs keep."
    )
    service_id: str = Field(
        default="org.toolferry.tes", description="service-info id (reverse domain name)."
    )
    organization_name: str = Field(default="toolferry", description="service-info organization.")
    organization_url: str = Field(
        default="https://toolferry.invalid/", description="service-info organization URL."
    )
    keep_work_dirs: bool = Field(
        default=False, description="Keep each attempt's work directory after it ends (debugging)."
    )
    bwrap_path: str = Field(default="bwrap", description="bubblewrap binary for the none runtime.")
    podman_path: str = Field(default="podman", description="podman binary for the podman runtime.")
    podman_global_args: list[str] = Field(
        default_factory=lambda: ["--runtime", "runc", "--cgroup-manager=cgroupfs"],
        description=(
            "Options put before every podman command (JSON list in the environment); the "
            "default suits hosts where crun fails on hybrid cgroups."
        ),
    )
    podman_ulimits: list[str] = Field(
        default_factory=lambda: ["nofile=1024:1024", "nproc=1024:1024"],
        description=(
            "`--ulimit` values of every podman executor (JSON list in the environment); "
            "podman's defaults exceed what an unprivileged host may set."
        ),
    )
    cache_dir: Path | None = Field(
        default=None, description="The site's shared input cache; default: DATA_DIR/cache."
    )
    cache_max_gb: float = Field(
        default=20.0,
        ge=0,
        description="Size cap of the input cache; least recently used inputs go first (0: none kept).",
    )
    transfer_parallelism: int = Field(
        default=4, ge=1, le=64, description="Transfers the site runs at once, over all tasks."
    )
    transfer_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per transfer when the error is transient."
    )
    transfer_timeout_s: float = Field(
        default=60.0, gt=0, description="Seconds a transfer may wait on the network."
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint for s3:// URLs (MinIO, Ceph, ...); default: AWS.",
    )
    s3_region: str | None = Field(default=None, description="Region of the S3 endpoint.")
    storage_credentials: Annotated[list[StorageCredential], NoDecode] = Field(
        default_factory=list,
        description=(
            "Site-wide storage secrets: TOML [[storage_credentials]] tables, or a JSON list in "
            "TOOLFERRY_STORAGE_CREDENTIALS. Users add their own with `toolferry credentials`."
        ),
    )

    groups: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict,
        description=(
            "The site's groups and their members (user names), for catalogue group "
            'permissions: a TOML table, or JSON in TOOLFERRY_GROUPS ({"lab": ["alice", "bob"]}).'
        ),
    )
    catalogue_registry: str | None = Field(
        default=None,
        description=(
            "OCI registry that stores catalogue artifacts, as a URL (http://127.0.0.1:5000, "
            "https://ghcr.io); default: an OCI image layout in DATA_DIR/oci."
        ),
    )
    catalogue_registry_username: str | None = Field(
        default=None, description="User for the catalogue registry (Basic or token exchange)."
    )
    catalogue_registry_password: SecretStr | None = Field(
        default=None, description="Password or access token for the catalogue registry."
    )
    catalogue_namespace: str = Field(
        default="toolferry",
        pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
        description="Repository prefix of catalogue artifacts in the registry or layout.",
    )
    catalogue_require_review: Literal["draft", "in-review", "trusted"] = Field(
        default="draft",
        description=(
            "The least review status an environment needs before tasks on this site may run "
            "it: draft (any), in-review or trusted."
        ),
    )

    oai_page_size: int = Field(
        default=100, ge=1, le=10000, description="OAI-PMH records per page (resumption tokens)."
    )
    oai_repository_id: str | None = Field(
        default=None,
        description="OAI-PMH repository identifier (a domain name) in record identifiers; "
        "default: the host of organization_url.",
    )
    oai_admin_email: str | None = Field(
        default=None, description="OAI-PMH adminEmail; default admin@<repository id>."
    )
    oai_token_lifetime_s: int = Field(
        default=86400, ge=60, description="How long an OAI-PMH resumption token stays valid."
    )

    max_attempts: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Attempts a task gets when an attempt ends in a system error (1: no "
        "retry); a task may ask for its own with the backend parameter max_attempts.",
    )
    retry_backoff_s: float = Field(
        default=10.0, ge=0, description="Wait before the first retry; doubled each time."
    )
    retry_backoff_max_s: float = Field(
        default=600.0, ge=0, description="The longest wait between two attempts."
    )

    time_limit_queued_s: float = Field(
        default=0,
        ge=0,
        description="Longest a task may wait QUEUED before it ends in SYSTEM_ERROR (0: none).",
    )
    time_limit_initializing_s: float = Field(
        default=0,
        ge=0,
        description="Longest an attempt may stage its inputs (INITIALIZING) (0: none).",
    )
    time_limit_running_s: float = Field(
        default=0,
        ge=0,
        description="Longest an attempt's executors may run (RUNNING) (0: none). A task may "
        "ask for shorter limits with the backend parameters time_limit_<state>_s.",
    )

    backend: str = Field(
        default="local",
        description="The backend tasks run on when they name none (backend parameter "
        "`backend`): local, slurm or swarm. A task too large for it goes to the first other "
        "backend that can hold it.",
    )
    backends: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Backends besides local to enable (comma-separated or a JSON list); unset: "
        "every one that answers on this machine (a Slurm controller, an active Docker Swarm).",
    )
    slurm_partition: str | None = Field(
        default=None,
        description="Slurm partition for tasks that name none (default: the cluster's default); "
        "also the partition whose nodes make the backend's capacity.",
    )
    slurm_sbatch_args: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More sbatch options for every job (a JSON list, or separated by spaces).",
    )
    slurm_bin_dir: str = Field(
        default="", description="Folder of sbatch, squeue, scancel and sinfo (empty: on PATH)."
    )
    batch_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between looks at a batch scheduler's jobs (one squeue for all).",
    )
    replica_lease_s: float = Field(
        default=10,
        ge=1,
        description="Hub replicas on one PostgreSQL database beat every lease/5 seconds; one "
        "not seen for a whole lease is dead and another adopts its tasks.",
    )
    site_offline_s: float = Field(
        default=30,
        gt=0,
        description="A data site whose agent has not been heard from for this long is shown "
        "offline (its tasks stay queued).",
    )
    worker_python: str | None = Field(
        default=None,
        description="Python interpreter batch jobs run the worker with, the same path on every "
        "node (default: the hub's own).",
    )

    @field_validator("file_allowed_dirs", mode="before")
    @classmethod
    def _path_list(cls, value: Any) -> Any:
        """From the environment: a JSON list, or paths separated by ':' (like PATH) or ','."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [p for p in re.split(r"[:,]", text) if p.strip()]
        return value

    @field_validator("storage_credentials", "groups", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("backends", mode="before")
    @classmethod
    def _name_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else re.findall(r"[^\s,]+", text)
        return value

    @field_validator("slurm_sbatch_args", mode="before")
    @classmethod
    def _arg_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else shlex.split(text)
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'toolferry.db'}"

    @property
    def storage_dir(self) -> Path:
        """The hub's own file store; always an allowed file:// directory."""
        return self.data_dir / "storage"

    @property
    def effective_cache_dir(self) -> Path:
        return (self.cache_dir or self.data_dir / "cache").expanduser().resolve()

    @property
    def cache_max_bytes(self) -> int:
        """``cache_max_gb`` in bytes (GB as the other memory settings mean it: 2**30)."""
        return int(self.cache_max_gb * (1 << 30))

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def allowed_dirs(self) -> list[Path]:
        return [self.storage_dir, *(p.expanduser().resolve() for p in self.file_allowed_dirs)]
