"""How a command reaches a hub: the one at TOOLFERRY_URL, or an embedded one for its duration.

Commands get their settings and connection through :class:`CliDeps` so that tests can hand in a
client over ``httpx.MockTransport`` (``CliRunner().invoke(app, args, obj=CliDeps(...))``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError

from toolferry.cli.client import TesClient
from toolferry.cli.output import CliError
from toolferry.config import Settings

if TYPE_CHECKING:
    from toolferry.hub import Hub

__all__ = [
    "CliDeps",
    "Session",
    "connect",
    "deps",
    "embedded_hub",
    "load_settings",
    "session",
    "token_of",
]


@dataclass(frozen=True, kw_only=True)
class Session:
    client: TesClient
    url: str
    # True: the hub lives in this process and stops when the command ends.
    embedded: bool


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
    """Open a client to TOOLFERRY_URL, or start an embedded hub and open a client to it."""
    if settings.url:
        with TesClient(settings.url, token_of(settings)) as client:
            yield Session(client=client, url=settings.url, embedded=False)
        return
    # Without a token, the embedded hub's own in-process secret: this process is its operator.
    with (
        embedded_hub(settings) as (hub, url),
        TesClient(url, token_of(settings) or hub.local_secret) as client,
    ):
        yield Session(client=client, url=url, embedded=True)


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
