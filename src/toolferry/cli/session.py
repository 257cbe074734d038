"""How a command reaches a hub: the one at TOOLFERRY_URL, else the hub serving this machine's data
directory (found through the ``hub.json`` it writes there), else an embedded one for the
command's duration.

Commands get their settings and connection through :class:`CliDeps` so that tests can hand in a
client over ``httpx.MockTransport`` (``CliRunner().invoke(app, args, obj=CliDeps(...))``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from toolferry.agent.lock import running_hub_info
from toolferry.cli.client import TesClient
from toolferry.cli.output import CliError, err
from toolferry.config import Settings

if TYPE_CHECKING:
    from toolferry.hub import Hub

__all__ = [
    "CliDeps",
    "Session",
    "announce_runtime",
    "connect",
    "deps",
    "embedded_hub",
    "load_settings",
    "running_hub",
    "session",
    "token_of",
]


@dataclass(frozen=True, kw_only=True)
class Session:
    client: TesClient
    url: str
    # True: the hub lives in this process and stops when the command ends.
    embedded: bool
    # An embedded hub's default runtime and why it chose it (``Hub.runtime_choice``).
    runtime_choice: tuple[str, str] | None = None


def announce_runtime(s: Session, task: Mapping[str, Any]) -> None:
    """Before submitting ``task``: say on stderr which runtime an embedded hub chose as its
    default, e.g. `runtime docker: a Docker Engine answered`. Nothing when the task names its
    runtime, or for a hub that runs elsewhere (it said so when it started)."""
    if not s.embedded or s.runtime_choice is None:
        return
    resources = task.get("resources")
    params = resources.get("backend_parameters") if isinstance(resources, Mapping) else None
    if isinstance(params, Mapping) and params.get("runtime"):
        return
    name, why = s.runtime_choice
    err().print(f"runtime [bold]{escape(name)}[/]: {escape(why)}", soft_wrap=True)


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for item in exc.errors():
        loc = ".".join(str(p) for p in item["loc"])
        got = item.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
        parts.append(f"{loc}: {item['msg']}{shown}" if loc else f"{item['msg']}{shown}")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Settings from defaults, the TOML file and TOOLFERRY_* variables, or a CliError saying
    which one is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise CliError(f"invalid configuration: {_describe_validation(exc)}") from exc
    except ValueError as exc:  # the TOML source: unreadable file, TOOLFERRY_CONFIG missing
        raise CliError(f"invalid configuration: {exc}") from exc


def token_of(settings: Settings) -> str | None:
    return settings.token.get_secret_value() if settings.token else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return False
    return True


def running_hub(data_dir: Path) -> tuple[str, str] | None:
    """(url, operator secret) of the hub serving ``data_dir``, from the ``hub.json`` it keeps
    there while it runs (``{"url": ..., "pid": ..., "secret": ...}``, mode 0600); None when
    there is none, the file cannot be read or makes no sense, or the process that wrote it is
    gone (a hub that was killed leaves its file behind)."""
    info = running_hub_info(data_dir)
    if info is None:
        return None
    url, pid, secret = info.get("url"), info.get("pid"), info.get("secret")
    if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        return None
    if not isinstance(secret, str) or not secret:
        return None
    # bool is an int: `"pid": true` must not become pid 1.
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    return (url, secret) if _alive(pid) else None


def open_hub(settings: Settings, *, what: str) -> Hub:
    """A :class:`Hub` on ``settings``, its start-up errors turned into one-line CliErrors
    (``what`` says what could not be done, e.g. "cannot open the store")."""
    # Imported here: the hub pulls in the store and the server, which most commands never need.
    from toolferry.hub import ConfigError, Hub

    try:
        return Hub(settings)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"{what} in {settings.data_dir}: {exc}") from exc


@contextmanager
def embedded_hub(settings: Settings) -> Iterator[tuple[Hub, str]]:
    """``serve_embedded``, with a hub that cannot start reported as a CliError.

    Only the start is guarded: errors raised by the caller's block pass through unchanged.
    """
    # Imported here: the hub pulls in the server, store and scheduler, which commands that
    # talk to a remote hub never need.
    from toolferry.hub import ConfigError, serve_embedded

    stack = ExitStack()
    try:
        hub, url = stack.enter_context(serve_embedded(settings))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    except (OSError, RuntimeError) as exc:
        raise CliError(f"cannot start a hub on {settings.data_dir}: {exc}") from exc
    with stack:
        yield hub, url


@contextmanager
def connect(settings: Settings) -> Iterator[Session]:
    """Open a client to TOOLFERRY_URL; else to the hub already serving the data directory;
    else start an embedded hub and open a client to it."""
    if settings.url:
        with TesClient(settings.url, token_of(settings)) as client:
            yield Session(client=client, url=settings.url, embedded=False)
        return
    # Without a token, the hub's operator secret: this machine's user is its operator (the
    # running hub's secret is in a file only that user can read).
    running = running_hub(settings.data_dir)
    if running is not None:
        url, secret = running
        with TesClient(url, token_of(settings) or secret) as client:
            yield Session(client=client, url=url, embedded=False)
        return
    with (
        embedded_hub(settings) as (hub, url),
        TesClient(url, token_of(settings) or hub.local_secret) as client,
    ):
        yield Session(client=client, url=url, embedded=True, runtime_choice=hub.runtime_choice)


Connector = Callable[[Settings], AbstractContextManager[Session]]


@dataclass(frozen=True, kw_only=True)
class CliDeps:
    """What commands take from the outside world; the defaults are the real ones."""

    settings: Callable[[], Settings] = field(default=load_settings)
    connect: Connector = field(default=connect)


def deps(ctx: typer.Context) -> CliDeps:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliDeps) else CliDeps()


@contextmanager
def session(ctx: typer.Context) -> Iterator[Session]:
    d = deps(ctx)
    with d.connect(d.settings()) as s:
        yield s
