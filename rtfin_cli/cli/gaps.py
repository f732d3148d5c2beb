"""`rtfin gaps`: minute bars missing from the warehouse, per ticker, and their repair from REST."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from rtfin_cli.cli.common import console, print_json, settings
from rtfin_cli.errors import ThresholdExceeded


def gaps(
    since: Annotated[
        str, typer.Option(help="Audit the sessions from this time (ISO-8601, or 24h / 7d back from now).")
    ] = "24h",
    tickers: Annotated[str | None, typer.Option(help="Only these tickers (AAPL,MSFT); default all.")] = None,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Fetch the missing minutes from the aggregates REST API into Kafka."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List missing minute bars per ticker (regular sessions; the replay's locally); exit 8 while any remain.

    Only minute aggregates (AM) are audited and repaired: second aggregates have no REST source.
    """
    from rtfin_cli.cli.produce import parse_time, ticker_list
    from rtfin_cli.producers.repair import repair_windows
    from rtfin_cli.warehouse.gaps import audit

    names = ticker_list(tickers, "--tickers")
    since_ms = parse_time(since, "--since")
    cfg = settings()
    # sessions up to tomorrow: the audit stops at each session's newest bar (a replay runs ahead of the wall)
    report = audit(cfg, since_ms, int(time.time() * 1000) + 86_400_000, names)
    if repair and report.holes:
        counts = repair_windows(cfg, [(h.sym, h.from_ms, h.to_ms) for h in report.holes])
        report.repaired = counts["repaired"]
    if as_json:
        print_json(report.as_dict())
    else:
        _render(report.as_dict())
    if report.holes:
        what = f"{report.missing} minute bar(s) missing in {len(report.holes)} hole(s)"
        hint = (
            f"{report.repaired} bar(s) sent to Kafka from REST; run `rtfin gaps` again once they are loaded."
            if repair
            else "Run `rtfin gaps --repair` to fetch them from the aggregates REST API."
        )
        raise ThresholdExceeded(what, hint)


def _render(doc: dict[str, object]) -> None:
    from rich.table import Table

    sessions = doc["sessions"]
    assert isinstance(sessions, list) and isinstance(doc["holes"], list)
    console.print(
        f"{len(sessions)} session(s), {doc['tickers_audited']} ticker-session(s) audited, "
        f"{doc['missing_minutes']} minute(s) missing"
    )
    if doc["holes"]:
        table = Table("ticker", "from", "to", "minutes", box=None)
        for h in doc["holes"]:
            table.add_row(h["sym"], h["from"], h["to"], str(h["minutes"]))
        console.print(table)
    if doc["repaired"] is not None:
        console.print(f"repaired from REST: {doc['repaired']} bar(s)")
