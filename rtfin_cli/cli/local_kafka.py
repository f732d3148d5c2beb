"""`rtfin local kafka start|stop|status`: the local KRaft broker."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from rtfin_cli.cli.common import console, print_json, settings

if TYPE_CHECKING:
    from rtfin_cli.local.kafka import KafkaBroker

app = typer.Typer(help="The local Apache Kafka broker (KRaft, single node).", no_args_is_help=True)


def _broker() -> KafkaBroker:
    from rtfin_cli.local.kafka import from_settings

    return from_settings(settings().local)


@app.command()
def start(timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0) -> None:
    """Start the broker and wait until it accepts metadata requests."""
    broker = _broker()
    t0 = time.monotonic()
    with console.status(f"starting Kafka on {broker.bootstrap} ..."):
        pid = broker.start(timeout=timeout)
    console.print(f"[green]Kafka ready[/] on {broker.bootstrap} (pid {pid}) in {time.monotonic() - t0:.1f}s")


@app.command()
def stop() -> None:
    """Stop the broker (SIGTERM, then SIGKILL after a timeout)."""
    if _broker().stop():
        console.print("[green]Kafka stopped[/]")
    else:
        console.print("Kafka is not running")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Whether the broker runs, its pid, port and uptime."""
    broker = _broker()
    st = broker.status()
    info = {"service": "kafka", "running": st.running, "pid": st.pid, "bootstrap": broker.bootstrap,
            "uptime_s": round(st.uptime_s, 1) if st.uptime_s else None, "log": str(st.log)}  # fmt: skip
    if as_json:
        print_json(info)
    elif st.running:
        console.print(f"Kafka [green]running[/] pid {st.pid} on {broker.bootstrap}, up {info['uptime_s']}s")
    else:
        console.print(f"Kafka [red]stopped[/] (bootstrap {broker.bootstrap})")
    if not st.running:
        raise typer.Exit(1)
