"""`rtfin local ...`: the whole pipeline on one machine."""

from __future__ import annotations

import typer

from rtfin_cli.cli import local_clickhouse, local_kafka, local_market, local_superset
from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="Run the complete stack on this machine: no account, no key.", no_args_is_help=True)
app.add_typer(local_kafka.app, name="kafka")
app.add_typer(local_clickhouse.app, name="clickhouse")
app.add_typer(local_market.app, name="market")
app.add_typer(local_superset.app, name="superset")

add_stub(app, "local", "up", 10, "Start the whole stack.")
add_stub(app, "local", "down", 10, "Stop the whole stack.")
add_stub(app, "local", "status", 10, "Show every local service.")
add_stub(app, "local", "logs", 10, "Show a service's log.")
