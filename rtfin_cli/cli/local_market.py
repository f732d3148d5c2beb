"""`rtfin local market start|stop|status`: the local market replay server (Polygon/Massive protocol)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rtfin_cli.cli.common import console, print_json, settings

app = typer.Typer(help="The local market replay server (Polygon/Massive protocol).", no_args_is_help=True)


def _server(**overrides: Any) -> Any:
    from rtfin_cli.local.market.service import from_settings

    return from_settings(settings().local, **overrides)


@app.command()
def start(
    speed: Annotated[float | None, typer.Option(help="Replay speed (60 = one market hour a minute).")] = None,
    rate_limit: Annotated[
        float | None, typer.Option(help="REST requests/s before HTTP 429 (0 = off).")
    ] = None,
    start_at: Annotated[
        str | None, typer.Option("--start", help="Dataset time to start at (2025-01-06..19).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 30.0,
) -> None:
    """Start the replay server on 127.0.0.1:local.market_port and wait until it answers."""
    if speed is not None and speed <= 0:
        from rtfin_cli.errors import UsageError

        raise UsageError("--speed must be > 0")
    server = _server(speed=speed, rate_limit=rate_limit, start_at=start_at)
    pid = server.start(timeout=timeout)
    st = server.control("status")
    console.print(
        f"[green]market replay ready[/] on {server.url} (pid {pid}), speed {server.speed:g}, "
        f"market time {st['now']}, {st['articles_visible']} articles visible"
    )


@app.command()
def stop() -> None:
    """Stop the replay server."""
    if _server().stop():
        console.print("[green]market replay stopped[/]")
    else:
        console.print("market replay is not running")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Whether the server runs, its replay clock, connections and what it has served."""
    server = _server()
    st = server.status()
    info: dict[str, Any] = {
        "service": "market",
        "running": st.running,
        "pid": st.pid,
        "url": server.url,
        "uptime_s": round(st.uptime_s, 1) if st.uptime_s else None,
        "log": str(st.log),
    }
    if st.running:
        try:
            info["replay"] = server.control("status", timeout=3)
        except Exception as exc:  # noqa: BLE001 - report, do not fail status
            info["replay_error"] = str(exc)
    if as_json:
        print_json(info)
    elif st.running:
        r = info.get("replay") or {}
        console.print(
            f"market replay [green]running[/] pid {st.pid} on {server.url}, up {info['uptime_s']}s; "
            f"market time {r.get('now')} (speed {r.get('speed')}), {r.get('connections')} WebSocket "
            f"connection(s), served {r.get('emitted', {}).get('articles')} articles and "
            f"{r.get('emitted', {}).get('bars')} bars"
        )
    else:
        console.print(f"market replay [red]stopped[/] ({server.url})")
    if not st.running:
        raise typer.Exit(1)
