"""`rtfin local market` commands (issue #5)."""

from __future__ import annotations

import typer

from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="The local market replay server (Polygon/Massive protocol).", no_args_is_help=True)

add_stub(app, "local market", "start", 5, "Start the service.")
add_stub(app, "local market", "stop", 5, "Stop the service.")
add_stub(app, "local market", "status", 5, "Show the service state.")
