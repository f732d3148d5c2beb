"""`rtfin local clickhouse start|stop|status`: the local ClickHouse endpoint (chDB behind HTTP)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from rtfin_cli.cli.common import console, print_json, settings

app = typer.Typer(help="The local ClickHouse endpoint (chDB behind the HTTP protocol).", no_args_is_help=True)


def _server() -> Any:
    from rtfin_cli.local.clickhouse import from_settings

    s = settings()
    return from_settings(s.local, s.clickhouse)


@app.command()
def start(timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 60.0) -> None:
    """Start the endpoint and wait until it answers queries (generates its password on first start)."""
    server = _server()
    t0 = time.monotonic()
    with console.status(f"starting ClickHouse endpoint on {server.url} ..."):
        pid = server.start(timeout=timeout)
    console.print(
        f"[green]ClickHouse ready[/] on {server.url} (pid {pid}) in {time.monotonic() - t0:.1f}s; "
        f"user {server.user}, password in {server.home / 'password'}"
    )


@app.command()
def stop() -> None:
    """Stop the endpoint (SIGTERM: finishes in-flight requests, closes chDB cleanly)."""
    if _server().stop():
        console.print("[green]ClickHouse stopped[/]")
    else:
        console.print("ClickHouse is not running")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Whether the endpoint runs, its pid, URL, uptime and whether it answers /ping."""
    server = _server()
    st = server.status()
    answering = st.running and server.ping()
    info = {"service": "clickhouse", "running": st.running, "answering": answering, "pid": st.pid,
            "url": server.url, "uptime_s": round(st.uptime_s, 1) if st.uptime_s else None,
            "data_dir": str(server.home), "log": str(st.log)}  # fmt: skip
    if as_json:
        print_json(info)
    elif st.running:
        state = "[green]running[/]" if answering else "[yellow]running, not answering[/]"
        console.print(f"ClickHouse {state} pid {st.pid} on {server.url}, up {info['uptime_s']}s")
    else:
        console.print(f"ClickHouse [red]stopped[/] ({server.url})")
    if not st.running:
        raise typer.Exit(1)
