"""`rtfin local clickhouse` commands (issue #4)."""

from __future__ import annotations

import typer

from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="The local ClickHouse endpoint (chDB behind the HTTP protocol).", no_args_is_help=True)

add_stub(app, "local clickhouse", "start", 4, "Start the service.")
add_stub(app, "local clickhouse", "stop", 4, "Stop the service.")
add_stub(app, "local clickhouse", "status", 4, "Show the service state.")
