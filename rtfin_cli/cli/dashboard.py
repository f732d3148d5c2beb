"""`rtfin dashboard` commands (issue #8)."""

from __future__ import annotations

import typer

from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="Dashboard commands.", no_args_is_help=True)

add_stub(app, "dashboard", "sync", 8, "Render and import the dashboard assets.")
add_stub(app, "dashboard", "export", 8, "Export the dashboard back to superset_assets/.")
add_stub(app, "dashboard", "open", 8, "Print the dashboard URL.")
