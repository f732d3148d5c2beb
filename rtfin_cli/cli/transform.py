"""`rtfin transform` commands (issue #7)."""

from __future__ import annotations

import typer

from rtfin_cli.cli.common import add_stub

app = typer.Typer(help="Transform commands.", no_args_is_help=True)

add_stub(app, "transform", "run", 7, "DDL, ingestion set-up and dbt build.")
add_stub(app, "transform", "ddl", 7, "Apply the ClickHouse DDL.")
add_stub(app, "transform", "load", 7, "Run the Kafka-to-ClickHouse loader.")
add_stub(app, "transform", "status", 7, "Show ingestion state.")
add_stub(app, "transform", "docs", 7, "Generate dbt docs.")
