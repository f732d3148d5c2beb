"""One typer factory for the local servers: ``rtfin local NAME start|stop|status [--json]``.

Each server is described by a :class:`ServerView` (how to build it from settings, how its start and
status read); :func:`server_app` turns a view into the three commands. Exit codes: ``status`` exits 1
when the server is not running; errors exit through the one error handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtfin_cli.cli.common import console, print_json

if TYPE_CHECKING:
    from rtfin_cli.local.supervisor import ServiceStatus

Server = Any  # a rtfin_cli.local.supervisor.LocalServer, with its own attributes (url, bootstrap, ...)


@dataclass(frozen=True)
class ServerView:
    """How the cli builds, starts and shows one local server."""

    name: str  # the command group and the JSON "service"
    label: str  # how messages name it: "Kafka", "market replay"
    help: str
    build: Callable[..., Server]  # from the selected settings (keyword overrides, e.g. the market's speed)
    where: Callable[[Server], str]  # its address, shown when it is stopped
    info: Callable[[Server, ServiceStatus], dict[str, Any]]  # `status --json`
    running: Callable[[Server, ServiceStatus, dict[str, Any]], str]  # `status` line while it runs
    ready: Callable[[Server, int, float], list[str]]  # lines after a start: (server, pid, seconds)
    start_doc: str
    stop_doc: str
    status_doc: str
    start_timeout: float
    starting: Callable[[Server], str] | None = None  # the spinner's text while it starts


def uptime(st: ServiceStatus) -> float | None:
    """Uptime in seconds to one decimal, None when unknown."""
    return round(st.uptime_s, 1) if st.uptime_s else None


def start_server(view: ServerView, server: Server, timeout: float) -> None:
    """Start ``server``, then print the view's ready lines."""
    t0 = time.monotonic()
    if view.starting is None:
        pid = server.start(timeout=timeout)
    else:
        with console.status(view.starting(server)):
            pid = server.start(timeout=timeout)
    for line in view.ready(server, pid, time.monotonic() - t0):
        console.print(line)


def stop_server(view: ServerView) -> None:
    if view.build().stop():
        console.print(f"[green]{view.label} stopped[/]")
    else:
        console.print(f"{view.label} is not running")


def show_status(view: ServerView, as_json: bool) -> None:
    server = view.build()
    st = server.status()
    info = view.info(server, st)
    if as_json:
        print_json(info)
    elif st.running:
        console.print(view.running(server, st, info))
    else:
        console.print(f"{view.label} [red]stopped[/] ({view.where(server)})")
    if not st.running:
        raise typer.Exit(1)


def server_app(view: ServerView, start: Callable[..., None] | None = None) -> typer.Typer:
    """The ``start|stop|status`` group of one server; ``start`` replaces the plain start (extra options)."""
    app = typer.Typer(help=view.help, no_args_is_help=True)

    def plain_start(
        timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = view.start_timeout,
    ) -> None:
        start_server(view, view.build(), timeout)

    def stop() -> None:
        stop_server(view)

    def status(
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        show_status(view, as_json)

    app.command("start", help=view.start_doc)(start or plain_start)
    app.command("stop", help=view.stop_doc)(stop)
    app.command("status", help=view.status_doc)(status)
    return app
