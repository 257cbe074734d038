"""A data site's ``site.toml``: its name, datasets and policy, and the agent's own settings.

``toolferry agent --config site.toml`` reads one file (``docs/site.example.toml`` explains
every key). Its shape is checked here (unknown keys and wrong types are errors, no string is
taken for a number); what the values mean is checked by the domain objects built from it
(:class:`~toolferry.domain.site_policy.Dataset` and ``SitePolicy``), so each rule has one home.
Problems are reported together, each naming the file and the key: first every problem of
shape, then (once the shape is right) every problem of meaning.

The ``[settings]`` table holds what the agent needs to run tasks on its own host (runtime,
capacity, backends...): any key of :class:`~toolferry.config.Settings`, validated there. It is
the agent's whole configuration: no other TOML file is read, and a ``TOOLFERRY_*`` environment
variable only fills in a setting the file leaves out (so a variable left over from a hub on the
same host cannot move the agent's state).
"""

from __future__ import annotations

import contextlib
import difflib
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from toolferry.config import Settings
from toolferry.domain.environment.vocabulary import Review
from toolferry.domain.errors import InvalidTask
from toolferry.domain.site_policy import EVERYONE, Dataset, SitePolicy, check_site_name

__all__ = ["SiteConfig", "SiteConfigError", "load_site_config", "site_config_from_dict"]

# TOML gives paths as strings; every other value must already have its type.
_PathValue = Annotated[Path, Field(strict=False)]
_TABLE = ConfigDict(extra="forbid", strict=True, frozen=True)


class DatasetTable(BaseModel):
    """One ``[[datasets]]`` entry."""

    model_config = _TABLE

    name: str = Field(description="The dataset's name in dataset://SITE/NAME/... URLs.")
    description: str = Field(default="", description="What the hub lists about it.")
    path: _PathValue = Field(description="Its absolute local directory; never leaves the site.")
    users: list[str] = Field(
        default_factory=list, description='Users who may read it ("*": every user).'
    )
    groups: list[str] = Field(default_factory=list, description="Groups whose members may.")


class PolicyTable(BaseModel):
    """The ``[policy]`` table: an empty rule does not restrict."""

    model_config = _TABLE

    allowed_images: list[str] = Field(default_factory=list, description="Image digests.")
    allowed_publishers: list[str] = Field(
        default_factory=list, description="Catalogue owners whose entries may run."
    )
    minimum_review: Literal["draft", "in-review", "trusted"] | None = Field(
        default=None, description="Review a catalogue entry needs (draft: any entry)."
    )
    allowed_users: list[str] = Field(default_factory=list)
    allowed_groups: list[str] = Field(default_factory=list)
    max_cpu_cores: int | None = None
    max_ram_gb: float | None = None
    max_disk_gb: float | None = None
    max_output_bytes: int | None = Field(
        default=None, description="All outputs of one task together."
    )
    require_approval: bool = False
    output_review: bool = False
    stewards: list[str] = Field(default_factory=list, description="Who approves and releases.")


class SiteTable(BaseModel):
    """The whole file."""

    model_config = _TABLE

    name: str = Field(description="The site's name at the hub.")
    data_dir: _PathValue = Field(description="The agent's own state (absolute).")
    datasets: list[DatasetTable] = Field(default_factory=list)
    policy: PolicyTable = Field(default_factory=PolicyTable)
    settings: dict[str, Any] = Field(default_factory=dict)


class _AgentSettings(Settings):
    """Settings from the ``[settings]`` table, then the environment; never another file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


class SiteConfigError(ValueError):
    """``site.toml`` is not usable; ``problems`` holds (key, message) pairs, all of them."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            "\n".join(
                f"{source}: {key}: {msg}" if key else f"{source}: {msg}" for key, msg in problems
            )
        )


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    """A site as the agent runs it."""

    name: str
    data_dir: Path
    datasets: Mapping[str, Dataset]
    policy: SitePolicy
    settings: Settings

    def warnings(self) -> list[str]:
        """What is allowed but probably unintended, for the agent to log at start."""
        found = []
        for dataset in self.datasets.values():
            if not Path(dataset.path).is_dir():
                found.append(
                    f"dataset {dataset.name}: {dataset.path} is not a directory (yet); "
                    "tasks that read it will fail"
                )
            if not (dataset.users or dataset.groups):
                found.append(
                    f"dataset {dataset.name}: no users or groups, so nobody may use it "
                    f'(users = ["{EVERYONE}"] opens it to every user)'
                )
        return found


def load_site_config(path: Path) -> SiteConfig:
    """Read and check ``path``; :class:`SiteConfigError` lists every problem."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SiteConfigError(str(path), [("", exc.strerror or str(exc))]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SiteConfigError(str(path), [("", f"not valid TOML: {exc}")]) from exc
    return site_config_from_dict(data, source=str(path))


def site_config_from_dict(data: Mapping[str, Any], *, source: str = "site.toml") -> SiteConfig:
    """Check the parsed TOML ``data`` and build the site (``source`` names it in errors)."""
    try:
        table = SiteTable.model_validate(data)
    except ValidationError as exc:
        raise SiteConfigError(source, _problems(exc, "", SiteTable)) from None
    problems: list[tuple[str, str]] = []
    with _collect(problems, ""):
        check_site_name(table.name, "name")
    if not table.data_dir.is_absolute():
        problems.append(("data_dir", f"must be an absolute path, got {str(table.data_dir)!r}"))
    datasets = _datasets(table.datasets, problems)
    policy: SitePolicy | None = None
    with _collect(problems, "policy."):
        policy = _policy(table.policy)
    settings = _settings(table, problems)
    if problems or policy is None or settings is None:
        raise SiteConfigError(source, problems)
    return SiteConfig(
        name=table.name,
        data_dir=table.data_dir,
        datasets=datasets,
        policy=policy,
        settings=settings,
    )


def _datasets(tables: list[DatasetTable], problems: list[tuple[str, str]]) -> dict[str, Dataset]:
    datasets: dict[str, Dataset] = {}
    first: dict[str, int] = {}
    for i, t in enumerate(tables):
        if t.name in first:
            problems.append(
                (
                    f"datasets[{i}].name",
                    f"dataset {t.name!r} is declared twice (also datasets[{first[t.name]}])",
                )
            )
            continue
        first[t.name] = i
        with _collect(problems, f"datasets[{i}]."):
            datasets[t.name] = Dataset(
                name=t.name,
                description=t.description.strip(),
                path=PurePosixPath(t.path),
                users=frozenset(t.users),
                groups=frozenset(t.groups),
            )
    return datasets


def _policy(t: PolicyTable) -> SitePolicy:
    return SitePolicy(
        allowed_images=frozenset(t.allowed_images),
        allowed_publishers=frozenset(t.allowed_publishers),
        minimum_review=Review(t.minimum_review) if t.minimum_review else None,
        allowed_users=frozenset(t.allowed_users),
        allowed_groups=frozenset(t.allowed_groups),
        max_cpu_cores=t.max_cpu_cores,
        max_ram_gb=t.max_ram_gb,
        max_disk_gb=t.max_disk_gb,
        max_output_bytes=t.max_output_bytes,
        require_approval=t.require_approval,
        output_review=t.output_review,
        stewards=frozenset(t.stewards),
    )


def _settings(table: SiteTable, problems: list[tuple[str, str]]) -> Settings | None:
    if "data_dir" in table.settings:
        problems.append(("settings.data_dir", "set data_dir at the top of the file, not here"))
    try:
        settings = _AgentSettings(**{**table.settings, "data_dir": table.data_dir})
    except ValidationError as exc:
        problems += _problems(exc, "settings.", Settings)
        return None
    return None if "data_dir" in table.settings else settings


@contextlib.contextmanager
def _collect(problems: list[tuple[str, str]], prefix: str) -> Iterator[None]:
    """Turn an :class:`InvalidTask` raised inside into a problem under ``prefix``."""
    try:
        yield
    except InvalidTask as exc:
        problems.append((f"{prefix}{exc.field}".rstrip("."), exc.message))


def _problems(exc: ValidationError, prefix: str, model: type[BaseModel]) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        key = prefix + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc
        ).lstrip(".")
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown key" + _suggest(str(loc[-1]), _model_at(model, loc[:-1]))
        elif kind == "missing":
            message = "is required"
        elif kind == "path_type":
            message = f"must be a path (a string), got {error['input']!r}"
        else:
            message = error["msg"].removeprefix("Value error, ")
            if not kind.startswith("value_error"):
                message += f", got {error['input']!r}"
        problems.append((key.rstrip("."), message))
    return problems


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel]:
    """The model whose keys sit at ``loc`` below ``model`` (list indexes skipped)."""
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
    return model


def _suggest(key: str, model: type[BaseModel]) -> str:
    known = sorted(model.model_fields)
    close = difflib.get_close_matches(key, known, n=3)
    if close:
        return "; did you mean " + " or ".join(repr(k) for k in close) + "?"
    if len(known) <= 15:
        return "; known keys here: " + ", ".join(known)
    return "; `toolferry config show --describe` lists every setting"
