"""`toolferry config show`: every setting, its effective value and where that value came from."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from toolferry.cli.output import out, print_json
from toolferry.cli.session import deps
from toolferry.config import Settings, default_data_dir
from toolferry.storage.redact import redact

__all__ = ["app", "describe_settings"]

app = typer.Typer(
    name="config",
    help="Show the configuration in effect.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

ENV_PREFIX = "TOOLFERRY_"


def config_file() -> Path:
    """The TOML file the settings read (it may not exist): the same rule as Settings uses."""
    explicit = os.environ.get("TOOLFERRY_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TOOLFERRY_DATA_DIR") or default_data_dir()) / "config.toml"


def _file_keys(path: Path) -> set[str]:
    try:
        with path.open("rb") as fh:
            return set(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError):
        return set()


def _shown(value: Any) -> Any:
    """A value safe to print: secrets masked, credentials in URLs hidden, paths as strings."""
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def describe_settings(settings: Settings) -> list[dict[str, Any]]:
    """One entry per setting: name, value (redacted), source, env variable and description."""
    path = config_file()
    in_file = _file_keys(path)
    # pydantic-settings matches variable names case-insensitively.
    env_names = {name.upper() for name in os.environ}
    rows = []
    for name, field in Settings.model_fields.items():
        env = ENV_PREFIX + name.upper()
        if env in env_names:
            source = f"env {env}"
        elif name in in_file:
            source = f"file {path}"
        else:
            source = "default"
        rows.append(
            {
                "name": name,
                "value": _shown(getattr(settings, name)),
                "source": source,
                "env": env,
                "description": field.description or "",
            }
        )
    rows.append(
        {
            "name": "effective database",
            "value": redact(settings.effective_database_url),
            "source": "derived",
            "env": "",
            "description": "The store the hub opens (database_url, else SQLite in data_dir).",
        }
    )
    return rows


@app.command()
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    describe: Annotated[
        bool, typer.Option("--describe", "-d", help="Add what each setting does.")
    ] = False,
) -> None:
    """Show every setting with its effective value and where it came from (default, the
    config file or a TOOLFERRY_* variable). The token is never shown."""
    rows = describe_settings(deps(ctx).settings())
    if as_json:
        print_json(
            {
                "config_file": str(config_file()),
                "settings": {r["name"]: r["value"] for r in rows if r["source"] != "derived"},
                "sources": {r["name"]: r["source"] for r in rows if r["source"] != "derived"},
            }
        )
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("SETTING", no_wrap=True)
    table.add_column("VALUE", overflow="fold")
    table.add_column("FROM", overflow="fold")
    if describe:
        table.add_column("WHAT IT DOES", overflow="fold")
    for r in rows:
        value = r["value"]
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        cells = [
            Text(r["name"]),
            Text(text if text not in ("", "None") else "-", style="" if text else "dim"),
            Text(r["source"], style="dim" if r["source"] == "default" else "cyan"),
        ]
        if describe:
            cells.append(Text(r["description"], style="dim"))
        table.add_row(*cells)
    console = out()
    console.print(table)
    console.print(
        f"\n[dim]Set any of them as TOOLFERRY_<NAME> or as `name = value` in "
        f"{escape(str(config_file()))}.[/]"
    )
