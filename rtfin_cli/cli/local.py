"""`rtfin local ...`: the whole pipeline on one machine."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtfin_cli.cli.common import console, out_console, print_json, settings
from rtfin_cli.cli.local_servers import APPS
from rtfin_cli.errors import UsageError

if TYPE_CHECKING:
    from rtfin_cli.report import Event
    from rtfin_cli.stack.supervise import Stack

app = typer.Typer(help="Run the complete stack on this machine: no account, no key.", no_args_is_help=True)
for _name, _server_app in APPS.items():
    app.add_typer(_server_app, name=_name)


@app.callback()
def _owner_only() -> None:
    """What `rtfin local` and the processes it starts write (state, logs, databases) is the owner's only."""
    os.umask(0o077)


COLOURS = {"started": "green", "reused": "cyan", "done": "green", "stopped": "green",
           "purged": "green", "running": "green", "failed": "red", "crashed": "red", "restarting": "yellow",
           "not run": "dim"}  # fmt: skip


class StageLines:
    """Renders the stack's stage events as ``  outcome  stage  detail`` lines on the console."""

    def emit(self, event: Event) -> None:
        from rich.markup import escape

        outcome, detail = str(event.payload.get("outcome", event.kind)), str(event.payload.get("detail", ""))
        console.print(
            f"  [{COLOURS.get(outcome, 'white')}]{outcome:8}[/] {escape(event.stage):11} [dim]{escape(detail)}[/]"
        )


def _stack() -> Stack:
    """The stack last brought up in this data dir, else the full plan from settings (for status/down)."""
    from rtfin_cli.stack.supervise import Stack

    s = settings()
    return Stack.load(Path(s.local.data_dir).expanduser().resolve()) or Stack.from_settings(
        s, with_dashboard=True
    )


@app.command()
def up(
    with_dashboard: Annotated[
        bool, typer.Option("--with-dashboard", help="Also run Superset and sync it.")
    ] = False,
    speed: Annotated[
        float | None, typer.Option(help="Market replay speed (default: local.market_speed).")
    ] = None,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="Skip the Spark sentiment job (news lands without labels).")
    ] = False,
    refresh: Annotated[float, typer.Option(help="Seconds between dbt builds of the models.")] = 30.0,
    replay_from: Annotated[
        str | None, typer.Option(help="Dataset time the replay starts at (default: after a week of news).")
    ] = None,
) -> None:
    """Start the whole stack in order, with health checks; running services are reused."""
    from rtfin_cli.stack.supervise import Stack

    if speed is not None and speed <= 0:
        raise UsageError(f"--speed must be > 0 (got {speed:g})")
    s = settings()
    opts = {
        "with_dashboard": with_dashboard,
        "no_model": no_model,
        "refresh_s": refresh,
        "replay_from": replay_from,
    }
    stack = Stack.from_settings(s, speed=speed, **opts)
    console.print(f"Starting the local stack in {stack.data_dir} ...")
    t0 = time.monotonic()
    stack.up(StageLines())
    rows = stack.status()
    console.print(f"[green]Local stack up[/] in {time.monotonic() - t0:.0f}s")
    _notes(speed, no_model, rows)
    _guide(stack, rows)


def _notes(speed: float | None, no_model: bool, rows: list[dict[str, Any]]) -> None:
    """What the options did not do (a reused market server keeps its speed; no labels without the model)."""
    if speed is not None and any(r["service"] == "market" and r["state"] == "running" for r in rows):
        console.print(
            "[dim]note: --speed applies when the market server starts; a reused one keeps its speed.[/]"
        )
    if no_model:
        console.print(
            "[dim]--no-model: the sentiment job is not run; news reaches ClickHouse without labels.[/]"
        )


def _dashboard_url(port: int) -> str:
    """The synced dashboard's own page on the local Superset (its slug from superset_assets/)."""
    from urllib.parse import urlsplit

    from rtfin_cli.dashboard.sync import dashboard_url
    from rtfin_cli.errors import RtfinError

    try:
        path = urlsplit(dashboard_url(settings(), "superset", check=False)).path
    except RtfinError:  # assets unreadable: the server's front page still gets the user there
        path = "/"
    return f"http://127.0.0.1:{port}{path}"


def _guide(stack: Stack, rows: list[dict[str, Any]]) -> None:
    """Where to look and how to stop: whole lines (never wrapped or cut, so a long path stays copyable)."""
    running = {r["service"]: r for r in rows if r["state"] == "running"}
    lines = []
    if "superset" in running:
        lines.append(f"Dashboard: [bold]{_dashboard_url(running['superset']['port'])}[/]")
        pw = stack.data_dir / "superset" / "admin_password"
        lines.append(f"  login [bold]admin[/], password: [bold]cat {pw}[/]")
    lines.append("Data flow and freshness: [bold]rtfin lag[/]   Services: [bold]rtfin local status[/]   "
                 "Logs: [bold]rtfin local logs SERVICE -f[/]")  # fmt: skip
    lines.append("Stop: [bold]rtfin local down[/]  (add --purge to delete topics, tables and logs)")
    for line in lines:
        console.print(line, soft_wrap=True)


@app.command()
def down(
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete all local data (topics, tables, logs).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait after SIGTERM before SIGKILL.")] = 30.0,
) -> None:
    """Stop everything in reverse order (SIGTERM, then SIGKILL after --timeout)."""
    stack = _stack()
    stack.down(StageLines(), timeout=timeout, purge=stack.purge_paths(settings()) if purge else ())
    console.print("[green]Local stack stopped[/]" + (" and its data removed" if purge else ""))


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _lag_line(lag: dict[str, Any]) -> str:
    """One line from `rtfin lag --once --json`: the worst state of any stage, then each stage's state."""
    from rtfin_cli.cli.lag import COLOURS as LAG_COLOURS
    from rtfin_cli.lag.model import verdict

    if "error" in lag:
        return f"lag: [yellow]{lag['error']}[/]"
    snap = lag.get("snapshot") or {}
    if not isinstance(snap, dict):
        return f"lag: [red]no snapshot (exit {lag.get('exit_code')})[/]"
    state = verdict(snap)
    summary = f"[{LAG_COLOURS.get(state, 'white')}]{state}[/]"
    if lag.get("exit_code") not in (0, None):
        summary += f" [red](rtfin lag exit {lag.get('exit_code')})[/]"
    stages = snap.get("stages")
    if not isinstance(stages, list):
        return f"lag: {summary}"
    parts = []
    for st in stages:
        age = st.get("age_s") if st.get("age_s") is not None else st.get("time_lag_s")
        where = (
            str(st.get("source", "")).rsplit(".", 1)[0]
            if st.get("name") in ("warehouse", "reporting")
            else ""
        )
        label = f"{st.get('name')}{f' {where}' if where else ''}"
        parts.append(f"{label} {st.get('state')}" + (f" {age:.0f}s" if isinstance(age, int | float) else ""))
    return f"lag: {summary} — " + "; ".join(parts) + "  (details: rtfin lag)"


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    lag: Annotated[bool, typer.Option(help="Include the `rtfin lag --once` summary.")] = True,
) -> None:
    """Each service's state, pid, port, uptime, restarts and last error; plus the lag summary."""
    from rich.markup import escape
    from rich.table import Table

    stack = _stack()
    rows = stack.status()
    lag_doc = stack.lag_summary() if lag and any(r["state"] == "running" for r in rows) else None
    last_verify = _last_verify()
    if as_json:
        print_json({"data_dir": str(stack.data_dir), "services": rows, "lag": lag_doc, "verify": last_verify})
        return
    table = Table("service", "state", "pid", "port", "uptime", "restarts", "note / last error")
    for r in rows:
        colour = COLOURS.get(r["state"], "white")
        detail = escape(r["note"]) or (
            f"[red]{escape(r['last_error'])}[/]" if r["last_error"] else f"[dim]{r['what']}[/]"
        )
        table.add_row(
            r["service"], f"[{colour}]{r['state']}[/]", str(r["pid"] or ""), str(r["port"] or ""),
            _fmt_uptime(r["uptime_s"]), str(r["restarts"] or ""), detail,
        )  # fmt: skip
    out = out_console()
    out.print(table)
    if lag_doc is not None:
        out.print(_lag_line(lag_doc), soft_wrap=True)
    out.print(_verify_line(last_verify), soft_wrap=True)


def _last_verify() -> dict[str, Any] | None:
    from rtfin_cli.warehouse.verify import load_last

    return load_last(settings())


def _verify_line(doc: dict[str, Any] | None) -> str:
    """The last `rtfin verify` result in one line."""
    if doc is None:
        return "verify: not run yet  (rtfin verify)"
    import datetime as dt

    at = dt.datetime.fromtimestamp(doc.get("at_ms", 0) / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if doc.get("ok"):
        return f"verify: [green]OK[/] at {at} — nothing lost or duplicated"
    failing = ", ".join(doc.get("failing") or []) or "-"
    return (
        f"verify: [bold red]FAILED[/] at {at} — partitions {failing}; "
        f"{doc.get('absent_from_marts', 0)} identit(ies) absent from marts  (details: rtfin verify)"
    )


@app.command()
def logs(
    service: Annotated[str, typer.Argument(help="Service name, as listed by `rtfin local status`.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines of the tail to show.")] = 50,
) -> None:
    """Show (and follow) a service's log."""
    stack = _stack()
    path = stack.log_dir / f"{service}.log"
    if not path.exists():
        known = sorted(p.stem for p in stack.log_dir.glob("*.log")) or [st.name for st in stack.steps]
        raise UsageError(
            f"no log for service '{service}' in {stack.log_dir}", f"Services: {', '.join(known)}."
        )
    with open(path, errors="replace") as fh:
        for line in fh.readlines()[-lines:] if lines > 0 else []:
            typer.echo(line.rstrip("\n"))
        if not follow:
            return
        try:
            while True:
                line = fh.readline()
                if line:
                    typer.echo(line.rstrip("\n"))
                else:
                    time.sleep(0.3)
        except KeyboardInterrupt:
            return


def _log_line(text: str) -> None:
    """A helper process's log line: UTC time, then the text (stdout goes to the stage's log file)."""
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {text}", flush=True)


@app.command("_watch", hidden=True)
def watch(
    data_dir: Annotated[
        str | None, typer.Option(help="The stack's data dir (default: local.data_dir).")
    ] = None,
) -> None:
    """The stack's watchdog: restart crashed stages until SIGTERM (started by `rtfin local up`)."""
    from rtfin_cli.cli.reporting import LineReporter
    from rtfin_cli.stack.stopflag import StopFlag
    from rtfin_cli.stack.watch import watch as run_watch

    stop = StopFlag().on_signals()
    where = Path(data_dir or settings().local.data_dir).resolve()
    code = run_watch(where, LineReporter(write=_log_line), stop)
    raise typer.Exit(code)


@app.command("_refresh", hidden=True)
def refresh(
    interval: Annotated[float, typer.Option(help="Seconds between dbt builds.")] = 30.0,
    select: Annotated[list[str] | None, typer.Option(help="dbt selectors to rebuild.")] = None,
) -> None:
    """The stack's dbt refresher: rebuild the selected models every --interval s until SIGTERM."""
    from rtfin_cli.cli.reporting import LineReporter
    from rtfin_cli.stack.refresh import refresh as run_refresh
    from rtfin_cli.stack.stopflag import StopFlag

    stop = StopFlag().on_signals()
    code = run_refresh(settings(), interval, list(select or []), LineReporter(write=_log_line), stop)
    raise typer.Exit(code)
