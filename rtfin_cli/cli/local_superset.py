"""`rtfin local superset start|stop|status`: Superset 6.x from its own virtualenv, on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from rtfin_cli.cli.common import console, print_json, settings

app = typer.Typer(
    help="The local Superset (its own virtualenv, sqlite metadata under .rtfin/).", no_args_is_help=True
)


def _superset() -> Any:
    from rtfin_cli.local.superset import from_settings

    return from_settings(settings().local)


@app.command()
def start(timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 180.0) -> None:
    """Start Superset (initialising its metadata db and admin user on first use) and wait for /health."""
    sup = _superset()
    t0 = time.monotonic()
    with console.status(f"starting Superset on {sup.url} (first start initialises it: ~1 min) ..."):
        pid, new_password = sup.start(timeout=timeout)
    console.print(f"[green]Superset ready[/] on {sup.url} (pid {pid}) in {time.monotonic() - t0:.1f}s")
    if new_password:
        # shown once; kept 0600 under the data dir, where `rtfin dashboard sync` picks it up
        console.print(
            f"admin user [bold]admin[/], password [bold]{new_password}[/] (stored in {sup.password_file})"
        )
    else:
        console.print(f"admin user admin, password in {sup.password_file}")


@app.command()
def stop() -> None:
    """Stop Superset (SIGTERM, then SIGKILL after a timeout)."""
    if _superset().stop():
        console.print("[green]Superset stopped[/]")
    else:
        console.print("Superset is not running")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Whether Superset runs, its pid, URL, uptime and whether /health answers."""
    sup = _superset()
    st = sup.status()
    try:
        healthy = st.running and sup.ready()
    except Exception:  # noqa: BLE001 - not answering
        healthy = False
    info = {"service": "superset", "running": st.running, "healthy": healthy, "pid": st.pid, "url": sup.url,
            "uptime_s": round(st.uptime_s, 1) if st.uptime_s else None, "log": str(st.log)}  # fmt: skip
    if as_json:
        print_json(info)
    elif st.running:
        state = "[green]running[/]" if healthy else "[yellow]running, not healthy yet[/]"
        console.print(f"Superset {state} pid {st.pid} on {sup.url}, up {info['uptime_s']}s")
    else:
        console.print(f"Superset [red]stopped[/] ({sup.url})")
    if not st.running:
        raise typer.Exit(1)
