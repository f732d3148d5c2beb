"""`rtfin sentiment` commands (issue #6)."""

from __future__ import annotations

import typer

from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="Sentiment commands.", no_args_is_help=True)

add_stub(app, "sentiment", "run", 6, "Run the sentiment streaming job in Spark local mode.")
add_stub(app, "sentiment", "submit", 6, "Submit the sentiment job to Databricks.")
add_stub(app, "sentiment", "status", 6, "Show the Databricks job run state.")
add_stub(app, "sentiment", "cancel", 6, "Cancel the Databricks job run.")
add_stub(app, "sentiment", "score", 6, "Score one headline.")
add_stub(app, "sentiment", "eval", 6, "Evaluate the model on a labelled TSV file.")
