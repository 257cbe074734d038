"""`toolferry server`: run the hub (TES API, scheduler, the hub's own site) until stopped."""

from __future__ import annotations

import socket
from typing import Annotated, Any

import typer
from rich.markup import escape

from toolferry.cli.output import CliError, err
from toolferry.cli.session import load_settings, open_hub

__all__ = ["server"]


def server(
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Address to listen on (default: the `host` setting, 127.0.0.1). Any address "
            "other than loopback needs token auth.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            "-p",
            min=0,
            max=65535,
            metavar="PORT",
            help="Port to listen on (default: the `port` setting, 8740).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the hub: the TES API at /ga4gh/tes/v1, the scheduler and this machine's site.

    Tasks run here, with Docker when an engine answers, else as host processes. Stop with
    Ctrl-C; running tasks are picked up again at the next start.
    """
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = load_settings(**overrides)

    # Imported here: uvicorn and the hub are only needed by this command.
    import uvicorn

    from toolferry.hub import ConfigError

    hub = open_hub(settings, what="cannot start a hub")
    try:
        try:
            hub.check_bind(settings.host)
            # Here rather than in the app's startup, where uvicorn would turn a second hub on
            # this data directory (HubBusy, naming the first) into a traceback.
            hub.claim()
        except ConfigError as exc:
            raise CliError(str(exc)) from exc
        runtime, why = hub.runtime_choice
        console = err()
        # An IPv6 address needs brackets in a URL.
        host_in_url = f"[{settings.host}]" if ":" in settings.host else settings.host
        console.print(
            f"[bold]toolferry hub[/] on http://{escape(host_in_url)}:{settings.port}"
            f"/ga4gh/tes/v1  [dim](data in {escape(str(settings.data_dir))})[/]"
        )
        console.print(f"runtime [bold]{escape(runtime)}[/]: {escape(why)}")
        # Bound here, before the app starts: a busy port must fail before the hub re-attaches
        # to tasks or starts any (uvicorn binds only after the app's start-up).
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((settings.host, settings.port))
        except OSError as exc:
            listener.close()
            raise CliError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from exc
        with listener:
            # The socket itself, not its fd: uvicorn takes an fd for a Unix socket, and TCP
            # without TCP_NODELAY would add delayed-ACK stalls (~40 ms) to every request.
            config = uvicorn.Config(hub.app, host=settings.host, port=settings.port)
            uvicorn.Server(config).run(sockets=[listener])
    finally:
        hub.close()
