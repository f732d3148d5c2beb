"""`rtfin verify`: per topic-partition proof that nothing was lost or duplicated from Kafka to the marts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rtfin_cli.cli.common import out_console, print_json, settings
from rtfin_cli.errors import ThresholdExceeded

RANGES_SHOWN = 3  # missing ranges / duplicate offsets named per partition on screen (--json has them all)


def verify(
    since: Annotated[
        str | None,
        typer.Option(help="Check only records from this time (ISO-8601, or 24h / 7d back from now)."),
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", help="Only this data topic (repeatable); default all three."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare each partition's retained offsets (up to the ingesting group's commit) with the raw tables,
    less dead letters; then the raw identities with the marts. Exit 0 when all match, 8 otherwise."""
    from rtfin_cli.cli.produce import parse_time
    from rtfin_cli.warehouse.verify import save_last
    from rtfin_cli.warehouse.verify import verify as run

    since_ms = parse_time(since, "--since") if since is not None else None
    cfg = settings()
    report = run(cfg, topic, since_ms)
    save_last(cfg, report)
    doc = report.as_dict()
    if as_json:
        print_json(doc)
    else:
        _render(doc)
    if not report.ok:
        bad = [p for p in doc["partitions"] if not p["ok"]]
        marts = [m for m in doc["marts"] if not m["ok"]]
        raise ThresholdExceeded(
            f"{sum(p['missing'] + p['expired'] for p in bad)} record(s) missing, {sum(p['duplicates'] for p in bad)} "
            f"duplicated offset(s) in {len(bad)} partition(s); "
            f"{sum(m['absent'] for m in marts)} raw identit(ies) absent from the marts",
            "Reload the named offsets (reset the ingesting group to the first missing one), or run "
            "`rtfin transform run` for the marts; --json lists every range.",
        )


def _render(doc: dict[str, Any]) -> None:
    from rich.table import Table

    con = out_console()
    table = Table(
        "topic", "part", "offsets", "present", "dlq", "replaced", "no rec", "missing", "dup", box=None
    )
    for p in doc["partitions"]:
        missing = (
            _spans(p["missing_ranges"], p["missing"])
            + (f" +{p['unexplained']}?" if p["unexplained"] else "")
            + (f" +{p['expired']} expired" if p["expired"] else "")
        )
        dups = _dups(p["duplicate_offsets"], p["duplicates"])
        style = "green" if p["ok"] else "bold red"
        span = f"{p['start']}-{p['end'] - 1}" if p["end"] > p["start"] else "-"  # the offsets checked
        table.add_row(
            p["topic"], str(p["partition"]), span, str(p["present"]),
            str(p["dead_lettered"]), str(p["superseded"]), str(p["no_record"]),
            f"[{style}]{missing}[/]", f"[{style}]{dups}[/]",
        )  # fmt: skip
    con.print(table)
    for m in doc["marts"]:
        if m["built"] is None:
            con.print(f"{m['mart']} ← {m['table']}: not built yet (run `rtfin transform run`)")
        elif m["ok"]:
            con.print(f"[green]{m['mart']} ← {m['table']}: every identity present[/] (built {m['built']})")
        else:
            con.print(
                f"[bold red]{m['mart']} ← {m['table']}: {m['absent']} identit(ies) absent[/] "
                f"(built {m['built']}; e.g. {', '.join(m['sample'])})"
            )
    con.print("[green]verified: nothing lost or duplicated[/]" if doc["ok"] else "[bold red]NOT verified[/]")


def _spans(ranges: list[list[int]], total: int) -> str:
    if not total:
        return "0"
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:RANGES_SHOWN])
    return f"{total}: {shown}" + (" …" if len(ranges) > RANGES_SHOWN else "")


def _dups(offsets: list[list[int]], total: int) -> str:
    if not total:
        return "0"
    shown = ", ".join(f"{o}×{n}" for o, n in offsets[:RANGES_SHOWN])
    return f"{total}: {shown}" + (" …" if total > RANGES_SHOWN else "")
