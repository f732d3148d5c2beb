"""`rtfin transform run|ddl|load|status|docs|pipes`: thin commands over the stage packages."""

from __future__ import annotations

import signal
from typing import Annotated, Any

import typer

from rtfin_cli.cli.common import console, is_tty, print_json, settings

app = typer.Typer(
    help="ClickHouse DDL, ingestion (ClickPipes, Kafka engine, loader) and the dbt project.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
_STATUS_STYLE = {"success": "green", "pass": "green", "warn": "yellow", "skipped": "dim"}


def _line(msg: str) -> None:
    console.print(msg, soft_wrap=True, highlight=False, markup=False)


def _render_dbt(outcome: Any, title: str) -> None:
    from rich.table import Table

    bad = outcome.problems()
    counts = outcome.counts()
    summary = ", ".join(f"{k.replace(':', ' ')}={v}" for k, v in sorted(counts.items())) or "nothing ran"
    state = "[green]ok[/]" if outcome.success else "[bold red]failed[/]"
    console.print(f"{title}: {state} in {outcome.seconds:.1f}s — {summary}")
    if bad:
        table = Table("node", "kind", "status", "message")
        for n in bad:
            style = _STATUS_STYLE.get(n.status, "red")
            table.add_row(n.name, n.kind, f"[{style}]{n.status}[/]", n.message[:200])
        console.print(table)
    if outcome.error:
        console.print(f"[red]{outcome.error}[/]", soft_wrap=True)


@app.command()
def run(
    select: Annotated[
        list[str] | None, typer.Option("--select", "-s", help="dbt selector(s); repeat or space-separate.")
    ] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild incremental models.")] = False,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="dbt target name (default: rtfin).")
    ] = None,
    freshness: Annotated[
        bool,
        typer.Option("--freshness/--no-freshness", help="Also check source freshness (not with --select)."),
    ] = True,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the DDL and the ingestion requests it would send (credentials masked); "
            "change nothing, run no dbt.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the DDL, set up ingestion for clickhouse.ingest, then dbt build (models + tests)."""
    from rtfin_cli.cli.reporting import reporter_for
    from rtfin_cli.transform.run import plan
    from rtfin_cli.transform.run import run as run_

    if dry_run:
        with reporter_for("transform", as_json=as_json) as reporter:
            planned = plan(settings(), reporter=reporter)
        _render_plan(planned, as_json)
        return
    with reporter_for("transform", as_json=as_json) as reporter:
        outcome = run_(
            settings(),
            select=select,
            full_refresh=full_refresh,
            target=target,
            freshness=freshness,
            reporter=reporter,
        )
    if as_json:
        print_json(outcome.as_dict())
    else:
        _render_dbt(outcome.build, "dbt build")
        if outcome.freshness:
            fresh = ", ".join(f"{n.name}={n.status}" for n in outcome.freshness.nodes)
            console.print(f"source freshness: {fresh or outcome.freshness.error}")
    if not outcome.success:
        raise typer.Exit(1)


def _render_plan(planned: dict[str, Any], as_json: bool) -> None:
    import json

    if as_json:
        print_json(planned)
        return
    for stmt in planned["ddl"]["statements"]:
        _line(stmt + ";")
    ingest = planned["ingest"]
    for line in ingest["actions"]:
        _line(f"ingest ({ingest['mode']}): {line}")
    for stmt in ingest.get("statements", []):
        _line(stmt + ";")
    for req in ingest.get("requests", []):
        _line(json.dumps(req, indent=2))


@app.command()
def ddl(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL; touch nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the versioned raw-table DDL (idempotent; recorded in <raw>._rtfin_migrations)."""
    from rtfin_cli.warehouse import ddl as ddl_

    s = settings()
    if dry_run:
        result = ddl_.apply(s.clickhouse, dry_run=True)
    else:
        from rtfin_cli.warehouse.client import get_client

        result = ddl_.apply(s.clickhouse, get_client(s))
    if as_json:
        print_json(result.as_dict())
    elif dry_run:
        for stmt in result.statements:
            console.print(stmt + ";\n", markup=False, highlight=False)
    else:
        for name in result.applied:
            console.print(f"[green]applied[/] {name}")
        for name in result.already:
            console.print(f"[dim]already[/] {name}")
        for stmt in result.altered:
            console.print(f"[yellow]altered[/] {stmt}")


@app.command()
def load(
    once: Annotated[bool, typer.Option("--once", help="Drain what is in the topics now, then exit.")] = False,
    batch_rows: Annotated[
        int | None, typer.Option(min=1, help="Rows per insert (default: settings).")
    ] = None,
    batch_s: Annotated[float | None, typer.Option(min=0.01, help="Max seconds a batch waits.")] = None,
    timeout: Annotated[float | None, typer.Option(min=1, help="Give up after this many seconds.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Kafka → ClickHouse loader (consumer group clickhouse.loader_group); SIGTERM flushes and exits 0."""
    from rtfin_cli.warehouse.batch import LoaderStats
    from rtfin_cli.warehouse.loader import Loader

    def progress(stats: LoaderStats) -> None:
        if not as_json:
            ins = " ".join(f"{k}={v}" for k, v in stats.inserted.items())
            _line(f"batch {stats.batches}: consumed={stats.consumed} {ins} dlq={stats.dead_lettered}")

    loader = Loader(
        settings(), batch_rows=batch_rows, batch_s=batch_s, progress=progress if not is_tty() else None
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loader.stop())
    if is_tty() and not as_json:
        with console.status("loading… (Ctrl-C to stop)") as status:
            loader.progress = lambda st: status.update(
                f"loading… consumed {st.consumed}, inserted {st.rows}, dlq {st.dead_lettered}"
            )
            stats = loader.run(once=once, timeout_s=timeout)
    else:
        stats = loader.run(once=once, timeout_s=timeout)
    if as_json:
        print_json(stats.as_dict())
    else:
        console.print(
            f"loaded {stats.rows} rows ({', '.join(f'{k} {v}' for k, v in stats.inserted.items())}), "
            f"{stats.dead_lettered} to the DLQ, {stats.batches} batches in {stats.elapsed_s:.1f}s "
            f"[dim]({stats.stopped_by or 'stopped'})[/]"
        )
    if stats.stopped_by == "timeout":
        raise typer.Exit(8)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Migrations, raw row counts and ingestion state (loader lag, Kafka-engine errors, ClickPipes)."""
    from rtfin_cli.cli.reporting import reporter_for
    from rtfin_cli.warehouse import ingest
    from rtfin_cli.warehouse.client import get_client

    s = settings()
    ingest.check(s)
    with reporter_for("transform", as_json=as_json) as reporter:
        info = ingest.status(s, get_client(s), reporter=reporter)
    if as_json:
        print_json(info)
        return
    console.print(f"ClickHouse {info['clickhouse']} · ingest mode [bold]{info['mode']}[/]")
    console.print(f"migrations: {len(info['applied'])} applied, {len(info['pending'])} pending")
    console.print("raw rows: " + ", ".join(f"{k} {v}" for k, v in info["raw_rows"].items()))
    if "loader_lag" in info:
        lag = info["loader_lag"]
        console.print(
            "loader lag: " + (", ".join(f"{k} {v}" for k, v in lag.items()) if isinstance(lag, dict) else lag)
        )
    if "kafka_errors" in info:
        console.print(f"kafka engine errors: {info['kafka_errors']}")
    for p in info.get("pipes", []):
        console.print(f"pipe {p['name']} ({p['id']}): {p['state']}")


@app.command()
def docs(
    target: Annotated[str | None, typer.Option("--target", "-t", help="dbt target name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate the dbt docs site (catalog + manifest) under <data_dir>/dbt/target."""
    from rtfin_cli.errors import RtfinError
    from rtfin_cli.transform.dbt import invoke, work_dir

    outcome = invoke(settings(), "docs generate", target=target)
    index = work_dir(settings()) / "target" / "index.html"
    if as_json:
        print_json({**outcome.as_dict(), "index": str(index)})
    if not outcome.success:
        raise RtfinError(f"dbt docs generate failed: {outcome.error or 'see the dbt log'}")
    if not as_json:
        console.print(f"docs: {index}  [dim](serve with: python -m http.server -d {index.parent})[/]")


@app.command()
def pipes(
    command: Annotated[str, typer.Argument(help="start | stop")],
    as_json: JsonOpt = False,
) -> None:
    """Start or stop the ClickPipes (clickhouse.ingest = clickpipes)."""
    from rtfin_cli.errors import UsageError
    from rtfin_cli.warehouse import ingest

    if command not in ("start", "stop"):
        raise UsageError(
            f"unknown pipes command {command!r}", "Use `rtfin transform pipes start` or `... stop`."
        )
    from rtfin_cli.cli.reporting import reporter_for

    with reporter_for("transform", as_json=as_json) as reporter:
        result = ingest.pipes(settings(), command, reporter=reporter)
    if as_json:
        print_json(result)
    else:
        for p in result:
            console.print(f"{p['name']}: {p['action']} ({p['state']})")
