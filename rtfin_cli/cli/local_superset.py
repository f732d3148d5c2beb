"""`rtfin local superset` commands (issue #8)."""

from __future__ import annotations

import typer

from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="The local Superset.", no_args_is_help=True)

add_stub(app, "local superset", "start", 8, "Start the service.")
add_stub(app, "local superset", "stop", 8, "Stop the service.")
add_stub(app, "local superset", "status", 8, "Show the service state.")
