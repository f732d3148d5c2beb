"""`rtfin produce` commands (issue #5)."""

from __future__ import annotations

import typer

from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="Produce commands.", no_args_is_help=True)

add_stub(app, "produce", "news", 5, "Poll the news REST API into rtfin.news.raw.")
add_stub(app, "produce", "stocks", 5, "Stream WebSocket minute aggregates into rtfin.stocks.aggs.")
