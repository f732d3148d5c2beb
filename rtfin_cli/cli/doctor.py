"""`rtfin doctor`: a pass/fail table of every configured service."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rtfin_cli.cli.common import console, print_json, settings


def doctor(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Check every configured service; exit non-zero when any check fails."""
    from rtfin_cli.doctor import run_checks

    results = run_checks(settings())
    failed = [r for r in results if r.status == "fail"]
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        table = Table("check", "status", "detail")
        colours = {"pass": "green", "fail": "red", "skip": "yellow"}
        for r in results:
            table.add_row(r.name, f"[{colours[r.status]}]{r.status.upper()}[/]", r.detail)
        console.print(table)
        console.print(f"{len(results) - len(failed)}/{len(results)} checks passed or skipped")
    if failed:
        raise typer.Exit(1)
